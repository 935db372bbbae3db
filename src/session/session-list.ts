import type { Request } from 'express';
import type { BffConfig } from '../config/validate.js';
import type { Ended, Reporter } from '../events/reporter.js';
import { classifyTokenFailure } from '../idp/failures.js';
import type { IdpClient } from '../idp/idp-client.js';
import type { SessionSummary } from './record.js';
import type { SessionControl, SessionInfo } from './session-control.js';
import { isStoreFailure, sessionRef, type Sessions } from './sessions.js';

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
        const target = { id: ids[0] as string, sub, sid };
        let endedHere: Ended | undefined;
        let storeFailure: unknown;
        try {
          endedHere = await sessions.end(target);
        } catch (error) {
          // The store failed midway (the records may be gone, their indexes not): the revocation still goes
          // ahead, or a retry would find nothing to end while the Auth0 session lives on.
          if (!isStoreFailure(error)) throw error;
          storeFailure = error;
        }
        const revokedNow = ort === undefined ? undefined : await revoke(ort, sub, sessionRef(target.id));
        const extra = revokedNow === undefined ? undefined : { revoked: revokedNow };
        if (endedHere !== undefined) {
          report.logout('revoked', endedHere, extra);
          ended += endedHere.sessions;
        } else if (revokedNow !== false) {
          // Nothing at Auth0 keeps these sessions alive any more: the logout has happened, and the store is told
          // when it answers again (which may find the records gone already: the failed attempt took them).
          report.logout('revoked', { sessions: ids.length, sub, sid }, extra);
          sessions.endLater(target, 'revoked', extra, true);
          ended += ids.length;
        } else {
          throw storeFailure;
        }
        if (revokedNow === true) revoked += 1;
        else if (revokedNow === false) revocationFailed += 1;
      }
      return { ended, revoked, revocationFailed };
    },

    refOf(req) {
      // The app's Express request, typed as Node's in the public interface (as the Bff's own methods are).
      const id = sessions.idOf(req as Request);
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
