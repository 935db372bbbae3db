import { createHash } from 'node:crypto';
import { RedisStore } from 'connect-redis';
import type { SessionData } from 'express-session';
import { BffError, ErrorCode } from '../errors.js';
import type { RedisClient } from '../config/options.js';
import type { SessionBackend } from './backend.js';
import type { FieldCipher } from './encryption.js';
import { RecordWatches } from './record-watch.js';
import { replicaWaiter } from './redis-replicas.js';
import { CREATE, DESTROY, HOLD, INDEX_ADD, READ_RECORD, RELEASE, STORE_TOKENS, TOUCH } from './redis-scripts.js';
import { isRetryableReply, retryingReplies } from './redis-retry.js';
import { createViewMemo } from './view-memo.js';
import {
  EXPIRY_GRACE_MS, F, SUMMARY_FIELDS, VIEW_FIELDS, accessTokenField, decodeAccessToken, decodeRecord, decodeSummary, decodeView, encodeAccessToken, encodeRecord, encodeUpdate,
  type SessionRecord, type SessionView, type StoredSessionRecord, type TokenUpdate,
} from './record.js';

/*
 * Keys (prefix "bff:" by default). The BFF session id is a hash tag, so that a session's own keys share one
 * Redis Cluster slot and can be changed together by one script:
 *   bff:sess:{id}   express-session's entry (connect-redis)
 *   bff:tok:{id}    the session record (a hash: tokens, expiries, claims)
 *   bff:lock:{id}   the exchange lock of that session
 *   bff:hold:{id}   audience -> until when Auth0 (Retry-After) asked that session's exchanges to wait
 *   bff:idx:sid:<auth0 sid>, bff:idx:sub:<sub>   sorted sets of BFF session ids, scored by absolute expiry
 *   bff:tx:<state>  a pending login
 *   bff:once:<name> replay protection (back-channel logout jti)
 *   bff:ctok:<app>:<audience>[ <scope>]   the application's own access token for an API (client credentials),
 *                   until it expires; <app>: 16 base64url characters of SHA-256 over the issuer URL, a newline and
 *                   the Client ID, so that applications sharing a Redis and prefix keep their own tokens
 *   bff:lock:{<app>:<audience>[ <scope>]}   the exchange lock of that token
 */

