import type { Request } from 'express';
import type { BffConfig } from '../config/validate.js';
import type { Ended, Reporter } from '../events/reporter.js';
import { classifyTokenFailure } from '../idp/failures.js';
import type { IdpClient } from '../idp/idp-client.js';
import type { SessionSummary, StoredSessionRecord } from './record.js';
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
  async function ortOf(ids: readonly string[]): Promise<Ort | undefined> {
    for (const id of ids) {
      const ort = ortIn([await backend.readRecord(id)]);
      if (ort !== undefined) return ort;
    }
    return undefined;
  }

  /** Revokes an ORT at Auth0, which ends its Auth0 session; false (reported) when Auth0 did not confirm. */
  async function revoke(ort: Ort, sub: string, ref: string): Promise<boolean> {
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
      const count = (revokedNow: boolean | undefined) => {
        if (revokedNow === true) revoked += 1;
        else if (revokedNow === false) revocationFailed += 1;
      };
      for (const [key, ids] of groups) {
        const sid = key.startsWith('sid:') ? key.slice(4) : undefined;
        if (sid !== undefined && sid === keptSid) {
          // Ended here only (no revocation: it would end the current session's Auth0 session too), one by one.
          for (const id of ids) {
            const target = { id, sub };
            try {
              const endedHere = await sessions.end(target);
              report.logout('revoked', endedHere);
              ended += endedHere.sessions;
            } catch (error) {
              if (!isStoreFailure(error)) throw error;
              // The end was sent: the store may have run it without its answer coming back, or may still run it
              // once its client reconnects. It is decided, then (the user asked for it): it is retried until it
              // takes, and the retry reports the logout, counting the session a first attempt ended unseen.
              sessions.endLater(target, 'revoked');
              ended += 1;
            }
          }
          continue;
        }
        // Ended here first, then at Auth0: the browser's next call is refused at once, and a back-channel logout
        // that the revocation may set off finds nothing left to do.
        const target = { id: ids[0] as string, sub, sid };
        // Reads only, like the listing: a store failure up to here has changed nothing of this group: 503.
        const found = await sessions.find(target);
        const ortBefore = await ortOf(ids);
        let taken: { ended: Ended; records: readonly StoredSessionRecord[] } | undefined;
        try {
          taken = await sessions.endWithRecords(target, found);
        } catch (error) {
          if (!isStoreFailure(error)) throw error;
        }
        if (taken !== undefined) {
          // Revoked with the ORT the store handed over as it took the records out, atomically: of two requests
          // ending the same session at once, only the one that ended it revokes and counts it.
          const ort = ortIn(taken.records);
          const revokedNow = ort === undefined ? undefined : await revoke(ort, sub, sessionRef(target.id));
          report.logout('revoked', taken.ended, revokedNow === undefined ? undefined : { revoked: revokedNow });
          ended += taken.ended.sessions;
          count(revokedNow);
          continue;
        }
        // The store failed once the end was sent: it may have run it (the records may be gone, their indexes not)
        // without its answer coming back, or may still run it once its client reconnects. The end is under way, so
        // it is decided, and carried through whatever the store does: the revocation goes ahead with the ORT read
        // before (a retry from the browser would find nothing to end while the Auth0 session lives on), the end is
        // retried until the store takes it, and the answer counts these sessions. A 503 would claim that nothing
        // happened while the sessions may be gone already (and a retry of it end nothing, report nothing); and the
        // retry ends only what the user named, so the fault logs nobody else out.
        const revokedNow = ortBefore === undefined ? undefined : await revoke(ortBefore, sub, sessionRef(target.id));
        const extra = revokedNow === undefined ? undefined : { revoked: revokedNow };
        if (revokedNow === false) {
          // Auth0 keeps the sessions' ORT alive: they have ended only if the store ran the end. The retry reports the
          // logout once it has happened, counting the session a first attempt ended unseen.
          sessions.endLater(target, 'revoked', extra);
        } else {
          // Nothing at Auth0 keeps these sessions alive any more: the logout has happened, and the store is told
          // when it answers again (which may find the records gone already: the failed attempt took them).
          report.logout('revoked', { sessions: ids.length, sub, sid }, extra);
          sessions.endLater(target, 'revoked', extra, true);
        }
        ended += ids.length;
        count(revokedNow);
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

interface Ort {
  readonly token: string;
  readonly sid: string | undefined;
}

/** The ORT of the first of these records that has one. */
function ortIn(records: ReadonlyArray<StoredSessionRecord | undefined>): Ort | undefined {
  const record = records.find((r) => r?.refreshToken !== undefined);
  return record?.refreshToken === undefined ? undefined : { token: record.refreshToken, sid: record.sid };
}

function checkSub(selector: { sub?: unknown } | undefined, method: string): string {
  const sub = selector?.sub;
  if (typeof sub !== 'string' || sub.length === 0) throw new TypeError(`${method}: "sub" must be a non-empty string (the user's ID token sub)`);
  return sub;
}
