import { createHash } from 'node:crypto';
import { RedisStore } from 'connect-redis';
import type { SessionData } from 'express-session';
import { BffError, ErrorCode } from '../errors.js';
import type { RedisClient } from '../config/options.js';
import type { SessionBackend } from './backend.js';
import type { FieldCipher } from './encryption.js';
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
 *   bff:idx:sid:<auth0 sid>, bff:idx:sub:<sub>   sorted sets of BFF session ids, scored by absolute expiry
 *   bff:tx:<state>  a pending login
 *   bff:once:<name> replay protection (back-channel logout jti)
 *   bff:ctok:<name> the application's own access token for an API (client credentials), until it expires
 */

// Writes only into a record that exists: a request that outlived its session cannot bring it back.
const STORE_TOKENS = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[3] ~= '' and (redis.call('HGET', KEYS[1], 'rt') or '') == ARGV[2] then redis.call('HSET', KEYS[1], 'rt', ARGV[3]) end
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1`;

const TOUCH = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'idle', ARGV[2], 'act', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1`;

const CREATE = `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1`;

// An index keeps members until their absolute expiry; expired members are pruned whenever it is written.
const INDEX_ADD = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
local ttl = tonumber(ARGV[1]) - tonumber(ARGV[3])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1`;

const DESTROY = `
local fields = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return fields`;

const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

interface Commands {
  isReady?: boolean;
  isOpen?: boolean;
  hmGet(key: string, fields: string[]): Promise<Array<string | null>>;
  get(key: string): Promise<string | null>;
  set(key: string, value: string, options?: object): Promise<string | null>;
  getDel(key: string): Promise<string | null>;
  zRange(key: string, min: number, max: number): Promise<string[]>;
  zRem(key: string, members: string[]): Promise<number>;
  evalSha(sha: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  ping?(): Promise<string>;
  sendCommand?(args: string[]): Promise<unknown>;
}

/** Session store for express-session whose keys carry the session id as a Redis Cluster hash tag. */
class TaggedRedisStore extends RedisStore {
  override get(sid: string, cb?: (err?: any, data?: any) => any) {
    return super.get(`{${sid}}`, cb);
  }
  override set(sid: string, sess: SessionData, cb?: (err?: any, data?: any) => any) {
    return super.set(`{${sid}}`, sess, cb);
  }
  override touch(sid: string, sess: SessionData, cb?: (err?: any, data?: any) => any) {
    return super.touch(`{${sid}}`, sess, cb);
  }
  override destroy(sid: string, cb?: (err?: any, data?: any) => any) {
    return super.destroy(`{${sid}}`, cb);
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
  const indexKey = (kind: 'sid' | 'sub', value: string) => `${prefix}idx:${kind}:${value}`;
  const shas = new Map<string, string>();
  // With client-side caching on the app's client, API calls of a cached session skip the command entirely.
  const memo = createViewMemo(client, `${prefix}tok:`);

  const isReady = () => (redis.isReady ?? redis.isOpen) !== false;
  const ensureReady = () => {
    if (!isReady()) throw new BffError(ErrorCode.SESSION_STORE_UNAVAILABLE, 'The session store is not answering; try again shortly.');
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

  function run<T>(operation: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      ensureReady();
      const entry = { deadline: performance.now() + commandTimeoutMs, reject };
      pending.add(entry);
      operation().then(
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
  async function script(source: string, keys: string[], args: string[]): Promise<unknown> {
    let sha = shas.get(source);
    if (sha === undefined) {
      sha = createHash('sha1').update(source).digest('hex');
      shas.set(source, sha);
    }
    try {
      return await redis.evalSha(sha, { keys, arguments: args });
    } catch (error) {
      if (!String((error as Error)?.message).includes('NOSCRIPT')) throw error;
      return redis.eval(source, { keys, arguments: args });
    }
  }
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
  });

  return {
    kind: 'redis',
    store,
    ping: () => run(async () => {
      if (redis.ping) await redis.ping();
      else await redis.sendCommand?.(['PING']);
    }),
    putTransaction: (state, value, ttlMs) => run(async () => {
      await redis.set(`${prefix}tx:${state}`, value, { expiration: { type: 'PX', value: ttlMs } });
    }),
    takeTransaction: (state) => run(async () => (await redis.getDel(`${prefix}tx:${state}`)) ?? undefined),

    createRecord: (id, record: SessionRecord) => run(async () => {
      const now = String(clock());
      // The indexes first: a record that exists is always findable by a logout.
      if (record.sid !== undefined) await script(INDEX_ADD, [indexKey('sid', record.sid)], [String(record.absoluteExpiresAt), id, now]);
      await script(INDEX_ADD, [indexKey('sub', record.sub)], [String(record.absoluteExpiresAt), id, now]);
      const flat = Object.entries(encodeRecord(record, cipher)).flat();
      await script(CREATE, [tokKey(id), sessKey(id)], [ttlUntil(Math.min(record.idleExpiresAt, record.absoluteExpiresAt)), ...flat]);
    }),

    readView: (id, audience): Promise<SessionView | undefined> => run(async () => {
      const key = tokKey(id);
      const fields = [...VIEW_FIELDS, accessTokenField(audience)];
      const reply = await redis.hmGet(key, fields);
      const decoded = decodeView(reply, cipher);
      if (decoded === undefined) return undefined;
      const view = Object.freeze(decoded);
      memo?.remember(id, audience, ['HMGET', key, ...fields], reply, view);
      return view;
    }),

    readViewNow: memo ? (id, audience) => (isReady() ? memo.get(id, audience) : undefined) : undefined,

    readRecord: (id) => run(async () => {
      const fields = (await script(`return redis.call('HGETALL', KEYS[1])`, [tokKey(id)], [])) as string[] | Record<string, string>;
      return decodeRecord(toObject(fields), cipher);
    }),

    storeTokens: (id, update: TokenUpdate) => run(async () => {
      const flat = Object.entries(encodeUpdate(update, cipher)).flat();
      const rotated = update.refreshToken;
      const args = [
        ttlUntil(update.idleExpiresAt),
        rotated?.previousStored ?? '',
        rotated ? cipher.encrypt(rotated.next) : '',
        ...flat,
      ];
      return Number(await script(STORE_TOKENS, [tokKey(id), sessKey(id)], args)) === 1;
    }),

    touch: (id, idleExpiresAt, lastActiveAt) => run(async () => {
      await script(TOUCH, [tokKey(id), sessKey(id)], [ttlUntil(idleExpiresAt), String(idleExpiresAt), String(lastActiveAt)]);
    }),

    // One HMGET per session, sent together (node-redis pipelines them; in a cluster each goes to its slot's node).
    readSummaries: (ids) => run(async () =>
      (await Promise.all(ids.map((id) => redis.hmGet(tokKey(id), [...SUMMARY_FIELDS])))).map((reply) => decodeSummary(reply))),

    findSessions: ({ sid, sub }) => run(async () => {
      const found = new Set<string>();
      if (sid !== undefined) for (const id of await redis.zRange(indexKey('sid', sid), 0, -1)) found.add(id);
      if (sub !== undefined && sid === undefined) for (const id of await redis.zRange(indexKey('sub', sub), 0, -1)) found.add(id);
      return [...found];
    }),

    destroy: (ids) => run(async () => {
      const ended: StoredSessionRecord[] = [];
      for (const id of ids) {
        memo?.forget(id);
        const fields = toObject((await script(DESTROY, [tokKey(id), sessKey(id), lockKey(id)], [])) as string[] | Record<string, string>);
        const record = decodeRecord(fields, cipher);
        const sid = fields[F.sid];
        if (sid !== undefined) await redis.zRem(indexKey('sid', sid), [id]);
        if (fields[F.sub] !== undefined) await redis.zRem(indexKey('sub', fields[F.sub]), [id]);
        if (record) ended.push(record);
      }
      return ended;
    }),

    readClientToken: (name) => run(async () => decodeAccessToken(await redis.get(`${prefix}ctok:${name}`), cipher)),
    storeClientToken: (name, entry) => run(async () => {
      await redis.set(`${prefix}ctok:${name}`, encodeAccessToken(entry, cipher), { expiration: { type: 'PX', value: Math.max(1, Math.ceil(entry.expiresAt - clock())) } });
    }),

    acquireLock: (name, owner, ttlMs) => run(async () =>
      (await redis.set(lockKey(name), owner, { expiration: { type: 'PX', value: Math.ceil(ttlMs) }, condition: 'NX' })) === 'OK'),
    releaseLock: (name, owner) => run(async () => {
      await script(RELEASE, [lockKey(name)], [owner]);
    }),
    rememberOnce: (name, ttlMs) => run(async () =>
      (await redis.set(`${prefix}once:${name}`, '1', { expiration: { type: 'PX', value: Math.max(1, Math.ceil(ttlMs)) }, condition: 'NX' })) === 'OK'),

    forgetOnce: (name) => run(async () => {
      await (redis as unknown as { del(keys: string[]): Promise<number> }).del([`${prefix}once:${name}`]);
    }),

    // The app owns the client: closing the BFF leaves it open.
    close: async () => {
      clearInterval(sweeper);
      memo?.close();
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
