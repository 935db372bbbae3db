import type { BffUser } from '../routes/bff-user.js';

/*
 * The guard's public types, apart from its code: the package's declarations reach them from the main entry, and
 * must not reach Express's or express-session's typings through the code's imports.
 */

/** Options of `bff.requireSession()`. */
export interface RequireSessionOptions {
  /**
   * Which calls must carry the anti-forgery header (`X-CSRF: 1`). `always` (the default), like every proxied
   * call; `unsafe-methods` lets GET, HEAD and OPTIONS through without it, for a route that changes nothing and is
   * reached by plain navigation (a link to a download), which cannot add a header. Other methods are checked.
   */
  csrf?: 'always' | 'unsafe-methods';
}

/**
 * What `bff.requireSession()` found for a request, as `bff.session(req)` returns it: who is logged in (the
 * `/auth/user` fields) and a way to the access token. Never a token otherwise.
 */
export interface BffSession extends BffUser {
  /**
   * A fresh access token of the session for an API (default: the BFF's `audience`), exchanged only when it is
   * expiring, with one exchange per expiry shared with the proxy and every other process. Rejects with a
   * `BffError` (`session_ended`, `token_service_unavailable`, `configuration_error`, ...).
   */
  accessToken(options?: { audience?: string; scope?: string }): Promise<string>;
}
