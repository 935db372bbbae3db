import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Request } from 'express';
import type { Store } from 'express-session';
import type { BffConfig } from '../config/validate.js';
import { BffError, ErrorCode } from '../errors.js';
import type { LogoutReason } from '../events/events.js';
import type { Ended, Reporter } from '../events/reporter.js';
import type { SessionBackend } from './backend.js';
import { BackgroundRetries } from './background-retries.js';
import type { SessionView, StoredSessionRecord } from './record.js';
import { sessionIdReader, type SessionIdReader } from './session-cookie.js';

/** What a session's lifetime checks read. */
type Lifetimes = Pick<SessionView, 'sub' | 'sid' | 'absoluteExpiresAt' | 'idleExpiresAt' | 'lastActiveAt'>;

/** A logged-in request: the BFF session id and what the hot path read of its record. */
export interface LoadedSession {
  readonly id: string;
  readonly view: SessionView;
}

/** What express-session keeps for the BFF: only the session's expiries (the record holds the rest). */
export interface BffSessionData {
  idleExpiresAt: number;
  absoluteExpiresAt: number;
}

declare module 'express-session' {
  interface SessionData {
    bff?: BffSessionData;
  }
}

/** A short one-way digest of a session id, for log lines and events (the id itself is a bearer secret). */
export const sessionRef = (id: string): string => createHash('sha256').update(id).digest('base64url').slice(0, 10);

/**
 * Finding the session of a request, checking its lifetimes, rolling its idle expiry, and ending sessions:
 * every full logout goes through `endAll`, whatever started it.
 */
export class Sessions {
  private readonly touchInterval: number;
  private readonly sessionIds: SessionIdReader;
  /** With session.external: the app's express-session store, whose entries a logout destroys as well. */
  private externalStore: Store | undefined;
  /** Told the ids of sessions that ended (their connections close: src/realtime). */
  private readonly endListeners: Array<(ids: readonly string[]) => void> = [];
  /** Logouts (and lock releases) the store has not taken yet, retried in the background. */
  private readonly retries: BackgroundRetries;
  /**
   * Sessions whose end the store failed (it may have run it without its answer coming back), oldest first, each
   * with whether another `end` took it out of the store since (the back-channel logout of its revocation): a
   * logout retried in the background did not end those. Only these are remembered: a process that ended many
   * sessions with the store answering keeps nothing of them.
   */
  private readonly uncertainEnds = new Map<string, { endedElsewhere: boolean; at: number }>();

  constructor(
    private readonly config: BffConfig,
    readonly backend: SessionBackend,
    private readonly report: Reporter,
  ) {
    // Rolling the idle expiry is a write: do it at most once per interval, never on every request.
    this.touchInterval = Math.min(60_000, config.session.idleTimeoutMs / 10);
    this.sessionIds = sessionIdReader(config.session.cookieName, config.session.secrets);
    this.retries = new BackgroundRetries(config.logger, report.lines);
  }

  /** Stops background work. */
  close(): void {
    this.sessionIds.close();
    this.retries.close();
  }

  /** Remembers the app's own session store (session.external), so that logouts can clear its entries too. */
  adoptStore(store: Store | undefined): void {
    if (store !== undefined && this.externalStore !== store) this.externalStore = store;
  }

  /** Calls `listener` with the ids of the sessions each `endAll` ended, once they are gone from the store. */
  onEnd(listener: (ids: readonly string[]) => void): void {
    this.endListeners.push(listener);
  }

  /**
   * The session id the request carries, if its cookie is genuine. No store access. `headers`: the request's, when
   * the caller has them at hand (`req.headers` is a getter, and not a cheap one in an app that also runs Express).
   */
  idOf(req: IncomingMessage, headers: IncomingHttpHeaders = req.headers): string | undefined {
    if (this.config.session.external) {
      const own = req as Request;
      return own.session?.bff ? own.sessionID : undefined;
    }
    return this.sessionIds.read(headers.cookie);
  }

