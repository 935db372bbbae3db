import { EventEmitter } from 'node:events';

/**
 * Why a BFF session ended. Every one of them is a full logout of the Auth0 session's BFF sessions. `revoked`: the app
 * ended it (`bff.sessions.end()`, or the user on the sessions route, "log out my other devices").
 */
export type LogoutReason = 'user' | 'session_ended' | 'backchannel' | 'absolute_timeout' | 'idle_timeout' | 'revoked';

/** What the BFF was doing when something failed. */
export type BffOperation = 'api' | 'login' | 'callback' | 'user' | 'logout' | 'backchannel_logout' | 'sessions' | 'idle_roll' | 'local_api';

/**
 * What the BFF reports, one event per happening. Session ids appear only as `sessionRef`, a short one-way digest
 * that is stable per session (for correlating log lines) and useless as a cookie. No event carries a token.
 */
export interface BffEvents {
  login: [{ sub: string; sid: string | undefined; sessionRef: string }];
  refresh: [{ sub: string; sid: string | undefined; sessionRef: string; audience: string; expiresIn: number; durationMs: number }];
  refresh_failed: [{ sub: string; sid: string | undefined; sessionRef: string; audience: string; kind: 'terminal' | 'transient' | 'configuration'; error: string; status?: number }];
  /** The BFF application got its own token for an API (client credentials). */
  client_token: [{ audience: string; expiresIn: number; durationMs: number }];
  /** Auth0 refused the application's own token (`configuration`) or did not answer (`transient`). Nobody is logged out. */
  client_token_failed: [{ audience: string; kind: 'transient' | 'configuration'; error: string; status?: number }];
  /**
   * One per logout, with the reason that started it. A back-channel logout that Auth0 sends because this BFF
   * revoked the session itself finds nothing left to end and is not a second logout.
   */
  logout: [{ reason: LogoutReason; sub: string | undefined; sid: string | undefined; sessions: number; revoked?: boolean }];
  revocation_failed: [{ sub: string | undefined; sid: string | undefined; sessionRef: string; error: string; status?: number }];
  backchannel_logout_rejected: [{ error: string }];
  /** An API call the upstream did not answer (`upstream_unavailable`, `upstream_timeout`), or broke off mid-answer. */
  upstream_failed: [{ api: string; error: 'upstream_unavailable' | 'upstream_timeout'; cause: string; sessionRef: string | undefined; broken?: boolean }];
  /** The session store (Redis) failed or did not answer in time; the request got 503, nobody was logged out. */
  store_failed: [{ operation: BffOperation; cause: string; sessionRef: string | undefined }];
}

export type BffEventName = keyof BffEvents;

/** A typed EventEmitter: `bff.events.on('logout', ({ reason }) => ...)`. */
export class BffEventEmitter extends EventEmitter<BffEvents> {}

export type { Logger } from './logger.js';
