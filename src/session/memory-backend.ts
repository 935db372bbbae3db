import session, { type SessionData } from 'express-session';
import type { SessionBackend } from './backend.js';
import type { FieldCipher } from './encryption.js';
import { RecordWatches } from './record-watch.js';
import {
  EXPIRY_GRACE_MS, F, SUMMARY_FIELDS, accessTokenField, decodeAccessToken, decodeSummary, decodeView, decodeRecord, encodeAccessToken, encodeRecord, encodeUpdate,
  type SessionView, type StoredSessionRecord,
} from './record.js';

interface Entry<T> {
  value: T;
  expiresAt: number;
}

/**
 * Expiring entries in a Map. Expired ones are dropped when read and by a sweep (an unref'd timer),
 * so that ended and abandoned sessions do not accumulate on the heap.
 */
class ExpiringMap<T> {
  readonly entries = new Map<string, Entry<T>>();
  constructor(private readonly clock: () => number) {}
  get(key: string): T | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.clock()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }
  set(key: string, value: T, expiresAt: number): void {
    this.entries.set(key, { value, expiresAt });
  }
  expireAt(key: string, expiresAt: number): void {
    const entry = this.entries.get(key);
    if (entry) entry.expiresAt = expiresAt;
  }
  delete(key: string): boolean {
    return this.entries.delete(key);
  }
  sweep(): void {
    const now = this.clock();
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key);
  }
}

/** express-session store on the same expiring map, so that a session's entries expire together. */
class MemorySessionStore extends session.Store {
  constructor(private readonly sessions: ExpiringMap<string>, private readonly defaultTtlMs: () => number) {
    super();
  }
  override get(sid: string, cb: (err: unknown, session?: SessionData | null) => void): void {
    const raw = this.sessions.get(sid);
    cb(null, raw === undefined ? null : (JSON.parse(raw) as SessionData));
  }
  override set(sid: string, sess: SessionData, cb?: (err?: unknown) => void): void {
    const idle = (sess as { bff?: { idleExpiresAt?: number } }).bff?.idleExpiresAt;
    this.sessions.set(sid, JSON.stringify(sess), (idle ?? this.defaultTtlMs()) + EXPIRY_GRACE_MS);
    cb?.();
  }
  override destroy(sid: string, cb?: (err?: unknown) => void): void {
    this.sessions.delete(sid);
    cb?.();
  }
}

const MAX_PENDING_LOGINS = 10_000;

