import { EventEmitter } from 'node:events';

/**
 * Why a BFF session ended. Every one of them is a full logout of the Auth0 session's BFF sessions. `revoked`: the app
 * ended it (`bff.sessions.end()`, or the user on the sessions route, "log out my other devices").
 */
export type LogoutReason = 'user' | 'session_ended' | 'backchannel' | 'absolute_timeout' | 'idle_timeout' | 'revoked';

/**
 * What the BFF reports. Session ids appear only as `sessionRef`, a short one-way digest that is
 * stable per session (for correlating log lines) and useless as a cookie. No event carries a token.
 */
export interface BffEvents {
  login: [{ sub: string; sid: string | undefined; sessionRef: string }];
  refresh: [{ sub: string; sid: string | undefined; sessionRef: string; audience: string; expiresIn: number; durationMs: number }];
  refresh_failed: [{ sub: string; sid: string | undefined; sessionRef: string; audience: string; kind: 'terminal' | 'transient' | 'configuration'; error: string; status?: number }];
  logout: [{ reason: LogoutReason; sub: string | undefined; sid: string | undefined; sessions: number; revoked?: boolean }];
  revocation_failed: [{ sub: string | undefined; sid: string | undefined; error: string }];
  backchannel_logout_rejected: [{ error: string }];
}

export type BffEventName = keyof BffEvents;

/** A typed EventEmitter: `bff.events.on('logout', ({ reason }) => ...)`. */
export class BffEventEmitter extends EventEmitter<BffEvents> {}

/** Where the BFF writes its log lines; `console` fits. Messages never contain tokens or secrets. */
export interface Logger {
  debug?(message: string, details?: Record<string, unknown>): void;
  info?(message: string, details?: Record<string, unknown>): void;
  warn(message: string, details?: Record<string, unknown>): void;
  error(message: string, details?: Record<string, unknown>): void;
}

/** Writes warnings and errors as single lines to stderr; quiet otherwise. */
export const defaultLogger: Logger = {
  warn: (message, details) => console.warn(`[express-ort-bff] ${message}${details ? ` ${JSON.stringify(details)}` : ''}`),
  error: (message, details) => console.error(`[express-ort-bff] ${message}${details ? ` ${JSON.stringify(details)}` : ''}`),
};
