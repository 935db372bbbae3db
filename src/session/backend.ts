import type { Store } from 'express-session';
import type { RecordWatch } from './record-watch.js';
import type { AccessTokenEntry, SessionRecord, SessionSummary, SessionView, StoredSessionRecord, TokenUpdate } from './record.js';

/**
 * Where sessions live: Redis (shared by every BFF process) or memory (one process).
 * Both keep the same promises: a record is created only under a fresh id, updates touch only a record that
 * still exists, and `destroy` removes the record, the express-session entry and the index entries together.
 */
export interface SessionBackend {
  readonly kind: 'redis' | 'memory';
  /** The express-session store for the BFF's own session middleware. */
  readonly store: Store;

  ping(): Promise<void>;

  /** Login transactions: single use, expiring, keyed by the OAuth `state`. */
  putTransaction(state: string, value: string, ttlMs: number): Promise<void>;
  takeTransaction(state: string): Promise<string | undefined>;

  createRecord(id: string, record: SessionRecord): Promise<void>;
  /** The hot path: one round trip. */
  readView(id: string, audience: string): Promise<SessionView | undefined>;
  /**
   * The view of a session this process holds and knows to be current, at once (memory; Redis with client-side
   * caching, after a first read). Undefined when it would take a round trip: then `readView`.
   */
  readonly readViewNow?: ((id: string, audience: string) => SessionView | undefined) | undefined;
  readRecord(id: string): Promise<StoredSessionRecord | undefined>;
  /**
   * Hears of changes to a session's record made by any process (tokens stored, the session ended), so that a
   * process waiting for another's token exchange takes the new token as soon as it is stored. Undefined where
   * the store cannot tell (Redis without client-side caching): then the waiter reads again on a short interval.
   */
  readonly watchRecord?: ((id: string) => RecordWatch) | undefined;
  /** Returns false when the record is gone (the session ended meanwhile): nothing is written then. */
  storeTokens(id: string, update: TokenUpdate): Promise<boolean>;
  /** Rolls the idle expiry of a record that still exists, and records when that activity was. */
  touch(id: string, idleExpiresAt: number, lastActiveAt: number): Promise<void>;
  /** What a session list shows of each session (no token read), in the order asked; undefined for one that is gone. */
  readSummaries(ids: readonly string[]): Promise<Array<SessionSummary | undefined>>;

  /** BFF session ids bound to an Auth0 session id, or to a user. */
  findSessions(selector: { sid?: string; sub?: string }): Promise<string[]>;
  /** Ends sessions; returns the records that still existed (for events). */
  destroy(ids: readonly string[]): Promise<StoredSessionRecord[]>;

  /** The BFF application's own access token (client credentials) kept under `name`, shared by every process. */
  readClientToken(name: string): Promise<AccessTokenEntry | undefined>;
  /** Hears of changes to it made by any process, as `watchRecord` does of a session's record (same caveats). */
  readonly watchClientToken?: ((name: string) => RecordWatch) | undefined;
  /** Keeps it until it expires. */
  storeClientToken(name: string, entry: AccessTokenEntry): Promise<void>;

  /**
   * A lock with an owner and an expiry, for one exchange at a time across processes. true: taken; false: an exchange holds it. With `audience`, a lock that was free but whose audience's exchanges a
   * Retry-After holds (see `holdLock`): when that hold ends, and the lock is left free.
   */
  acquireLock(name: string, owner: string, ttlMs: number, audience?: string): Promise<LockAnswer>;
  releaseLock(name: string, owner: string): Promise<void>;
  /**
   * Releases the lock `owner` holds, and holds the exchanges for `audience` until `until` (epoch ms, the BFF's
   * clock): Auth0 asked (Retry-After) not to be asked again before then, and no process takes the lock for that
   * audience meanwhile.
   */
  holdLock(name: string, owner: string, audience: string, until: number): Promise<void>;
  /** True the first time a key is seen within ttlMs (replay protection). */
  rememberOnce(name: string, ttlMs: number): Promise<boolean>;
  /** Undoes rememberOnce (the work it guarded failed and may be retried). */
  forgetOnce(name: string): Promise<void>;

  /** How many sessions are alive, where that is cheap to know (memory); Redis cannot count them without a scan. */
  readonly countSessions?: (() => number) | undefined;

  close(): Promise<void>;
}

/** What taking a lock found: see `SessionBackend.acquireLock`. */
export type LockAnswer = boolean | { readonly heldUntil: number };