/** Everything in this process's memory: for one process only (a warning says so at startup). */
export function createMemoryBackend(cipher: FieldCipher, idleTimeoutMs: number, clock: () => number): SessionBackend & { sweep(): void } {
  const sessions = new ExpiringMap<string>(clock);
  const records = new ExpiringMap<Record<string, string>>(clock);
  const transactions = new ExpiringMap<string>(clock);
  const locks = new ExpiringMap<string>(clock);
  /** Auth0's Retry-After on a session's exchanges for an audience (`<id> <audience>`): when it ends. */
  const holds = new ExpiringMap<number>(clock);
  const once = new ExpiringMap<true>(clock);
  const clientTokens = new ExpiringMap<string>(clock);
  const indexes = new Map<string, Map<string, number>>();
  const watches = new RecordWatches();
  const store = new MemorySessionStore(sessions, () => clock() + idleTimeoutMs);

  const indexAdd = (key: string, id: string, until: number) => {
    let members = indexes.get(key);
    if (!members) indexes.set(key, (members = new Map()));
    const now = clock();
    for (const [member, exp] of members) if (exp <= now) members.delete(member);
    members.set(id, until);
  };
  const indexRemove = (key: string, id: string) => {
    const members = indexes.get(key);
    if (!members) return;
    members.delete(id);
    if (members.size === 0) indexes.delete(key);
  };
  const sweep = () => {
    for (const map of [sessions, records, transactions, locks, holds, once, clientTokens]) map.sweep();
    const now = clock();
    for (const [key, members] of indexes) {
      for (const [member, exp] of members) if (exp <= now) members.delete(member);
      if (members.size === 0) indexes.delete(key);
    }
  };
  const timer = setInterval(sweep, 60_000);
  timer.unref();
  const viewOf = (id: string, audience: string): SessionView | undefined => {
    const fields = records.get(id);
    if (!fields) return undefined;
    return decodeView([fields[F.sub], fields[F.sid], fields[F.absoluteExpiresAt], fields[F.idleExpiresAt], fields[F.lastActiveAt], fields[accessTokenField(audience)]], cipher);
  };

  return {
    kind: 'memory',
    store,
    sweep,
    ping: async () => {},
    putTransaction: async (state, value, ttlMs) => {
      // Anyone can start logins: keep the number pending bounded, forgetting the oldest first.
      if (transactions.entries.size >= MAX_PENDING_LOGINS) {
        transactions.sweep();
        const oldest = transactions.entries.keys().next().value;
        if (transactions.entries.size >= MAX_PENDING_LOGINS && oldest !== undefined) transactions.delete(oldest);
      }
      transactions.set(state, value, clock() + ttlMs);
    },
    takeTransaction: async (state) => {
      const value = transactions.get(state);
      transactions.delete(state);
      return value;
    },
    createRecord: async (id, record) => {
      const until = Math.min(record.idleExpiresAt, record.absoluteExpiresAt) + EXPIRY_GRACE_MS;
      if (record.sid !== undefined) indexAdd(`sid:${record.sid}`, id, record.absoluteExpiresAt);
      indexAdd(`sub:${record.sub}`, id, record.absoluteExpiresAt);
      records.set(id, encodeRecord(record, cipher), until);
      sessions.expireAt(id, until);
    },
    readView: async (id, audience) => viewOf(id, audience),
    readViewNow: viewOf,
    watchRecord: (id) => watches.watch(`tok:${id}`),
    readRecord: async (id) => {
      const fields = records.get(id);
      return fields ? decodeRecord(fields, cipher) : undefined;
    },
    storeTokens: async (id, update) => {
      const fields = records.get(id);
      if (!fields) return false;
      if (update.refreshToken && (fields[F.refreshToken] ?? '') === (update.refreshToken.previousStored ?? '')) {
        fields[F.refreshToken] = cipher.encrypt(update.refreshToken.next);
      }
      Object.assign(fields, encodeUpdate(update, cipher));
      records.expireAt(id, update.idleExpiresAt + EXPIRY_GRACE_MS);
      sessions.expireAt(id, update.idleExpiresAt + EXPIRY_GRACE_MS);
      watches.changed(`tok:${id}`);
      return true;
    },
    touch: async (id, idleExpiresAt, lastActiveAt) => {
      const fields = records.get(id);
      if (!fields) return;
      fields[F.idleExpiresAt] = String(idleExpiresAt);
      fields[F.lastActiveAt] = String(lastActiveAt);
      records.expireAt(id, idleExpiresAt + EXPIRY_GRACE_MS);
      sessions.expireAt(id, idleExpiresAt + EXPIRY_GRACE_MS);
    },
    readSummaries: async (ids) => ids.map((id) => {
      const fields = records.get(id);
      return fields ? decodeSummary(SUMMARY_FIELDS.map((name) => fields[name])) : undefined;
    }),
    findSessions: async ({ sid, sub }) => {
      const key = sid !== undefined ? `sid:${sid}` : sub !== undefined ? `sub:${sub}` : undefined;
      return key === undefined ? [] : [...(indexes.get(key)?.keys() ?? [])];
    },
    destroy: async (ids) => {
      const ended: StoredSessionRecord[] = [];
      for (const id of ids) {
        const fields = records.entries.get(id)?.value;
        records.delete(id);
        sessions.delete(id);
        locks.delete(id);
        if (!fields) continue;
        watches.changed(`tok:${id}`);
        if (fields[F.sid] !== undefined) indexRemove(`sid:${fields[F.sid]}`, id);
        indexRemove(`sub:${fields[F.sub]}`, id);
        const record = decodeRecord(fields, cipher);
        if (record) ended.push(record);
      }
      return ended;
    },
    readClientToken: async (name) => decodeAccessToken(clientTokens.get(name), cipher),
    watchClientToken: (name) => watches.watch(`ctok:${name}`),
    storeClientToken: async (name, entry) => {
      clientTokens.set(name, encodeAccessToken(entry, cipher), entry.expiresAt);
      watches.changed(`ctok:${name}`);
    },
    acquireLock: async (name, owner, ttlMs, audience) => {
      if (locks.get(name) !== undefined) return false;
      const heldUntil = audience === undefined ? undefined : holds.get(`${name} ${audience}`);
      if (heldUntil !== undefined) return { heldUntil };
      locks.set(name, owner, clock() + ttlMs);
      return true;
    },
    releaseLock: async (name, owner) => {
      if (locks.get(name) === owner) locks.delete(name);
    },
    holdLock: async (name, owner, audience, until) => {
      if (locks.get(name) === owner) locks.delete(name);
      holds.set(`${name} ${audience}`, until, until);
    },
    rememberOnce: async (name, ttlMs) => {
      if (once.get(name)) return false;
      once.set(name, true, clock() + ttlMs);
      return true;
    },
    forgetOnce: async (name) => {
      once.delete(name);
    },
    // Read when metrics are collected (about once a minute), not per request: a walk over the records is fine.
    countSessions: () => {
      const now = clock();
      let live = 0;
      for (const { value } of records.entries.values()) if (Number(value[F.idleExpiresAt]) > now && Number(value[F.absoluteExpiresAt]) > now) live++;
      return live;
    },
    close: async () => clearInterval(timer),
  };
}