  /**
   * The logged-in session of a request, read in one round trip (or none) with the access token for `audience`.
   * Throws 401 login_required without one; a session past its idle or absolute lifetime is ended (with every
   * session of its Auth0 session) and answers 401 session_ended. `headers` as for `idOf`.
   */
  load(req: IncomingMessage, audience: string, headers: IncomingHttpHeaders = req.headers): LoadedSession | Promise<LoadedSession> {
    const id = this.idOf(req, headers);
    if (id === undefined) throw loginRequired();
    // A view the backend holds as current comes back synchronously: no await on the hot path.
    const now = this.backend.readViewNow?.(id, audience);
    if (now !== undefined) {
      const ended = this.checkLifetimes(id, now);
      return ended ?? { id, view: now };
    }
    return this.loadFromStore(id, audience);
  }

  private async loadFromStore(id: string, audience: string): Promise<LoadedSession> {
    const view = await this.backend.readView(id, audience);
    if (!view) throw loginRequired();
    const ended = this.checkLifetimes(id, view);
    if (ended) await ended;
    return { id, view };
  }

  /**
   * The whole record of the request's session (claims, ID token), with the same checks as `load`. With
   * `touch: false` the request does not count as activity (a probe of whether the session is alive must not keep
   * it alive); a session past its lifetime still ends.
   */
  async loadRecord(req: IncomingMessage, options: { touch?: boolean } = {}): Promise<{ id: string; record: StoredSessionRecord }> {
    const id = this.idOf(req);
    if (id === undefined) throw loginRequired();
    const record = await this.backend.readRecord(id);
    if (!record) throw loginRequired();
    const now = this.config.clock();
    const ended = this.checkLifetimes(id, record, false, now);
    if (ended) await ended;
    const idleExpiresAt = options.touch === false ? undefined : this.rolledIdleExpiry(record, now);
    if (idleExpiresAt === undefined) return { id, record };
    // Rolled before the answer, which then gives the expiry the store holds (the SPA shows it, and a "stay signed
    // in" button calls this); if the store fails, the expiry it still has.
    try {
      await this.backend.touch(id, idleExpiresAt, now);
    } catch (error) {
      this.report.storeFailed(error, 'idle_roll', sessionRef(id));
      return { id, record };
    }
    return { id, record: { ...record, idleExpiresAt, lastActiveAt: now } };
  }

  /**
   * Ends a session past its idle or absolute lifetime (the returned promise rejects with session_ended), and
   * rolls a live one's idle expiry in the background when due. Synchronous for a live session: the hot path.
   */
  private checkLifetimes(id: string, session: Lifetimes, touch = true, now = this.config.clock()): Promise<never> | undefined {
    if (now >= session.absoluteExpiresAt || now >= session.idleExpiresAt) {
      const reason: LogoutReason = now >= session.absoluteExpiresAt ? 'absolute_timeout' : 'idle_timeout';
      return this.endAll({ id, sub: session.sub, sid: session.sid }, reason).then(() => {
        throw sessionEnded(reason === 'absolute_timeout' ? 'The session reached its maximum lifetime.' : 'The session ended after a period of inactivity.');
      });
    }
    if (touch) {
      const idleExpiresAt = this.rolledIdleExpiry(session, now);
      if (idleExpiresAt !== undefined) this.backend.touch(id, idleExpiresAt, now).catch((error: unknown) => this.report.storeFailed(error, 'idle_roll', sessionRef(id)));
    }
    return undefined;
  }

  /**
   * The idle expiry a request at `now` rolls the session's to, when a roll is due: activity is recorded (and the
   * idle expiry rolled, never past the absolute lifetime) at most once per interval.
   */
  private rolledIdleExpiry(session: Lifetimes, now: number): number | undefined {
    if (now - session.lastActiveAt < this.touchInterval) return undefined;
    return Math.min(session.absoluteExpiresAt, now + this.config.session.idleTimeoutMs);
  }

  /**
   * A full logout: ends this BFF session and every other one bound to the same Auth0 session (or, given only a
   * user, every session of that user), and reports it. Returns how many sessions it ended.
   */
  async endAll(target: EndTarget, reason: LogoutReason, extra?: { revoked?: boolean }): Promise<number> {
    const ended = await this.end(target);
    this.report.logout(reason, ended, extra);
    return ended.sessions;
  }

