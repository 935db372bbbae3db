import type { BffConfig } from '../config/validate.js';

/**
 * Whether a request URL may be one of the BFF's routes (login, callback, user, logout, back-channel logout,
 * sessions, health), for `bff.wrap(app)` to hand it to the BFF's router. The test is generous, never strict: the
 * router matches case-insensitively, with or without a trailing slash, and `<sessions>/<ref>`, so any path that
 * starts with a route's path (in any case) goes to it; what the router does not take goes on to the app.
 *
 * A URL Express reads differently from its plain text goes to the router too, which reads it as under
 * `app.use(bff)`: a target in absolute form (`GET http://host/healthz`, RFC 9112 3.2.2), whose path Express takes
 * from the URL, and one with a backslash, which Express's URL parser may read as a slash.
 */
export function routePathMatcher(routes: BffConfig['routes']): (url: string) => boolean {
  const paths = Object.values(routes).filter((path): path is string => path !== undefined).map((path) => path.toLowerCase());
  // A route at "/" may be any URL's ("/?x" is the route "/" with a query).
  if (paths.some((path) => path.length < 2)) return () => true;
  // Every other route path is absolute and at least two characters long ('/auth/login'): a URL whose first two
  // characters start no route is the app's, which settles the usual request for a page or an asset without
  // lowercasing it.
  const starts = new Set(paths.map((path) => path.slice(0, 2)));
  return (url) => {
    if (url.charCodeAt(0) !== 47 /* / */ || url.includes('\\')) return true;
    if (!starts.has(url.slice(0, 2).toLowerCase())) return false;
    const query = url.indexOf('?');
    const path = (query === -1 ? url : url.slice(0, query)).toLowerCase();
    return paths.some((route) => path.startsWith(route));
  };
}
