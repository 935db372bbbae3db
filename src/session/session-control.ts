/**
 * The public types of `bff.sessions`: seeing and ending a user's BFF sessions. Types only, so that the package's
 * declarations reach none of the session layer's internals (nor Express's types).
 */
import type { IncomingMessage } from 'node:http';

/** One BFF session of a user, as listed. Times are epoch seconds. Never a session id, a token or the Auth0 sid. */
export interface SessionInfo {
  /** The session's short one-way digest, as in events: names the session to {@link SessionControl.end}. */
  readonly sessionRef: string;
  /**
   * A digest of the Auth0 session the BFF session is bound to (undefined without an Auth0 `sid`). Sessions with the
   * same value share one Auth0 login (one browser that logged in again, or SSO), and end together.
   */
  readonly auth0SessionRef: string | undefined;
  /** When the user logged in. */
  readonly createdAt: number;
  /** The last activity, accurate to the idle expiry's roll interval (at most a minute). */
  readonly lastActiveAt: number;
  /** When the session ends without activity. */
  readonly idleExpiresAt: number;
  /** The absolute end, as `/auth/user` reports it. */
  readonly expiresAt: number;
  /** The browser that logged in, shortened ("Firefox 128 on Windows"); undefined when it sent no User-Agent. */
  readonly userAgent: string | undefined;
}

/** What {@link SessionControl.end} did. */
export interface EndSessionsResult {
  /** BFF sessions ended: the ones named, and every other one bound to the same Auth0 sessions. */
  readonly ended: number;
  /** Auth0 sessions ended at Auth0 by revoking their ORT (every application's SSO on them ends too). */
  readonly revoked: number;
  /**
   * Auth0 sessions whose ORT could not be revoked (Auth0 unreachable, for example): their BFF sessions ended all the
   * same, and a `revocation_failed` event and a warning say so. The Auth0 session ends at its own timeout.
   */
  readonly revocationFailed: number;
}

/** Seeing and ending a user's BFF sessions, on every instance that shares the store: `bff.sessions`. */
export interface SessionControl {
  /**
   * The live BFF sessions of a user, most recently active first.
   *
   * @example
   * ```ts
   * const sessions = await bff.sessions.list({ sub: 'auth0|alice' });
   * // [{ sessionRef: 'Xy3...', userAgent: 'Firefox 128 on Windows', lastActiveAt: 1767225600, ... }]
   * ```
   */
  list(selector: { sub: string }): Promise<SessionInfo[]>;
  /**
   * Ends one session of a user (by `sessionRef`) or all of them (`'all'`), except the one named by `except`.
   * Ending a session revokes its ORT at Auth0, which ends the Auth0 session behind it (for every application), and
   * ends every BFF session bound to that Auth0 session, on every instance. A session that shares its Auth0 session
   * with the one kept by `except` is only ended here: revoking its ORT would end the kept one too.
   * A `sessionRef` that names no session of the user ends nothing.
   *
   * @example
   * ```ts
   * // "Log out my other devices":
   * await bff.sessions.end({ sub: user.sub, sessionRef: 'all', except: bff.sessions.refOf(req) });
   * ```
   */
  end(selector: { sub: string; sessionRef: string; except?: string | undefined }): Promise<EndSessionsResult>;
  /** The `sessionRef` of the session the request's cookie names (no store access), or undefined without one. */
  refOf(req: IncomingMessage): string | undefined;
}
