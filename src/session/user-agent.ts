/** The longest description kept: a session list shows a label, and Redis keeps every byte once per session. */
const MAX_LENGTH = 48;
/** How much of the header is read: real ones are a few hundred characters; the rest only costs matching time. */
const READ_LENGTH = 512;

/** Browser tokens, most specific first: Edge and Opera also say "Chrome", Chrome also says "Safari". */
const BROWSERS: ReadonlyArray<readonly [RegExp, string]> = [
  [/\bEdg(?:e|A|iOS)?\/(\d{1,6})/, 'Edge'],
  [/\b(?:OPR|Opera)\/(\d{1,6})/, 'Opera'],
  [/\bSamsungBrowser\/(\d{1,6})/, 'Samsung Internet'],
  [/\b(?:Firefox|FxiOS)\/(\d{1,6})/, 'Firefox'],
  [/\bHeadlessChrome\/(\d{1,6})/, 'Headless Chrome'],
  [/\b(?:Chrome|CriOS|Chromium)\/(\d{1,6})/, 'Chrome'],
  [/\bVersion\/(\d{1,6})(?:\.\d{1,6}){0,4} (?:Mobile\/\S{1,20} )?Safari\//, 'Safari'],
];

/** Operating systems, most specific first: iOS and Android also say "like Mac OS X" and "Linux". */
const SYSTEMS: ReadonlyArray<readonly [RegExp, string]> = [
  [/\b(?:iPhone|iPad|iPod)\b/, 'iOS'],
  [/\bAndroid\b/, 'Android'],
  [/\bCrOS\b/, 'ChromeOS'],
  [/\bWindows\b/, 'Windows'],
  [/\bMac OS X\b|\bMacintosh\b/, 'macOS'],
  [/\bLinux\b/, 'Linux'],
];

/**
 * A short, human description of a `User-Agent` header for a list of sessions ("Firefox 128 on Windows"), or the
 * header's first printable characters when it names no browser this knows. Undefined without a header. It is a
 * label, never used to decide anything: the header is whatever the client sent.
 */
export function shortUserAgent(header: string | undefined): string | undefined {
  if (typeof header !== 'string') return undefined;
  const text = header.slice(0, READ_LENGTH).replace(/[^\x20-\x7e]+/g, ' ').trim();
  if (text.length === 0) return undefined;
  const browser = BROWSERS.find(([pattern]) => pattern.test(text));
  const system = SYSTEMS.find(([pattern]) => pattern.test(text))?.[1];
  if (browser === undefined) return text.slice(0, MAX_LENGTH);
  const version = browser[0].exec(text)?.[1];
  return `${browser[1]} ${version}${system === undefined ? '' : ` on ${system}`}`.slice(0, MAX_LENGTH);
}
