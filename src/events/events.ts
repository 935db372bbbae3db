import { EventEmitter } from 'node:events';
import { isThenable } from './logger.js';

/**
 * Why a BFF session ended. Every one of them is a full logout of the Auth0 session's BFF sessions. `revoked`: the app
 * ended it (`bff.sessions.end()`, or the user on the sessions route, "log out my other devices").
 */
/** Why BFF sessions ended; `replaced`: the browser logged in again, and the session it had before ended. */
export type LogoutReason = 'user' | 'session_ended' | 'backchannel' | 'absolute_timeout' | 'idle_timeout' | 'revoked' | 'replaced';

/** What the BFF was doing when something failed. */
export type BffOperation = 'api' | 'websocket' | 'login' | 'callback' | 'user' | 'logout' | 'backchannel_logout' | 'sessions' | 'idle_roll' | 'local_api';

/** Who an event is about. `sessionRef` is a short one-way digest of the session id: stable, useless as a cookie. */
export interface SessionEventBase {
  /** The user's `sub`. */
  sub: string;
  /** The Auth0 session id (`sid` of the ID token), when Auth0 sent one. */
  sid: string | undefined;
  /** A short digest of the BFF session id, stable per session, for correlating log lines. */
  sessionRef: string;
}

/** A user logged in: a new BFF session. */
export interface LoginEvent extends SessionEventBase {}

/** An access token was obtained by exchanging the ORT. */
export interface RefreshEvent extends SessionEventBase {
  /** The API the token is for. */
  audience: string;
  /** The token's lifetime, in seconds, as Auth0 gave it. */
  expiresIn: number;
  /** How long the exchange took, retries included, in milliseconds. */
  durationMs: number;
}

/**
 * An attempt to exchange the ORT failed; each retry of a transient failure reports one. A `terminal` failure ends the
 * session (a `logout` event follows); the others keep it.
 */
export interface RefreshFailedEvent extends SessionEventBase {
  /** The API the token was for. */
  audience: string;
  /** `terminal` (the Auth0 session is over), `transient` (retry later) or `configuration` (fix the BFF's settings). */
  kind: 'terminal' | 'transient' | 'configuration';
  /** The OAuth error code or failure, never a token. */
  error: string;
  /** The HTTP status Auth0 answered, if it answered. */
  status?: number;
}

/**
 * BFF sessions ended: every session of one Auth0 session (or of one user, for a back-channel logout by `sub`). One
 * per logout, with the reason that started it: a back-channel logout that Auth0 sends because this BFF revoked the
 * session itself finds nothing left to end and is not a second logout.
 */
export interface LogoutEvent {
  /** Why the sessions ended. */
  reason: LogoutReason;
  /** The user's `sub`, when known. */
  sub: string | undefined;
  /** The Auth0 session id, when known. */
  sid: string | undefined;
  /** How many BFF sessions ended. */
  sessions: number;
  /** For a user logout: whether Auth0 confirmed the ORT's revocation (which ends the Auth0 session). */
  revoked?: boolean;
}

/** Revoking an ORT failed; its BFF sessions ended anyway, and the Auth0 session ends at its own timeout. */
export interface RevocationFailedEvent {
  /** The user's `sub`, when known. */
  sub: string | undefined;
  /** The Auth0 session id, when known. */
  sid: string | undefined;
  /** The session whose ORT it was. */
  sessionRef: string;
  /** What failed, never a token. */
  error: string;
  /** The HTTP status Auth0 answered, if it answered. */
  status?: number;
}

/** The BFF application got its own token for an API (client credentials, the `client` token policy). */
export interface ClientTokenEvent {
  /** The API the token is for. */
  audience: string;
  /** The token's lifetime, in seconds, as Auth0 gave it. */
  expiresIn: number;
  /** How long the grant took, retries included, in milliseconds. */
  durationMs: number;
}

/** Auth0 refused the application's own token (`configuration`) or did not answer (`transient`). Nobody is logged out. */
export interface ClientTokenFailedEvent {
  /** The API the token was for. */
  audience: string;
  /** `transient` (retry later) or `configuration` (fix the BFF's or the tenant's settings). */
  kind: 'transient' | 'configuration';
  /** The OAuth error code or failure, never a token. */
  error: string;
  /** The HTTP status Auth0 answered, if it answered. */
  status?: number;
}

