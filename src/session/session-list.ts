import type { Request } from 'express';
import type { BffConfig } from '../config/validate.js';
import type { Reporter } from '../events/reporter.js';
import { classifyTokenFailure } from '../idp/failures.js';
import type { IdpClient } from '../idp/idp-client.js';
import type { SessionSummary } from './record.js';
import { sessionRef, type Sessions } from './sessions.js';

/** One BFF session of a user, as listed. Times are epoch seconds. Never a session id, a token or the Auth0 sid. */
export interface SessionInfo {
  /** The session's short one-way digest, as in events: names the session to {@link SessionControl.end}. */
  readonly sessionRef: string;
  /**
   * A digest of the Auth0 session the BFF session is bound to (undefined without an Auth0 `sid`). Sessions with the
   * same value share one Auth0 login (one browser that logged in again, or SSO), and end together.
   */
  readonly auth0SessionRef: string | undefined;
  readonly createdAt: number;
  /** The last activity, accurate to the idle expiry's roll interval (at most a minute). */
  readonly lastActiveAt: number;
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
  refOf(req: Request): string | undefined;
}

const SESSION_REF = /^[\w-]{10}$/;

/** Whether a value can be a `sessionRef` (10 base64url characters). */
export const isSessionRef = (value: unknown): value is string => typeof value === 'string' && SESSION_REF.test(value);

/** The `bff.sessions` of a BFF. Reads the per-user index; reads no token except the ORT of a session it ends. */
export function createSessionControl(config: BffConfig, sessions: Sessions, idp: IdpClient, report: Reporter): SessionControl {
  const { backend } = sessions;

  /** The user's sessions that still have a record, with their summaries. */
  async function sessionsOf(sub: string): Promise<Array<{ id: string; ref: string; summary: SessionSummary }>> {
    const ids = await backend.findSessions({ sub });
    const summaries = await backend.readSummaries(ids);
    return ids.flatMap((id, i) => {
      const summary = summaries[i];
      return summary !== undefined && summary.sub === sub ? [{ id, ref: sessionRef(id), summary }] : [];
    });
  }

  /** The ORT of the first of these sessions that has one: revoking any ORT of an Auth0 session ends all of it. */
  async function ortOf(ids: readonly string[]): Promise<{ token: string; sid: string | undefined } | undefined> {
    for (const id of ids) {
      const record = await backend.readRecord(id);
      if (record?.refreshToken !== undefined) return { token: record.refreshToken, sid: record.sid };
    }
    return undefined;
  }

  /** Revokes an ORT at Auth0, which ends its Auth0 session; false (reported) when Auth0 did not confirm. */
  async function revoke(ort: { token: string; sid: string | undefined }, sub: string, ref: string): Promise<boolean> {
    try {
      await idp.revoke(ort.token);
      return true;
    } catch (error) {
      report.revocationFailed({ sub, sid: ort.sid, sessionRef: ref }, classifyTokenFailure(error));
      return false;
    }
  }

  return {
    async list(selector) {
      const sub = checkSub(selector, 'sessions.list');
      const now = config.clock();
      return (await sessionsOf(sub))
        .filter(({ summary }) => now < summary.absoluteExpiresAt && now < summary.idleExpiresAt)
        .map(({ ref, summary }) => describe(ref, summary))
        .sort((a, b) => b.lastActiveAt - a.lastActiveAt);
    },

    async end(selector) {
      const sub = checkSub(selector, 'sessions.end');
      const { sessionRef: which, except } = selector;
      if (which !== 'all' && !isSessionRef(which)) throw new TypeError('sessions.end: "sessionRef" must be a sessionRef from sessions.list(), or "all"');
      if (except !== undefined && !isSessionRef(except)) throw new TypeError('sessions.end: "except" must be a sessionRef from sessions.list()');
      const found = await sessionsOf(sub);
      const keptSid = found.find((s) => s.ref === except)?.summary.sid;
      const targets = found.filter((s) => s.ref !== except && (which === 'all' || s.ref === which));

      // Grouped by Auth0 session: one revocation ends all of it at Auth0, one endAll every BFF session bound to it.
      const groups = new Map<string, string[]>();
      for (const { id, summary } of targets) {
        const key = summary.sid === undefined ? `id:${id}` : `sid:${summary.sid}`;
        groups.set(key, [...(groups.get(key) ?? []), id]);
      }
      let ended = 0;
      let revoked = 0;
      let revocationFailed = 0;
      for (const [key, ids] of groups) {
        const sid = key.startsWith('sid:') ? key.slice(4) : undefined;
        if (sid !== undefined && sid === keptSid) {
          for (const id of ids) ended += await sessions.endAll({ id, sub }, 'revoked');
          continue;
        }
        // Ended here first, then at Auth0: the browser's next call is refused at once, and a back-channel logout
        // that the revocation may set off finds nothing left to do.
        const ort = await ortOf(ids);
        ended += await sessions.endAll({ id: ids[0] as string, sub, sid }, 'revoked');
        if (ort === undefined) continue;
        if (await revoke(ort, sub, sessionRef(ids[0] as string))) revoked += 1;
        else revocationFailed += 1;
      }
      return { ended, revoked, revocationFailed };
    },

    refOf(req) {
      const id = sessions.idOf(req);
      return id === undefined ? undefined : sessionRef(id);
    },
  };
}

function describe(ref: string, summary: SessionSummary): SessionInfo {
  const seconds = (ms: number) => Math.floor(ms / 1000);
  return {
    sessionRef: ref,
    auth0SessionRef: summary.sid === undefined ? undefined : sessionRef(`sid:${summary.sid}`),
    createdAt: seconds(summary.createdAt),
    lastActiveAt: seconds(summary.lastActiveAt),
    idleExpiresAt: seconds(summary.idleExpiresAt),
    expiresAt: seconds(summary.absoluteExpiresAt),
    userAgent: summary.userAgent,
  };
}

function checkSub(selector: { sub?: unknown } | undefined, method: string): string {
  const sub = selector?.sub;
  if (typeof sub !== 'string' || sub.length === 0) throw new TypeError(`${method}: "sub" must be a non-empty string (the user's ID token sub)`);
  return sub;
}