  /**
   * Ends the sessions as `endAll` does, without reporting the logout: the caller reports it once it is complete.
   * Given `ids` (from `find`), ends those.
   */
  async end(target: EndTarget, ids?: readonly string[]): Promise<Ended> {
    return (await this.endWithRecords(target, ids)).ended;
  }

  /**
   * `end`, also giving the records it took out of the store (atomically, each by one caller only): a caller that
   * revokes their ORT revokes what it ended itself, never what a concurrent end took. Their tokens go to Auth0
   * only, never into an event or a log line.
   */
  async endWithRecords(target: EndTarget, ids?: readonly string[]): Promise<{ ended: Ended; records: readonly StoredSessionRecord[] }> {
    const found = new Set(ids ?? (target.id === undefined ? [] : [target.id]));
    let ended: StoredSessionRecord[];
    try {
      if (ids === undefined) for (const id of await this.find(target)) found.add(id);
      ended = await this.backend.destroy([...found]);
    } catch (error) {
      this.rememberUncertainEnds(found);
      throw error;
    } finally {
      // Every caller has decided these sessions end: their connections close even when the store failed midway
      // (the records may be gone already), or could not even say which sessions share the Auth0 session (the one
      // named is known: a cluster's index may be on a master that fails over while the session's own is not), and
      // the caller retries or answers 503.
      this.sessionIds.forget(found);
      for (const listener of this.endListeners) listener([...found]);
    }
    if (ended.length > 0 && this.uncertainEnds.size > 0) {
      for (const id of found) {
        const uncertain = this.uncertainEnds.get(id);
        if (uncertain !== undefined) uncertain.endedElsewhere = true;
      }
    }
    const external = this.externalStore;
    if (external) {
      // The app's store may be anything: a failure there leaves an entry without a record, which logs nobody in.
      await Promise.all([...found].map((id) => new Promise<void>((resolve) => external.destroy(id, () => resolve()))));
    }
    return { ended: { sessions: ended.length, sub: target.sub ?? ended[0]?.sub, sid: target.sid ?? ended[0]?.sid }, records: ended };
  }

  /** The BFF session ids `end` would end: reads only. */
  async find(target: EndTarget): Promise<string[]> {
    const ids = new Set<string>(target.id === undefined ? [] : [target.id]);
    if (target.sid !== undefined) for (const id of await this.backend.findSessions({ sid: target.sid })) ids.add(id);
    else if (target.sub !== undefined && target.id === undefined) for (const id of await this.backend.findSessions({ sub: target.sub })) ids.add(id);
    return [...ids];
  }

  /**
   * `endAll` for sessions whose end is decided whatever the store does (their ORT was revoked, their Auth0 session
   * is over): when the store fails, the end is retried in the background until it takes (see `endLater`), and this
   * resolves to false instead of failing. Given `ids` (from `find`), the first attempt ends those.
   */
  async endEventually(target: EndTarget, reason: LogoutReason, extra?: { revoked?: boolean; ids?: readonly string[] }): Promise<boolean> {
    try {
      this.report.logout(reason, await this.end(target, extra?.ids), extra);
      return true;
    } catch (error) {
      if (!isStoreFailure(error)) throw error;
      this.endLater(target, reason, extra);
      return false;
    }
  }

