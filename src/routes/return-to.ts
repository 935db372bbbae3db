/**
 * A `returnTo` the BFF will redirect to: only a path on its own origin, and only under an allowed prefix.
 * Refused: absolute URLs, scheme-relative `//host`, `/\host` (browsers read `\` as `/`), and the same tricks
 * percent-encoded or hidden behind control characters.
 */
export function safeReturnTo(value: unknown, allowed: readonly string[], baseURL: URL): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048) return undefined;
  if (!value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return undefined;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(value)) return undefined;
  let decoded = value;
  try {
    // Decode repeatedly: `%252F%252F` is still `//` to some later step.
    for (let i = 0; i < 3 && decoded.includes('%'); i++) decoded = decodeURIComponent(decoded);
  } catch {
    return undefined;
  }
  // eslint-disable-next-line no-control-regex
  if (decoded.startsWith('//') || decoded.startsWith('/\\') || /[\u0000-\u001f\u007f\\]/.test(decoded)) return undefined;
  let url: URL;
  try {
    url = new URL(value, baseURL);
  } catch {
    return undefined;
  }
  if (url.origin !== baseURL.origin) return undefined;
  const path = url.pathname;
  // Dot segments are resolved by the URL parser: `/.//evil.example` becomes `//evil.example`, which a browser
  // reads as another host. Check what is returned, not only what came in.
  if (path.startsWith('//') || path.startsWith('/\\')) return undefined;
  if (!allowed.some((prefix) => prefix === '/' || path === prefix || path.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`))) return undefined;
  return `${url.pathname}${url.search}${url.hash}`;
}