/** A back-channel logout request was refused (bad signature, claims or replay); nothing was changed. */
export interface BackchannelLogoutRejectedEvent {
  /** Why it was refused. */
  error: string;
}

/**
 * An API call the upstream did not answer (`upstream_unavailable`, `upstream_timeout`), or broke off mid-answer; or a
 * WebSocket's upstream that broke its connection off, or answered no ping (`cause: 'PING_TIMEOUT'`).
 */
export interface UpstreamFailedEvent {
  /** The API's mount. */
  api: string;
  /** What the browser was answered. */
  error: 'upstream_unavailable' | 'upstream_timeout';
  /** The failure's name or code, e.g. `ECONNREFUSED`. */
  cause: string;
  /** The session of the call, when it had one. */
  sessionRef: string | undefined;
  /** True when the upstream broke off after it had begun to answer (a WebSocket's: after the handshake). */
  broken?: boolean;
}

/**
 * The session store (Redis) failed or did not answer in time; the request got 503 (work in the background, an
 * `idle_roll` or a `websocket`'s lifetime check, is tried again later); nobody was logged out.
 */
export interface StoreFailedEvent {
  /** What the BFF was doing. */
  operation: BffOperation;
  /** The failure's name or code. */
  cause: string;
  /** The session of the request, when it had one. */
  sessionRef: string | undefined;
}

/**
 * What the BFF reports, one event per happening, as listener arguments per event name. Session ids appear only as
 * `sessionRef`, and no event carries a token.
 */
export interface BffEvents {
  /** A user logged in. */
  login: [LoginEvent];
  /** An access token was obtained by exchanging the ORT. */
  refresh: [RefreshEvent];
  /** An attempt to exchange the ORT failed. */
  refresh_failed: [RefreshFailedEvent];
  /** The BFF application got its own token for an API. */
  client_token: [ClientTokenEvent];
  /** Getting the application's own token failed. */
  client_token_failed: [ClientTokenFailedEvent];
  /** BFF sessions ended, for any {@link LogoutReason}. */
  logout: [LogoutEvent];
  /** Revoking an ORT failed. */
  revocation_failed: [RevocationFailedEvent];
  /** A back-channel logout request was refused. */
  backchannel_logout_rejected: [BackchannelLogoutRejectedEvent];
  /** An API call the upstream did not answer, or broke off. */
  upstream_failed: [UpstreamFailedEvent];
  /** The session store failed or did not answer in time. */
  store_failed: [StoreFailedEvent];
}

/** The name of an event of {@link BffEvents}. */
export type BffEventName = keyof BffEvents;

/**
 * The type of `bff.events`: Node's EventEmitter, typed by {@link BffEvents}.
 *
 * @example
 * ```ts
 * const events: BffEventEmitter = bff.events;
 * events.on('logout', ({ reason, sub }) => console.log('logout', reason, sub));
 * events.on('refresh_failed', ({ kind, error }) => kind !== 'terminal' && console.warn('Auth0:', error));
 * ```
 */
export class BffEventEmitter extends EventEmitter<BffEvents> {
  /** Told of a listener that threw (the BFF logs it); set by the BFF. */
  listenerFailed: ((name: BffEventName, error: unknown) => void) | undefined;

  /**
   * Calls each listener of the event on its own: one that throws, or an `async` one whose promise rejects (a
   * database that is down), is reported to `listenerFailed` and the next one runs. The request, login or logout
   * that emitted the event goes on as if nothing had thrown; no rejection is left unhandled.
   */
  override emit<K extends BffEventName>(name: K, ...args: BffEvents[K]): boolean {
    const listeners = this.rawListeners(name as BffEventName);
    if (listeners.length === 0) return false;
    for (const listener of listeners) {
      try {
        const result = (listener as (...values: unknown[]) => unknown).apply(this, args);
        if (isThenable(result)) result.then(undefined, (error: unknown) => this.listenerFailed?.(name, error));
      } catch (error) {
        this.listenerFailed?.(name, error);
      }
    }
    return true;
  }
}

export type { Logger } from './logger.js';