  /**
   * Ends the sessions in the background, once the store answers again, and reports the logout then (unless the
   * caller `reported` it already). For a logout that has happened (the browser was answered) but that the store
   * did not take.
   */
  endLater(target: EndTarget, reason: LogoutReason, extra?: { revoked?: boolean }, reported = false): void {
    // Every logout while the store is down comes here: the first of each reason is logged, the rest counted.
    this.report.lines.warn(`end-later:${reason}`, 'The session store did not take a logout; retrying in the background', {
      ...(target.id === undefined ? {} : { sessionRef: sessionRef(target.id) }),
      reason,
    });
    // Re-finding is harmless: a session ended meanwhile is simply not found again. Up to 15 minutes: past that,
    // the sessions end at their next exchange anyway (Auth0 refuses their ORT).
    const revoked = extra?.revoked === undefined ? {} : { revoked: extra.revoked };
    const id = target.id;
    if (!reported && id !== undefined && !this.uncertainEnds.has(id)) this.rememberUncertainEnds([id]);
    const retry = reported ? async () => {
      await this.end(target);
      if (id !== undefined) this.uncertainEnds.delete(id);
    } : async () => {
      // The session named was there when its end was decided. Gone now, and not by another logout (the back-channel
      // logout Auth0 sent for the revocation, which reported it), it ended by this one: the store ran the first
      // attempt without its answer coming back in time.
      const endedUnseen = id !== undefined && this.uncertainEnds.get(id)?.endedElsewhere !== true && (await this.backend.readRecord(id)) === undefined;
      const ended = await this.end(target);
      if (id !== undefined) this.uncertainEnds.delete(id);
      this.report.logout(reason, endedUnseen ? { ...ended, sessions: ended.sessions + 1 } : ended, revoked);
    };
    this.retries.add(`end ${target.id ?? ''} ${target.sid ?? ''} ${target.sub ?? ''}`, `a ${reason} logout`, retry, ENDS);
  }

  private rememberUncertainEnds(ids: Iterable<string>): void {
    const now = performance.now();
    for (const id of ids) {
      this.uncertainEnds.delete(id);
      this.uncertainEnds.set(id, { endedElsewhere: false, at: now });
    }
    // Kept as long as a logout is retried at most; fewer when the store fails for very many at once.
    for (const [id, { at }] of this.uncertainEnds) {
      if (now - at < ENDS.maxAgeMs && this.uncertainEnds.size <= UNCERTAIN_ENDS_MAX) break;
      this.uncertainEnds.delete(id);
    }
  }

  /**
   * Gives an exchange lock back once the store answers again, if a release failed: a lock left behind would make
   * every call of the session, in every process, wait for its expiry. With `maybeLate` (a lock request the store
   * did not answer in time), the request may still run when the client reconnects, after a first release: the
   * release is then repeated for a while after the store answers again. Releasing a lock not held is harmless.
   */
  releaseLockLater(id: string, owner: string, maybeLate = false): void {
    let releasedAt: number | undefined;
    this.retries.add(`lock ${id} ${owner}`, 'an exchange lock release', async () => {
      await this.backend.releaseLock(id, owner);
      if (!maybeLate) return;
      releasedAt ??= performance.now();
      if (performance.now() - releasedAt < LATE_LOCK_WINDOW_MS) throw new Error('release again: the lock request may still run');
    }, LOCK_RELEASES);
  }
}

const ENDS = { maxAgeMs: 15 * 60_000, baseDelayMs: 100, maxDelayMs: 5_000 };
/** How many sessions whose end the store failed are remembered (ids only: under 1 MB). */
const UNCERTAIN_ENDS_MAX = 10_000;
// A lock expires by itself within seconds: retry quickly, and not for longer than it could live.
const LOCK_RELEASES = { maxAgeMs: 30_000, baseDelayMs: 50, maxDelayMs: 250 };
// node-redis sends commands that waited for a reconnection right after it: a late lock request runs then.
const LATE_LOCK_WINDOW_MS = 2_000;

/** Whether an error is the session store failing or not answering in time (a 503, never a logout). */
export const isStoreFailure = (error: unknown): boolean => error instanceof BffError && error.code === ErrorCode.SESSION_STORE_UNAVAILABLE;

/** Which sessions a logout ends: one BFF session and its Auth0 session's others (`sid`), or a user's (`sub` alone). */
export interface EndTarget {
  readonly id?: string;
  readonly sub?: string | undefined;
  readonly sid?: string | undefined;
}

export const loginRequired = (): BffError => new BffError(ErrorCode.LOGIN_REQUIRED, 'There is no session; log in first.');
export const sessionEnded = (description = 'The Auth0 session has ended; log in again.'): BffError =>
  new BffError(ErrorCode.SESSION_ENDED, description);
