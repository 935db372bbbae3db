/**
 * A `returnTo` the BFF will redirect to: only a path on its own origin, and only under an allowed prefix.
 * Refused: absolute URLs, scheme-relative `//host`, `/\host` (browsers read `\` as `/`), and the same tricks
 * percent-encoded or hidden behind control characters.
 */
export function safeReturnTo(value: unknown, allowed: readonly string[], baseURL: URL): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048) return undefined;
  if (!value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return undefined;
  if (leadsElsewhere(value)) return undefined;
  let url: URL;
  try {
    url = new URL(value, baseURL);
  } catch {
    return undefined;
  }
  if (url.origin !== baseURL.origin) return undefined;
  const path = url.pathname;
  // Dot segments are resolved by the URL parser: `/.//evil.example` becomes `//evil.example`, and
  // `/%2e%2e/%2Fevil.example` an encoded one, which a browser or a later step reads as another host. What is
  // returned is checked as what came in is.
  const result = `${path}${url.search}${url.hash}`;
  if (leadsElsewhere(result)) return undefined;
  if (!allowed.some((prefix) => prefix === '/' || path === prefix || path.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`))) return undefined;
  return result;
}

/** Decoding rounds after which a value still changing is refused: no real path is encoded that many times. */
const MAX_DECODINGS = 5;

/**
 * Whether a path, or what any number of percent-decodings make of it (`%252F%252F` is still `//` to some later
 * step), starts as another host (`//`, `/\`) or holds a control character or a backslash.
 */
function leadsElsewhere(value: string): boolean {
  let decoded = value;
  for (let round = 0; ; round++) {
    // eslint-disable-next-line no-control-regex
    if (decoded.startsWith('//') || decoded.startsWith('/\\') || /[\u0000-\u001f\u007f\\]/.test(decoded)) return true;
    if (!decoded.includes('%')) return false;
    let next: string;
    try {
      next = decodeURIComponent(decoded);
    } catch {
      return true;
    }
    if (next === decoded) return false;
    if (round === MAX_DECODINGS) return true;
    decoded = next;
  }
}
