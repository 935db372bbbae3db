// What the checks below look for, made once: a regular expression literal in a function is a new object each
// time the function runs (an API call's garbage).
const RAW_UNSAFE = /[\u0000-\u0020\u007f#]/;
const ENCODED_UNSAFE_IN_PATH = /%(2f|5c|0[0-9a-f]|1[0-9a-f]|7f|25)/i;
const ENCODED_UNSAFE_IN_QUERY = /%(0[0-9a-f]|1[0-9a-f]|7f)/i;
const DOT_SEGMENT = /\/(?:\.|%2e){1,2}(?:\/|;|$)/i;

/**
 * The upstream path for `<mount><rest>`: the upstream's base path plus `rest`, refusing anything that could
 * leave it. The connection pool is bound to the upstream's origin, so no other host is reachable at all; these
 * checks keep a request inside the upstream's base path and keep header-splitting bytes out of the request line.
 * `rest` empty (or only a query) is the mount itself, which is the base path; `/` is the base path's own `/`.
 * Returns undefined for a path to refuse.
 */
export function targetPath(basePath: string, url: string): string | undefined {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? '' : url.slice(q);
  if (path.length === 0) {
    if (RAW_UNSAFE.test(query)) return undefined;
    if (query.includes('%') && ENCODED_UNSAFE_IN_QUERY.test(query)) return undefined;
    return `${basePath === '' ? '/' : basePath}${query}`;
  }
  if (path[0] !== '/') return undefined;
  // Raw control characters, spaces, `#` (a request target never carries a fragment, RFC 9112 3.2, and a server
  // that drops one would resolve `/..#` to `/..`, above the base path, where the dot-segment check below sees no
  // segment end), and in the path, backslashes, which some servers read as "/". (In a query a backslash is data:
  // browsers send it as it is, `?path=C:\Users`.)
  if (RAW_UNSAFE.test(url) || path.includes('\\')) return undefined;
  // The checks below look for a `%` or, in the path, a `.`: most API paths have neither, and a search for one
  // character costs a small part of three regular expressions.
  const encoded = url.includes('%');
  // Encoded slashes, backslashes, control characters and NUL change what the upstream sees as the path.
  if (encoded && (ENCODED_UNSAFE_IN_PATH.test(path) || ENCODED_UNSAFE_IN_QUERY.test(query))) return undefined;
  // Dot segments, plain or encoded, would climb out of the base path.
  // `..;` too: Tomcat, Jetty and Spring read it as `..`.
  if ((encoded || path.includes('.')) && DOT_SEGMENT.test(path)) return undefined;
  // `//host/...` after a base path is still a path, but some upstream routers treat it as a host: refuse it.
  if (path.startsWith('//')) return undefined;
  return `${basePath}${path}${query}`;
}