interface Commands {
  isReady?: boolean;
  isOpen?: boolean;
  hmGet(key: string, fields: string[]): Promise<Array<string | null>>;
  get(key: string): Promise<string | null>;
  hGet(key: string, field: string): Promise<string | null>;
  set(key: string, value: string, options?: object): Promise<string | null>;
  getDel(key: string): Promise<string | null>;
  zRange(key: string, min: number, max: number): Promise<string[]>;
  zRem(key: string, members: string[]): Promise<number>;
  evalSha(sha: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  ping?(): Promise<string>;
  sendCommand?(args: string[]): Promise<unknown>;
}

/**
 * node-redis's client is an event emitter: 'ready' comes at each (re)connection of a client or a Sentinel client,
 * 'node-ready' at each (re)connection of one of a cluster's nodes (a cluster itself never says 'ready').
 */
const RECONNECTED = ['ready', 'node-ready'] as const;
interface Listenable {
  on(event: (typeof RECONNECTED)[number], listener: () => void): unknown;
  off(event: (typeof RECONNECTED)[number], listener: () => void): unknown;
}

/** The cause of a failure on a client that is not open: `redis.connect()` was never called, or it was closed. */
const CLIENT_CLOSED = Object.assign(new Error('The Redis client given to the BFF is not connected (redis.connect() was not called, or it was closed)'), { code: 'CLIENT_CLOSED' });

type Callback = (err?: any, data?: any) => any;
type Guard = <T>(operation: (deadline: number) => Promise<T>) => Promise<T>;

/**
 * Session store for express-session whose keys carry the session id as a Redis Cluster hash tag, and whose
 * commands get the backend's deadline and retries (connect-redis alone would wait for node-redis's own timeout).
 */
class TaggedRedisStore extends RedisStore {
  constructor(options: ConstructorParameters<typeof RedisStore>[0], private readonly guard: Guard) {
    super(options);
  }
  override get(sid: string, cb?: Callback) {
    return this.settle((deadline) => retryingReplies(deadline, () => super.get(`{${sid}}`)), cb);
  }
  override set(sid: string, sess: SessionData, cb?: Callback) {
    return this.settle((deadline) => retryingReplies(deadline, () => super.set(`{${sid}}`, sess)), cb);
  }
  override touch(sid: string, sess: SessionData, cb?: Callback) {
    return this.settle((deadline) => retryingReplies(deadline, () => super.touch(`{${sid}}`, sess)), cb);
  }
  override destroy(sid: string, cb?: Callback) {
    return this.settle((deadline) => retryingReplies(deadline, () => super.destroy(`{${sid}}`)), cb);
  }
  /** connect-redis answers through the callback when given one, else through the promise (it throws then). */
  private settle(operation: (deadline: number) => Promise<unknown>, cb: Callback | undefined): Promise<unknown> {
    const result = this.guard(operation);
    if (!cb) return result;
    return result.then((data) => cb(null, data), (error: unknown) => cb(error));
  }
}

export function createRedisBackend(
  appClient: RedisClient,
  prefix: string,
  cipher: FieldCipher,
  idleTimeoutMs: number,
  clock: () => number,
  commandTimeoutMs: number,
): SessionBackend {
  const client = appClient;
  const redis = client as unknown as Commands;
  const sessKey = (id: string) => `${prefix}sess:{${id}}`;
  const tokKey = (id: string) => `${prefix}tok:{${id}}`;
  const lockKey = (name: string) => `${prefix}lock:{${name}}`;
  /** Auth0's Retry-After on a session's exchanges: a hash of audience -> the hold's end (see HOLD). */
  const holdKey = (name: string) => `${prefix}hold:{${name}}`;
  const clientTokenKey = (name: string) => `${prefix}ctok:${name}`;
  const indexKey = (kind: 'sid' | 'sub', value: string) => `${prefix}idx:${kind}:${value}`;
  const shas = new Map<string, string>();
  // With client-side caching on the app's client, API calls of a cached session skip the command entirely, and
  // Redis tells this process when another one changes a session it read (the watches of waiting exchanges).
  const watches = new RecordWatches();
  const memo = createViewMemo(client, `${prefix}tok:`, (key) => watches.changed(key));
  // Redis reports changes only while the connection that read them lives: what changed while it was down is
  // never told. Each (re)connection wakes every watch, whose owner then reads again.
  const events = client as unknown as Partial<Listenable>;
  const onReconnected = () => watches.changed(undefined);
  if (memo && typeof events.on === 'function' && typeof events.off === 'function') for (const event of RECONNECTED) events.on(event, onReconnected);

  const isReady = () => (redis.isReady ?? redis.isOpen) !== false;
  const ensureReady = () => {
    if (isReady()) return;
    // A client never connected (the app did not call redis.connect()) or closed is said as such in the log line
    // (its cause), which would otherwise read as a Redis that does not answer.
    const cause = redis.isOpen === false ? CLIENT_CLOSED : undefined;
    throw new BffError(ErrorCode.SESSION_STORE_UNAVAILABLE, 'The session store is not answering; try again shortly.', cause === undefined ? undefined : { cause });
  };
  // A Redis that accepts connections but stops answering must not hang requests. node-redis's own command
  // timeout stops counting once a command is written to the socket, so each operation gets a deadline here,
  // checked by one sweeping timer rather than a timer per operation (the hot path).
  const pending = new Set<{ deadline: number; reject: (error: unknown) => void }>();
  const sweeper = setInterval(() => {
    const now = performance.now();
    for (const entry of pending) {
      if (entry.deadline > now) continue;
      pending.delete(entry);
      entry.reject(new BffError(ErrorCode.SESSION_STORE_UNAVAILABLE, 'The session store did not answer in time; try again shortly.'));
    }
  }, Math.max(10, Math.min(250, Math.floor(commandTimeoutMs / 4))));
  sweeper.unref();
  const storeFailure = (error: unknown): BffError =>
    error instanceof BffError ? error : new BffError(ErrorCode.SESSION_STORE_UNAVAILABLE, 'The session store failed; try again shortly.', { cause: error });

  /**
   * Runs one store operation within the command timeout. `operation` gets the deadline, so that the commands it
   * sends can be retried while Redis answers that it did not run them (resharding, failover: see redis-retry.ts).
   */
  function run<T>(operation: (deadline: number) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      ensureReady();
      const entry = { deadline: performance.now() + commandTimeoutMs, reject };
      pending.add(entry);
      operation(entry.deadline).then(
        (value) => {
          pending.delete(entry);
          resolve(value);
        },
        (error: unknown) => {
          pending.delete(entry);
          reject(storeFailure(error));
        },
      );
    });
  }
  /** Runs a script by its digest (loading it where a node does not know it yet), retried until `deadline`. */
  function script(deadline: number, source: string, keys: string[], args: string[]): Promise<unknown> {
    let sha = shas.get(source);
    if (sha === undefined) {
      sha = createHash('sha1').update(source).digest('hex');
      shas.set(source, sha);
    }
    const digest = sha;
    return retryingReplies(deadline, async () => {
      try {
        return await redis.evalSha(digest, { keys, arguments: args });
      } catch (error) {
        if (!String((error as Error)?.message).includes('NOSCRIPT')) throw error;
        return redis.eval(source, { keys, arguments: args });
      }
    });
  }
  /** One command, retried until `deadline` while Redis answers that it did not run it. */
  const retried = <T>(deadline: number, send: () => Promise<T>): Promise<T> => retryingReplies(deadline, send);
  // Waits for a replica to have a new session's record (cluster and Sentinel clients only): see redis-replicas.ts.
  const replicated = replicaWaiter(client, commandTimeoutMs);
  const ttlUntil = (at: number) => String(Math.max(1, Math.ceil(at + EXPIRY_GRACE_MS - clock())));

  const store = new TaggedRedisStore({
    client,
    prefix: `${prefix}sess:`,
    // The BFF rolls the expiry of a session's keys itself (on activity and on exchanges); express-session's own
    // touch would reset it to a value it cannot know.
    disableTouch: true,
    ttl: (sess: SessionData) => {
      const idle = (sess as { bff?: { idleExpiresAt?: number } }).bff?.idleExpiresAt;
      return Math.max(1, Math.ceil(((idle ?? clock() + idleTimeoutMs) + EXPIRY_GRACE_MS - clock()) / 1000));
    },
  }, run);

  return {
    kind: 'redis',
    store,
    // A cluster client answers PING from every master: healthy means all of them answer.
    ping: () => run(async (deadline) => {
      await retried(deadline, async () => {
        if (redis.ping) await redis.ping();
        else await redis.sendCommand?.(['PING']);
      });
    }),
    putTransaction: (state, value, ttlMs) => run(async (deadline) => {
      await retried(deadline, () => redis.set(`${prefix}tx:${state}`, value, { expiration: { type: 'PX', value: ttlMs } }));
    }),
    takeTransaction: (state) => run(async (deadline) => (await retried(deadline, () => redis.getDel(`${prefix}tx:${state}`))) ?? undefined),

    createRecord: (id, record: SessionRecord) => run(async (deadline) => {
      const now = String(clock());
      const indexes = [...(record.sid === undefined ? [] : [indexKey('sid', record.sid)]), indexKey('sub', record.sub)];
      // The indexes first: a record that exists is always findable by a logout.
      for (const index of indexes) await script(deadline, INDEX_ADD, [index], [String(record.absoluteExpiresAt), id, now]);
      const flat = Object.entries(encodeRecord(record, cipher)).flat();
      await script(deadline, CREATE, [tokKey(id), sessKey(id)], [ttlUntil(Math.min(record.idleExpiresAt, record.absoluteExpiresAt)), ...flat]);
      await replicated?.([...indexes, tokKey(id)]);
    }),

    // The hot path: one command. It is retried only after Redis refused it (CLUSTERDOWN while a failover is agreed),
    // which costs nothing while it answers.
    readView: (id, audience): Promise<SessionView | undefined> => run(async (deadline) => {
      const key = tokKey(id);
      const fields = [...VIEW_FIELDS, accessTokenField(audience)];
      const reply = await redis.hmGet(key, fields).catch((error: unknown) => {
        if (!isRetryableReply(error)) throw error;
        return retried(deadline, () => redis.hmGet(key, fields));
      });
      const decoded = decodeView(reply, cipher);
      if (decoded === undefined) return undefined;
      const view = Object.freeze(decoded);
      memo?.remember(id, audience, ['HMGET', key, ...fields], reply, view);
      return view;
    }),

    readViewNow: memo ? (id, audience) => (isReady() ? memo.get(id, audience) : undefined) : undefined,

    // Redis reports a change only of a key this client read since its last report: a waiter reads the view first.
    watchRecord: memo ? (id) => watches.watch(tokKey(id)) : undefined,

    readRecord: (id) => run(async (deadline) => {
      const fields = (await script(deadline, READ_RECORD, [tokKey(id)], [])) as string[] | Record<string, string>;
      return decodeRecord(toObject(fields), cipher);
    }),

    storeTokens: (id, update: TokenUpdate) => run(async (deadline) => {
      const flat = Object.entries(encodeUpdate(update, cipher)).flat();
      const rotated = update.refreshToken;
      const args = [
        ttlUntil(update.idleExpiresAt),
        rotated?.previousStored ?? '',
        rotated ? cipher.encrypt(rotated.next) : '',
        ...flat,
      ];
      return Number(await script(deadline, STORE_TOKENS, [tokKey(id), sessKey(id)], args)) === 1;
    }),

    touch: (id, idleExpiresAt, lastActiveAt) => run(async (deadline) => {
      await script(deadline, TOUCH, [tokKey(id), sessKey(id)], [ttlUntil(idleExpiresAt), String(idleExpiresAt), String(lastActiveAt)]);
    }),

    // One HMGET per session, sent together (node-redis pipelines them; in a cluster each goes to its slot's node).
    readSummaries: (ids) => run(async (deadline) =>
      (await Promise.all(ids.map((id) => retried(deadline, () => redis.hmGet(tokKey(id), [...SUMMARY_FIELDS]))))).map((reply) => decodeSummary(reply))),

    findSessions: ({ sid, sub }) => run(async (deadline) => {
      const index = sid !== undefined ? indexKey('sid', sid) : sub !== undefined ? indexKey('sub', sub) : undefined;
      return index === undefined ? [] : [...new Set(await retried(deadline, () => redis.zRange(index, 0, -1)))];
    }),

    destroy: async (ids) => {
      const indexed: Array<[string, string]> = [];
      const ended = await run(async (deadline) => {
        const records: StoredSessionRecord[] = [];
        for (const id of ids) {
          memo?.forget(id);
          const fields = toObject((await script(deadline, DESTROY, [tokKey(id), sessKey(id), lockKey(id)], [])) as string[] | Record<string, string>);
          const record = decodeRecord(fields, cipher);
          if (fields[F.sid] !== undefined) indexed.push([indexKey('sid', fields[F.sid] as string), id]);
          if (fields[F.sub] !== undefined) indexed.push([indexKey('sub', fields[F.sub] as string), id]);
          if (record) records.push(record);
        }
        return records;
      });
      // The sessions have ended once their records are gone. Their index entries are only a way to find them:
      // one left behind by a store that failed here points at nothing (every reader skips it) and goes with the
      // index's own expiry, so it must not fail the end (whose caller would find nothing left to end on a retry).
      await run((deadline) => Promise.all(indexed.map(([key, id]) => retried(deadline, () => redis.zRem(key, [id]))))).catch(() => {});
      return ended;
    },

    readClientToken: (name) => run(async (deadline) => decodeAccessToken(await retried(deadline, () => redis.get(clientTokenKey(name))), cipher)),
    watchClientToken: memo ? (name) => watches.watch(clientTokenKey(name)) : undefined,
    storeClientToken: (name, entry) => run(async (deadline) => {
      await retried(deadline, () => redis.set(clientTokenKey(name), encodeAccessToken(entry, cipher), { expiration: { type: 'PX', value: Math.max(1, Math.ceil(entry.expiresAt - clock())) } }));
    }),

    acquireLock: (name, owner, ttlMs, audience) => run(async (deadline) => {
      const taken = (await retried(deadline, () => redis.set(lockKey(name), owner, { expiration: { type: 'PX', value: Math.ceil(ttlMs) }, condition: 'NX' }))) === 'OK';
      if (!taken || audience === undefined) return taken;
      // Asked only by the taker (waiters polling a taken lock ask nothing more), and in commands of one key each,
      // not a script on both: a migration of the session's slot would answer that TRYAGAIN until it is over.
      const heldUntil = Number(await retried(deadline, () => redis.hGet(holdKey(name), audience)));
      if (!(heldUntil > clock())) return true;
      await script(deadline, RELEASE, [lockKey(name)], [owner]);
      return { heldUntil };
    }),
    releaseLock: (name, owner) => run(async (deadline) => {
      await script(deadline, RELEASE, [lockKey(name)], [owner]);
    }),
    holdLock: (name, owner, audience, until) => run(async (deadline) => {
      await script(deadline, HOLD, [holdKey(name)], [audience, String(Math.ceil(until)), String(Math.max(1, Math.ceil(until - clock())))]);
      await script(deadline, RELEASE, [lockKey(name)], [owner]);
    }),
    rememberOnce: (name, ttlMs) => run(async (deadline) =>
      (await retried(deadline, () => redis.set(`${prefix}once:${name}`, '1', { expiration: { type: 'PX', value: Math.max(1, Math.ceil(ttlMs)) }, condition: 'NX' }))) === 'OK'),

    forgetOnce: (name) => run(async (deadline) => {
      await retried(deadline, () => (redis as unknown as { del(keys: string[]): Promise<number> }).del([`${prefix}once:${name}`]));
    }),

    // The app owns the client: closing the BFF leaves it open.
    close: async () => {
      clearInterval(sweeper);
      memo?.close();
      if (memo && typeof events.off === 'function') for (const event of RECONNECTED) events.off(event, onReconnected);
    },
  };
}

/** HGETALL through EVAL answers a flat list (RESP2 style); a plain command may answer an object. */
function toObject(reply: string[] | Record<string, string> | null): Record<string, string> {
  if (!reply) return {};
  if (!Array.isArray(reply)) return reply;
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < reply.length; i += 2) out[reply[i] as string] = reply[i + 1] as string;
  return out;
}
