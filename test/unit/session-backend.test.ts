import { randomUUID } from 'node:crypto';
import type { SessionData } from 'express-session';
import { createClient } from 'redis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RedisClient } from '../../src/config/options.js';
import { causeName } from '../../src/events/reporter.js';
import type { SessionBackend } from '../../src/session/backend.js';
import { createFieldCipher, parseEncryptionKeys, plainCipher, type FieldCipher } from '../../src/session/encryption.js';
import { createMemoryBackend } from '../../src/session/memory-backend.js';
import type { AccessTokenEntry, SessionRecord } from '../../src/session/record.js';
import type { RecordWatch } from '../../src/session/record-watch.js';
import { createRedisBackend } from '../../src/session/redis-backend.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const IDLE_TIMEOUT = 3 * DAY;
const API = 'https://api.example.test';
const OTHER_API = 'https://other-api.example.test';
const ENCRYPTION_KEY = 'a1'.repeat(32);

/** The raw commands the tests use to look behind the backend, on the same node-redis client. */
interface RawRedis {
  connect(): Promise<unknown>;
  close(): Promise<void>;
  on(event: 'error', listener: (error: unknown) => void): unknown;
  scanIterator(options: { MATCH: string; COUNT: number }): AsyncIterable<string[]>;
  del(keys: string[]): Promise<number>;
  exists(key: string): Promise<number>;
  pTTL(key: string): Promise<number>;
  hGetAll(key: string): Promise<Record<string, string>>;
}

async function connectRedis(clientSideCache = false, ttl?: number): Promise<RawRedis> {
  const cache = clientSideCache ? { RESP: 3 as const, clientSideCache: { maxEntries: 100, ...(ttl === undefined ? {} : { ttl }) } } : {};
  const client = createClient({ url: REDIS_URL, socket: { connectTimeout: 2_000 }, ...cache }) as unknown as RawRedis;
  client.on('error', () => {});
  await client.connect();
  return client;
}

async function deleteKeys(redis: RawRedis, prefix: string): Promise<void> {
  for await (const batch of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) if (batch.length) await redis.del(batch);
}

async function keysOf(redis: RawRedis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const batch of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) keys.push(...batch);
  return keys;
}

/** express-session's view of a session, through the backend's store. */
function storeGet(backend: SessionBackend, id: string): Promise<SessionData | null | undefined> {
  return new Promise((resolve, reject) => backend.store.get(id, (error, data) => (error ? reject(error) : resolve(data))));
}
function storeSet(backend: SessionBackend, id: string, data: object): Promise<void> {
  return new Promise((resolve, reject) => backend.store.set(id, data as SessionData, (error) => (error ? reject(error) : resolve())));
}

interface Variant {
  readonly kind: 'redis' | 'memory';
  readonly cipher: FieldCipher;
  /** A RESP3 client that answers repeated reads from its memory until Redis invalidates them. */
  readonly clientSideCache?: boolean;
}

const variants: Array<[string, Variant]> = [
  ['redis', { kind: 'redis', cipher: plainCipher }],
  ['redis with tokens encrypted at rest', { kind: 'redis', cipher: createFieldCipher(parseEncryptionKeys([ENCRYPTION_KEY], 'k')) }],
  ['redis through a client with client-side caching', { kind: 'redis', cipher: plainCipher, clientSideCache: true }],
  ['memory', { kind: 'memory', cipher: plainCipher }],
];

describe.each(variants)('the %s session backend', (_name, variant) => {
  let redis: RawRedis | undefined;
  let prefix = '';
  let now = 0;
  const clock = () => now;
  let backend: SessionBackend;

  const accessToken = (token: string, lifetimeMs = HOUR): AccessTokenEntry => ({
    token,
    expiresAt: now + lifetimeMs,
    refreshAt: now + lifetimeMs - MINUTE,
    scope: 'read:things',
  });
  const newRecord = (overrides: Partial<SessionRecord> = {}): SessionRecord => ({
    sub: 'auth0|alice',
    sid: 'auth0-sid-1',
    createdAt: now,
    absoluteExpiresAt: now + 7 * DAY,
    idleExpiresAt: now + IDLE_TIMEOUT,
    lastActiveAt: now,
    userAgent: 'Firefox 128 on Windows',
    logoutId: 'logout-id-1',
    refreshToken: 'ORT-plain-1',
    idToken: 'id.token.one',
    scope: 'openid profile email online_access',
    claims: { sub: 'auth0|alice', name: 'Alice Example', email: 'alice@example.com' },
    accessTokens: { [API]: accessToken('AT-api-1') },
    ...overrides,
  });
  /** Lets a short-lived entry expire: memory follows the clock, Redis expires keys in real time. */
  const letExpire = async (ms: number, rawKey: string) => {
    if (variant.kind === 'memory') {
      now += ms + 1;
      return;
    }
    await expect.poll(() => (redis as RawRedis).exists(`${prefix}${rawKey}`), { timeout: 5_000, interval: 20 }).toBe(0);
  };

  beforeAll(async () => {
    if (variant.kind === 'redis') redis = await connectRedis(variant.clientSideCache);
  });
  afterAll(async () => {
    await redis?.close();
  });
  beforeEach(() => {
    now = Date.now();
    prefix = `bfftest:${randomUUID()}:`;
    backend = variant.kind === 'redis'
      ? createRedisBackend(redis as unknown as RedisClient, prefix, variant.cipher, IDLE_TIMEOUT, clock, 2_000)
      : createMemoryBackend(variant.cipher, IDLE_TIMEOUT, clock);
  });
  afterEach(async () => {
    await backend.close();
    if (redis) await deleteKeys(redis, prefix);
  });

  it('answers a ping', async () => {
    await expect(backend.ping()).resolves.toBeUndefined();
  });

  it('reads a new session back with the access token of the audience asked for, and none for another audience', async () => {
    const id = randomUUID();
    const record = newRecord();
    await backend.createRecord(id, record);

    expect(await backend.readView(id, API)).toEqual({
      sub: 'auth0|alice',
      sid: 'auth0-sid-1',
      absoluteExpiresAt: record.absoluteExpiresAt,
      idleExpiresAt: record.idleExpiresAt,
      lastActiveAt: record.lastActiveAt,
      accessToken: record.accessTokens[API],
    });
    expect((await backend.readView(id, OTHER_API))?.accessToken).toBeUndefined();
    expect(await backend.readView(randomUUID(), API)).toBeUndefined();
  });

  it('reads the whole record back as it was created: claims, scope and every token', async () => {
    const id = randomUUID();
    const record = newRecord({ accessTokens: { [API]: accessToken('AT-api-1'), [OTHER_API]: accessToken('AT-other-1', 10 * MINUTE) } });
    await backend.createRecord(id, record);

    const stored = await backend.readRecord(id);
    expect(stored).toMatchObject({ ...record, accessTokens: record.accessTokens });
    expect(stored?.storedRefreshToken).toEqual(expect.any(String));
    expect(await backend.readRecord(randomUUID())).toBeUndefined();
  });

  it('keeps a session without an Auth0 sid, refresh token or ID token as it is', async () => {
    const id = randomUUID();
    await backend.createRecord(id, newRecord({ sid: undefined, refreshToken: undefined, idToken: undefined, scope: undefined, accessTokens: {} }));
    const stored = await backend.readRecord(id);
    expect(stored).toMatchObject({ sub: 'auth0|alice', sid: undefined, refreshToken: undefined, idToken: undefined, scope: undefined, accessTokens: {} });
    expect((await backend.readView(id, API))?.accessToken).toBeUndefined();
  });

  it('stores a renewed access token and the rolled idle expiry of a live session', async () => {
    const id = randomUUID();
    await backend.createRecord(id, newRecord({ idleExpiresAt: now + HOUR }));
    now += 30 * MINUTE;
    const renewed = accessToken('AT-api-2');

    expect(await backend.storeTokens(id, { audience: API, accessToken: renewed, idleExpiresAt: now + IDLE_TIMEOUT })).toBe(true);

    const view = await backend.readView(id, API);
    expect(view?.accessToken).toEqual(renewed);
    expect(view?.idleExpiresAt).toBe(now + IDLE_TIMEOUT);
    const record = await backend.readRecord(id);
    expect(record?.refreshToken).toBe('ORT-plain-1');
    expect(record?.claims).toEqual(newRecord().claims);
  });

  it('stores a new ID token and its claims when an exchange brings them', async () => {
    const id = randomUUID();
    await backend.createRecord(id, newRecord());
    await backend.storeTokens(id, {
      audience: API,
      accessToken: accessToken('AT-api-2'),
      idToken: 'id.token.two',
      claims: { sub: 'auth0|alice', name: 'Alice Renamed' },
      idleExpiresAt: now + IDLE_TIMEOUT,
    });
    expect(await backend.readRecord(id)).toMatchObject({ idToken: 'id.token.two', claims: { sub: 'auth0|alice', name: 'Alice Renamed' } });
  });

  it('marks the token a forced renewal stored, and when, for its audience only, until another token replaces it', async () => {
    const id = randomUUID();
    await backend.createRecord(id, newRecord());
    expect((await backend.readRecord(id))?.forced).toEqual(new Map());
    await backend.storeTokens(id, { audience: API, accessToken: accessToken('AT-api-forced'), idleExpiresAt: now + IDLE_TIMEOUT, forcedAt: now });
    await backend.storeTokens(id, { audience: OTHER_API, accessToken: accessToken('AT-other-1'), idleExpiresAt: now + IDLE_TIMEOUT });
    expect((await backend.readRecord(id))?.forced).toEqual(new Map([[API, now]]));
    // A normal renewal (or a version of the library that marks nothing) replaces the token: no longer marked.
    await backend.storeTokens(id, { audience: API, accessToken: accessToken('AT-api-3'), idleExpiresAt: now + IDLE_TIMEOUT });
    expect((await backend.readRecord(id))?.forced).toEqual(new Map());
    if (redis) {
      // The mark is a digest and a time: nothing of the token in it.
      const fields = await redis.hGetAll(`${prefix}tok:{${id}}`);
      expect(fields[`fx:${API}`]).toBe(`${variant.cipher.digest('AT-api-forced')}.${now}`);
      expect(fields[`fx:${API}`]).not.toContain('AT-api');
      // Keyed when tokens are encrypted at rest.
      if (variant.cipher !== plainCipher) expect(fields[`fx:${API}`]).not.toContain(plainCipher.digest('AT-api-forced'));
    }
  });

  it('keeps the access tokens of other audiences when one audience is renewed', async () => {
    const id = randomUUID();
    await backend.createRecord(id, newRecord());
    await backend.storeTokens(id, { audience: OTHER_API, accessToken: accessToken('AT-other-1'), idleExpiresAt: now + IDLE_TIMEOUT });
    expect((await backend.readView(id, API))?.accessToken?.token).toBe('AT-api-1');
    expect((await backend.readView(id, OTHER_API))?.accessToken?.token).toBe('AT-other-1');
  });

  it('rolls the idle expiry of a live session on touch', async () => {
    const id = randomUUID();
    await backend.createRecord(id, newRecord({ idleExpiresAt: now + HOUR }));
    await backend.touch(id, now + 2 * HOUR, now + HOUR);
    expect(await backend.readView(id, API)).toMatchObject({ idleExpiresAt: now + 2 * HOUR, lastActiveAt: now + HOUR });
  });

  it('lists what a session list shows of each session, in the order asked, without reading a token', async () => {
    const first = randomUUID();
    const second = randomUUID();
    await backend.createRecord(first, newRecord());
    await backend.createRecord(second, newRecord({ sid: undefined, userAgent: undefined, createdAt: now - HOUR, lastActiveAt: now - MINUTE }));

    expect(await backend.readSummaries([second, randomUUID(), first])).toEqual([
      { sub: 'auth0|alice', sid: undefined, createdAt: now - HOUR, absoluteExpiresAt: now + 7 * DAY, idleExpiresAt: now + IDLE_TIMEOUT, lastActiveAt: now - MINUTE, userAgent: undefined },
      undefined,
      { sub: 'auth0|alice', sid: 'auth0-sid-1', createdAt: now, absoluteExpiresAt: now + 7 * DAY, idleExpiresAt: now + IDLE_TIMEOUT, lastActiveAt: now, userAgent: 'Firefox 128 on Windows' },
    ]);
    expect(await backend.readSummaries([])).toEqual([]);
  });

  it('records the activity of an exchange, and an earlier absolute end that it brings', async () => {
    const id = randomUUID();
    await backend.createRecord(id, newRecord());
    now += 10 * MINUTE;
    await backend.storeTokens(id, { audience: API, accessToken: accessToken('AT-api-2'), idleExpiresAt: now + HOUR, lastActiveAt: now, absoluteExpiresAt: now + HOUR });

    expect(await backend.readView(id, API)).toMatchObject({ absoluteExpiresAt: now + HOUR, idleExpiresAt: now + HOUR, lastActiveAt: now });
    expect((await backend.readSummaries([id]))[0]).toMatchObject({ absoluteExpiresAt: now + HOUR, lastActiveAt: now });
  });

  it('does not bring an ended session back when a late exchange stores its tokens or a late request touches it', async () => {
    const id = randomUUID();
    await storeSet(backend, id, { cookie: {}, bff: { idleExpiresAt: now + IDLE_TIMEOUT, absoluteExpiresAt: now + 7 * DAY } });
    await backend.createRecord(id, newRecord());
    const before = await backend.readRecord(id);
    await backend.destroy([id]);

    expect(await backend.storeTokens(id, {
      audience: API,
      accessToken: accessToken('AT-late'),
      refreshToken: { previousStored: before?.storedRefreshToken, next: 'ORT-late' },
      idToken: 'id.token.late',
      claims: { sub: 'auth0|alice' },
      idleExpiresAt: now + IDLE_TIMEOUT,
    })).toBe(false);
    await backend.touch(id, now + IDLE_TIMEOUT, now);

    expect(await backend.readRecord(id)).toBeUndefined();
    expect(await backend.readView(id, API)).toBeUndefined();
    expect(await storeGet(backend, id)).toBeFalsy();
    if (redis) expect(await keysOf(redis, prefix)).toEqual([]);
  });

  it('replaces a rotated refresh token when the stored one is still the one the exchange used', async () => {
    const id = randomUUID();
    await backend.createRecord(id, newRecord());
    const before = await backend.readRecord(id);

    await backend.storeTokens(id, {
      audience: API,
      accessToken: accessToken('AT-api-2'),
      refreshToken: { previousStored: before?.storedRefreshToken, next: 'RT-rotated-2' },
      idleExpiresAt: now + IDLE_TIMEOUT,
    });

    const after = await backend.readRecord(id);
    expect(after?.refreshToken).toBe('RT-rotated-2');
    expect(after?.storedRefreshToken).not.toBe(before?.storedRefreshToken);
  });

  it('keeps the newer refresh token when a stale exchange tries to rotate it again (compare-and-set)', async () => {
    const id = randomUUID();
    await backend.createRecord(id, newRecord());
    const stale = (await backend.readRecord(id))?.storedRefreshToken;
    await backend.storeTokens(id, {
      audience: API,
      accessToken: accessToken('AT-api-2'),
      refreshToken: { previousStored: stale, next: 'RT-newer-2' },
      idleExpiresAt: now + IDLE_TIMEOUT,
    });

    // A second exchange that started from the old refresh token finishes later.
    expect(await backend.storeTokens(id, {
      audience: API,
      accessToken: accessToken('AT-api-3'),
      refreshToken: { previousStored: stale, next: 'RT-stale-3' },
      idleExpiresAt: now + IDLE_TIMEOUT,
    })).toBe(true);

    expect((await backend.readRecord(id))?.refreshToken).toBe('RT-newer-2');
  });

  it('finds the sessions of one Auth0 session by its sid, and every session of a user by sub', async () => {
    const [a, b, c, d] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    await backend.createRecord(a, newRecord({ sid: 'auth0-sid-1' }));
    await backend.createRecord(b, newRecord({ sid: 'auth0-sid-1' }));
    await backend.createRecord(c, newRecord({ sid: 'auth0-sid-2' }));
    await backend.createRecord(d, newRecord({ sid: undefined }));
    await backend.createRecord(randomUUID(), newRecord({ sub: 'auth0|bob', sid: 'auth0-sid-3' }));

    expect((await backend.findSessions({ sid: 'auth0-sid-1' })).sort()).toEqual([a, b].sort());
    expect(await backend.findSessions({ sid: 'auth0-sid-2' })).toEqual([c]);
    expect((await backend.findSessions({ sub: 'auth0|alice' })).sort()).toEqual([a, b, c, d].sort());
    expect(await backend.findSessions({ sid: 'no-such-sid' })).toEqual([]);
    expect(await backend.findSessions({})).toEqual([]);
  });

  it('ends sessions: returns their records and removes them from the record store, the indexes and express-session', async () => {
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    for (const id of [a, b, c]) {
      await storeSet(backend, id, { cookie: {}, bff: { idleExpiresAt: now + IDLE_TIMEOUT, absoluteExpiresAt: now + 7 * DAY } });
    }
    await backend.createRecord(a, newRecord({ sid: 'auth0-sid-1' }));
    await backend.createRecord(b, newRecord({ sid: 'auth0-sid-1', logoutId: 'logout-id-b' }));
    await backend.createRecord(c, newRecord({ sid: 'auth0-sid-2' }));
    expect(await storeGet(backend, a)).toMatchObject({ bff: { idleExpiresAt: now + IDLE_TIMEOUT } });

    const ended = await backend.destroy([a, b, randomUUID()]);

    expect(ended.map((r) => r.logoutId).sort()).toEqual(['logout-id-1', 'logout-id-b']);
    expect(ended[0]).toMatchObject({ sub: 'auth0|alice', sid: 'auth0-sid-1', refreshToken: 'ORT-plain-1' });
    expect(await backend.readRecord(a)).toBeUndefined();
    expect(await backend.readRecord(b)).toBeUndefined();
    expect(await storeGet(backend, a)).toBeFalsy();
    expect(await storeGet(backend, b)).toBeFalsy();
    expect(await backend.findSessions({ sid: 'auth0-sid-1' })).toEqual([]);
    expect(await backend.findSessions({ sub: 'auth0|alice' })).toEqual([c]);
    // The other Auth0 session's BFF session is untouched.
    expect(await backend.readRecord(c)).toBeDefined();
    expect(await storeGet(backend, c)).toBeTruthy();
    // Ending it again finds nothing to end.
    expect(await backend.destroy([a, b])).toEqual([]);
  });

  it('hands a login transaction out once only', async () => {
    await backend.putTransaction('state-1', '{"verifier":"v"}', MINUTE);
    expect(await backend.takeTransaction('state-1')).toBe('{"verifier":"v"}');
    expect(await backend.takeTransaction('state-1')).toBeUndefined();
    expect(await backend.takeTransaction('never-issued')).toBeUndefined();
  });

  it('forgets a login transaction that was not used in time', async () => {
    await backend.putTransaction('state-late', 'value', 100);
    await backend.putTransaction('state-on-time', 'value', MINUTE);
    await letExpire(100, 'tx:state-late');
    expect(await backend.takeTransaction('state-late')).toBeUndefined();
    expect(await backend.takeTransaction('state-on-time')).toBe('value');
  });

  it('gives a lock to one owner at a time until it is released', async () => {
    expect(await backend.acquireLock('session-1', 'owner-a', MINUTE)).toBe(true);
    expect(await backend.acquireLock('session-1', 'owner-b', MINUTE)).toBe(false);
    expect(await backend.acquireLock('session-1', 'owner-a', MINUTE)).toBe(false);
    // Another session's lock is independent.
    expect(await backend.acquireLock('session-2', 'owner-b', MINUTE)).toBe(true);

    await backend.releaseLock('session-1', 'owner-b');
    expect(await backend.acquireLock('session-1', 'owner-b', MINUTE)).toBe(false);

    await backend.releaseLock('session-1', 'owner-a');
    expect(await backend.acquireLock('session-1', 'owner-b', MINUTE)).toBe(true);
  });

  it('holds a session\'s exchanges for an audience until Auth0\'s Retry-After ends, by the BFF\'s clock, and no others', async () => {
    expect(await backend.acquireLock('session-1', 'owner-a', MINUTE, 'api-a')).toBe(true);
    await backend.holdLock('session-1', 'owner-a', 'api-a', now + 30_000);
    // The lock itself is released: another audience's exchange takes it.
    expect(await backend.acquireLock('session-1', 'owner-b', MINUTE, 'api-b')).toBe(true);
    await backend.releaseLock('session-1', 'owner-b');
    expect(await backend.acquireLock('session-1', 'owner-c', MINUTE, 'api-a')).toEqual({ heldUntil: now + 30_000 });
    // Without an audience (the application's token), no hold applies.
    expect(await backend.acquireLock('session-1', 'owner-c', MINUTE)).toBe(true);
    await backend.releaseLock('session-1', 'owner-c');
    // A holder whose lock expired meanwhile records its hold, and leaves the next owner's lock alone.
    expect(await backend.acquireLock('session-1', 'owner-d', MINUTE, 'api-b')).toBe(true);
    await backend.holdLock('session-1', 'owner-a', 'api-b', now + 10_000);
    expect(await backend.acquireLock('session-1', 'owner-e', MINUTE)).toBe(false);
    await backend.releaseLock('session-1', 'owner-d');
    expect(await backend.acquireLock('session-1', 'owner-e', MINUTE, 'api-b')).toEqual({ heldUntil: now + 10_000 });
    now += 30_000;
    expect(await backend.acquireLock('session-1', 'owner-e', MINUTE, 'api-a')).toBe(true);
  });

  it('gives up a lock whose owner never released it once it expires', async () => {
    expect(await backend.acquireLock('session-1', 'owner-a', 100)).toBe(true);
    expect(await backend.acquireLock('session-1', 'owner-b', MINUTE)).toBe(false);
    await letExpire(100, 'lock:{session-1}');
    expect(await backend.acquireLock('session-1', 'owner-b', MINUTE)).toBe(true);
    // The old owner's late release does not free the new owner's lock.
    await backend.releaseLock('session-1', 'owner-a');
    expect(await backend.acquireLock('session-1', 'owner-c', MINUTE)).toBe(false);
  });

  it('keeps the application\'s own token under its name until it expires, never in the clear when tokens are encrypted', async () => {
    expect(await backend.readClientToken(API)).toBeUndefined();
    const entry = accessToken('AT-client-secret-value', 150);
    await backend.storeClientToken(API, entry);
    expect(await backend.readClientToken(API)).toEqual(entry);
    expect(await backend.readClientToken(OTHER_API)).toBeUndefined();
    if (redis && variant.cipher !== plainCipher) {
      const raw = await (redis as unknown as { get(key: string): Promise<string | null> }).get(`${prefix}ctok:${API}`);
      expect(raw).not.toContain('AT-client-secret-value');
    }
    await letExpire(150, `ctok:${API}`);
    expect(await backend.readClientToken(API)).toBeUndefined();
  });

  it('remembers a name once: true the first time, false after', async () => {
    expect(await backend.rememberOnce('jti-1', MINUTE)).toBe(true);
    expect(await backend.rememberOnce('jti-1', MINUTE)).toBe(false);
    expect(await backend.rememberOnce('jti-2', MINUTE)).toBe(true);
  });

  it('prunes index entries of sessions past their absolute expiry when a new session joins the same index', async () => {
    const old = randomUUID();
    await backend.createRecord(old, newRecord({ sid: 'auth0-sid-1', absoluteExpiresAt: now + HOUR, idleExpiresAt: now + HOUR }));
    now += 2 * HOUR;
    const fresh = randomUUID();
    await backend.createRecord(fresh, newRecord({ sid: 'auth0-sid-1' }));

    expect(await backend.findSessions({ sid: 'auth0-sid-1' })).toEqual([fresh]);
    expect(await backend.findSessions({ sub: 'auth0|alice' })).toEqual([fresh]);
  });
});

/** A session record of one user logged in at `now`, with an hour left of idle time. */
const aliceRecord = (now: number, accessToken = 'AT-secret-value-1'): SessionRecord => ({
  sub: 'auth0|alice',
  sid: 'auth0-sid-1',
  createdAt: now,
  absoluteExpiresAt: now + 7 * DAY,
  idleExpiresAt: now + HOUR,
  lastActiveAt: now,
  userAgent: undefined,
  logoutId: 'logout-id-1',
  refreshToken: 'ORT-secret-value-1',
  idToken: 'header.id-token-secret-payload.signature',
  scope: 'openid online_access',
  claims: { sub: 'auth0|alice' },
  accessTokens: { [API]: { token: accessToken, expiresAt: now + HOUR, refreshAt: now + HOUR - MINUTE, scope: 'read:things' } },
});

describe('the Redis session backend', () => {
  let redis: RawRedis;
  let prefix = '';
  const now = Date.now();
  const clock = () => now;
  const record = aliceRecord(now);

  beforeAll(async () => {
    redis = await connectRedis();
  });
  afterAll(async () => {
    await redis.close();
  });
  beforeEach(() => {
    prefix = `bfftest:${randomUUID()}:`;
  });
  afterEach(async () => {
    await deleteKeys(redis, prefix);
  });

  it('keys a session by its id as a Redis Cluster hash tag, with a TTL on each key', async () => {
    const backend = createRedisBackend(redis as unknown as RedisClient, prefix, plainCipher, IDLE_TIMEOUT, clock, 2_000);
    const id = randomUUID();
    await storeSet(backend, id, { cookie: {}, bff: { idleExpiresAt: record.idleExpiresAt, absoluteExpiresAt: record.absoluteExpiresAt } });
    await backend.createRecord(id, record);

    expect(await redis.exists(`${prefix}tok:{${id}}`)).toBe(1);
    expect(await redis.exists(`${prefix}sess:{${id}}`)).toBe(1);
    for (const key of [`${prefix}tok:{${id}}`, `${prefix}sess:{${id}}`, `${prefix}idx:sid:auth0-sid-1`, `${prefix}idx:sub:auth0|alice`]) {
      expect(await redis.pTTL(key), key).toBeGreaterThan(0);
    }
    // Nothing is written outside the prefix's session keys and indexes.
    expect((await keysOf(redis, prefix)).sort()).toEqual(
      [`${prefix}idx:sid:auth0-sid-1`, `${prefix}idx:sub:auth0|alice`, `${prefix}sess:{${id}}`, `${prefix}tok:{${id}}`].sort(),
    );
  });

  it('lets a session\'s keys live until its idle expiry (plus grace), and rolls that TTL when the session is renewed', async () => {
    const backend = createRedisBackend(redis as unknown as RedisClient, prefix, plainCipher, IDLE_TIMEOUT, clock, 2_000);
    const id = randomUUID();
    await storeSet(backend, id, { cookie: {}, bff: { idleExpiresAt: record.idleExpiresAt, absoluteExpiresAt: record.absoluteExpiresAt } });
    await backend.createRecord(id, record);
    const first = await redis.pTTL(`${prefix}tok:{${id}}`);
    expect(first).toBeGreaterThan(HOUR - MINUTE);
    expect(first).toBeLessThanOrEqual(HOUR + 10 * MINUTE);

    await backend.storeTokens(id, { audience: API, accessToken: record.accessTokens[API] as AccessTokenEntry, idleExpiresAt: now + 5 * HOUR });
    for (const key of [`${prefix}tok:{${id}}`, `${prefix}sess:{${id}}`]) expect(await redis.pTTL(key), key).toBeGreaterThan(5 * HOUR - MINUTE);
  });

  it('stores no token in the clear when encryption keys are configured, and reads every one back', async () => {
    const backend = createRedisBackend(redis as unknown as RedisClient, prefix, createFieldCipher(parseEncryptionKeys([ENCRYPTION_KEY], 'k')), IDLE_TIMEOUT, clock, 2_000);
    const id = randomUUID();
    await backend.createRecord(id, record);
    await backend.storeTokens(id, {
      audience: OTHER_API,
      accessToken: { token: 'AT-secret-other-2', expiresAt: now + HOUR, refreshAt: now + HOUR - MINUTE, scope: undefined },
      refreshToken: { previousStored: (await backend.readRecord(id))?.storedRefreshToken, next: 'RT-secret-rotated-2' },
      idToken: 'header.id-token-secret-payload-2.signature',
      idleExpiresAt: now + HOUR,
    });

    const raw = await redis.hGetAll(`${prefix}tok:{${id}}`);
    expect(raw.rt).toBeDefined();
    expect(raw.rt).not.toContain('RT-secret-rotated-2');
    expect(raw.idt).toBeDefined();
    expect(raw.idt).not.toContain('id-token-secret-payload');
    expect(raw[`at:${API}`]).toBeDefined();
    expect(raw[`at:${API}`]).not.toContain('AT-secret-value-1');
    expect(raw[`at:${OTHER_API}`]).not.toContain('AT-secret-other-2');
    expect(JSON.stringify(raw)).not.toMatch(/ORT-secret|RT-secret|AT-secret|id-token-secret/);

    const read = await backend.readRecord(id);
    expect(read).toMatchObject({
      refreshToken: 'RT-secret-rotated-2',
      idToken: 'header.id-token-secret-payload-2.signature',
      accessTokens: { [API]: { token: 'AT-secret-value-1' }, [OTHER_API]: { token: 'AT-secret-other-2' } },
    });
    expect((await backend.readView(id, API))?.accessToken?.token).toBe('AT-secret-value-1');
  });

  it('reads tokens stored before encryption was turned on', async () => {
    const id = randomUUID();
    await createRedisBackend(redis as unknown as RedisClient, prefix, plainCipher, IDLE_TIMEOUT, clock, 2_000).createRecord(id, record);
    const encrypted = createRedisBackend(redis as unknown as RedisClient, prefix, createFieldCipher(parseEncryptionKeys([ENCRYPTION_KEY], 'k')), IDLE_TIMEOUT, clock, 2_000);
    expect(await encrypted.readRecord(id)).toMatchObject({ refreshToken: 'ORT-secret-value-1', accessTokens: { [API]: { token: 'AT-secret-value-1' } } });
  });

  it('reads no token it cannot decrypt (a key taken out, or encryption turned off), and still ends the session and its index entries', async () => {
    const id = randomUUID();
    const withKey = createRedisBackend(redis as unknown as RedisClient, prefix, createFieldCipher(parseEncryptionKeys([ENCRYPTION_KEY], 'k')), IDLE_TIMEOUT, clock, 2_000);
    await withKey.createRecord(id, record);
    await withKey.storeClientToken(API, { token: 'AT-app-secret', expiresAt: now + HOUR, refreshAt: now + HOUR - MINUTE, scope: undefined });
    for (const cipher of [createFieldCipher(parseEncryptionKeys([randomUUID().repeat(2)], 'k')), plainCipher]) {
      const other = createRedisBackend(redis as unknown as RedisClient, prefix, cipher, IDLE_TIMEOUT, clock, 2_000);
      const read = await other.readRecord(id);
      expect(read).toMatchObject({ sub: record.sub, refreshToken: undefined, idToken: undefined });
      expect(read?.accessTokens).toEqual({});
      expect((await other.readView(id, API))?.accessToken).toBeUndefined();
      // The application's token is fetched again rather than failing every call until it expires.
      expect(await other.readClientToken(API)).toBeUndefined();
    }
    const other = createRedisBackend(redis as unknown as RedisClient, prefix, plainCipher, IDLE_TIMEOUT, clock, 2_000);
    expect(await other.destroy([id])).toHaveLength(1);
    expect(await other.findSessions({ sid: 'auth0-sid-1' })).not.toContain(id);
  });

  const everyOperation = (backend: SessionBackend): Array<[string, () => Promise<unknown>]> => [
    ['ping', () => backend.ping()],
    ['putTransaction', () => backend.putTransaction('state', 'value', MINUTE)],
    ['takeTransaction', () => backend.takeTransaction('state')],
    ['createRecord', () => backend.createRecord('id-1', record)],
    ['readView', () => backend.readView('id-1', API)],
    ['readRecord', () => backend.readRecord('id-1')],
    ['storeTokens', () => backend.storeTokens('id-1', { audience: API, accessToken: record.accessTokens[API] as AccessTokenEntry, idleExpiresAt: now + HOUR })],
    ['touch', () => backend.touch('id-1', now + HOUR, now)],
    ['readSummaries', () => backend.readSummaries(['id-1'])],
    ['findSessions', () => backend.findSessions({ sid: 'auth0-sid-1' })],
    ['destroy', () => backend.destroy(['id-1'])],
    ['acquireLock', () => backend.acquireLock('id-1', 'owner', MINUTE)],
    ['releaseLock', () => backend.releaseLock('id-1', 'owner')],
    ['rememberOnce', () => backend.rememberOnce('jti', MINUTE)],
    ['readClientToken', () => backend.readClientToken(API)],
    ['storeClientToken', () => backend.storeClientToken(API, record.accessTokens[API] as AccessTokenEntry)],
  ];

  it('answers every operation with session_store_unavailable once its client is closed', async () => {
    const client = await connectRedis();
    await client.close();
    const backend = createRedisBackend(client as unknown as RedisClient, prefix, plainCipher, IDLE_TIMEOUT, clock, 2_000);
    for (const [name, operation] of everyOperation(backend)) {
      await expect(operation(), name).rejects.toMatchObject({ name: 'BffError', code: 'session_store_unavailable', status: 503 });
    }
  }, 2_000);

  it('answers every operation with session_store_unavailable when its client never connected', async () => {
    const client = createClient({ url: REDIS_URL, socket: { reconnectStrategy: false } });
    client.on('error', () => {});
    const backend = createRedisBackend(client as unknown as RedisClient, prefix, plainCipher, IDLE_TIMEOUT, clock, 2_000);
    for (const [name, operation] of everyOperation(backend)) {
      const error = await operation().then(() => undefined, (failure: unknown) => failure);
      expect(error, name).toMatchObject({ name: 'BffError', code: 'session_store_unavailable', status: 503 });
      // Its log line says why: the app did not connect the client (not a Redis that does not answer).
      expect(causeName(error), name).toBe('CLIENT_CLOSED');
    }
  }, 2_000);
});

describe('the Redis session backend on a client with client-side caching', () => {
  const now = Date.now();
  const clock = () => now;
  let prefix = '';
  // Two BFF processes: each its own RESP3 client with a cache, one Redis.
  let mine: RawRedis;
  let theirs: RawRedis;
  let here: SessionBackend;
  let there: SessionBackend;
  const record = () => aliceRecord(now, 'AT-1');

  beforeAll(async () => {
    [mine, theirs] = await Promise.all([connectRedis(true), connectRedis(true)]);
  });
  afterAll(async () => {
    await Promise.all([mine.close(), theirs.close()]);
  });
  beforeEach(() => {
    prefix = `bfftest:${randomUUID()}:`;
    here = createRedisBackend(mine as unknown as RedisClient, prefix, plainCipher, IDLE_TIMEOUT, clock, 2_000);
    there = createRedisBackend(theirs as unknown as RedisClient, prefix, plainCipher, IDLE_TIMEOUT, clock, 2_000);
  });
  afterEach(async () => {
    await Promise.all([here.close(), there.close()]);
    await deleteKeys(mine, prefix);
  });

  it('answers a session it read once at once, until another process stores a new token', async () => {
    const id = randomUUID();
    await there.createRecord(id, record());
    expect(here.readViewNow?.(id, API)).toBeUndefined();
    const view = await here.readView(id, API);
    expect(view?.accessToken?.token).toBe('AT-1');
    expect(here.readViewNow?.(id, API)).toEqual(view);
    expect(here.readViewNow?.(id, OTHER_API)).toBeUndefined();

    await there.storeTokens(id, { audience: API, accessToken: { token: 'AT-2', expiresAt: now + 2 * HOUR, refreshAt: now + 2 * HOUR - MINUTE, scope: 'read:things' }, idleExpiresAt: now + HOUR });
    await expect.poll(() => here.readViewNow?.(id, API), { timeout: 5_000, interval: 5 }).toBeUndefined();
    expect((await here.readView(id, API))?.accessToken?.token).toBe('AT-2');
    expect(here.readViewNow?.(id, API)?.accessToken?.token).toBe('AT-2');
  });

  it('stops answering a session at once when it ends here, and as soon as Redis says it ended elsewhere', async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    for (const id of [a, b]) {
      await there.createRecord(id, { ...record(), sid: `sid-${id}` });
      await here.readView(id, API);
      expect(here.readViewNow?.(id, API)).toBeDefined();
    }
    await here.destroy([a]);
    expect(here.readViewNow?.(a, API)).toBeUndefined();
    await there.destroy([b]);
    await expect.poll(() => here.readViewNow?.(b, API), { timeout: 5_000, interval: 5 }).toBeUndefined();
    expect(await here.readView(b, API)).toBeUndefined();
  });

  // Resolves with what woke the watch: the store's word, or (the test failing) a timer far longer than any test.
  const woken = async (w: RecordWatch) => {
    let timer: NodeJS.Timeout | undefined;
    const silence = new Promise((r) => (timer = setTimeout(r, 10_000, 'not told')));
    try {
      return await Promise.race([w.next(HOUR).then(() => 'changed'), silence]);
    } finally {
      clearTimeout(timer);
    }
  };
  // Whether a change is pending: next() answers at once for one, before a macrotask runs.
  const pending = (w: RecordWatch) => Promise.race([w.next(HOUR).then(() => true), new Promise((r) => setImmediate(r, false))]);

  it('wakes a watch of a session it read when another process stores its tokens or ends it, and no other watch', async () => {
    const [id, quiet] = [randomUUID(), randomUUID()];
    for (const each of [id, quiet]) {
      await there.createRecord(each, { ...record(), sid: `sid-${each}` });
      await here.readView(each, API);
    }
    const watch = here.watchRecord!(id);
    const unrelated = here.watchRecord!(quiet);
    try {
      await there.storeTokens(id, { audience: API, accessToken: { token: 'AT-2', expiresAt: now + 2 * HOUR, refreshAt: now + 2 * HOUR - MINUTE, scope: 'read:things' }, idleExpiresAt: now + HOUR });
      expect(await woken(watch)).toBe('changed');
      expect((await here.readView(id, API))?.accessToken?.token).toBe('AT-2');
      await there.destroy([id]);
      expect(await woken(watch)).toBe('changed');
      expect(await pending(unrelated)).toBe(false);
    } finally {
      watch.stop();
      unrelated.stop();
    }
  });

  it('wakes every watch when its connection to Redis comes back, since Redis tells nothing of what changed while it was down', async () => {
    const id = randomUUID();
    await there.createRecord(id, record());
    await here.readView(id, API);
    const watch = here.watchRecord!(id);
    const command = (client: RawRedis, args: string[]) => (client as unknown as { sendCommand(args: string[]): Promise<unknown> }).sendCommand(args);
    try {
      // This process's connection drops (a failover, a proxy's idle cut) while the other stores a new token.
      const myConnection = String(await command(mine, ['CLIENT', 'ID']));
      await command(theirs, ['CLIENT', 'KILL', 'ID', myConnection]);
      await there.storeTokens(id, { audience: API, accessToken: { token: 'AT-2', expiresAt: now + 2 * HOUR, refreshAt: now + 2 * HOUR - MINUTE, scope: 'read:things' }, idleExpiresAt: now + HOUR });
      expect(await woken(watch)).toBe('changed');
      expect((await here.readView(id, API))?.accessToken?.token).toBe('AT-2');
      expect(String(await command(mine, ['CLIENT', 'ID']))).not.toBe(myConnection);
    } finally {
      watch.stop();
    }
  });

  it('wakes a watch of the application\'s token it read when another process stores a new one', async () => {
    const name = `${API} read:things`;
    await there.storeClientToken(name, { token: 'AT-app-1', expiresAt: now + HOUR, refreshAt: now + HOUR - MINUTE, scope: undefined });
    expect((await here.readClientToken(name))?.token).toBe('AT-app-1');
    const watch = here.watchClientToken!(name);
    const session = here.watchRecord!(name);
    try {
      await there.storeClientToken(name, { token: 'AT-app-2', expiresAt: now + 2 * HOUR, refreshAt: now + 2 * HOUR - MINUTE, scope: undefined });
      expect(await woken(watch)).toBe('changed');
      expect((await here.readClientToken(name))?.token).toBe('AT-app-2');
      // A session of that name is another record.
      expect(await pending(session)).toBe(false);
    } finally {
      watch.stop();
      session.stop();
    }
  });

  it('holds nothing for a client without client-side caching', async () => {
    const plain = await connectRedis();
    const backend = createRedisBackend(plain as unknown as RedisClient, prefix, plainCipher, IDLE_TIMEOUT, clock, 2_000);
    const id = randomUUID();
    await backend.createRecord(id, record());
    await backend.readView(id, API);
    expect(backend.readViewNow).toBeUndefined();
    expect(backend.watchRecord).toBeUndefined();
    expect(backend.watchClientToken).toBeUndefined();
    await backend.close();
    await plain.close();
  });

  it('reads a session from Redis again once the cache\'s ttl has run out, also when nothing changed it', async () => {
    const TTL = 300;
    const client = await connectRedis(true, TTL);
    const backend = createRedisBackend(client as unknown as RedisClient, prefix, plainCipher, IDLE_TIMEOUT, clock, 2_000);
    const cache = (client as unknown as { clientSideCache: { stats(): { missCount: number; hitCount: number } } }).clientSideCache;
    try {
      const id = randomUUID();
      await there.createRecord(id, record());
      const readFrom = Date.now();
      const first = await backend.readView(id, API);
      expect(cache.stats().missCount).toBe(1);
      expect(backend.readViewNow?.(id, API)).toEqual(first);
      // Trusted for the ttl at most (node-redis counts it on the wall clock): then the next call goes to Redis.
      await expect.poll(() => backend.readViewNow?.(id, API), { timeout: 5_000, interval: 20 }).toBeUndefined();
      expect(Date.now() - readFrom).toBeGreaterThanOrEqual(TTL);
      expect(await backend.readView(id, API)).toEqual(first);
      expect(cache.stats().missCount).toBe(2);
      expect(backend.readViewNow?.(id, API)).toEqual(first);
    } finally {
      await backend.close();
      await client.close();
    }
  });

  it('answers nothing from memory once its connection is gone', async () => {
    const client = await connectRedis(true);
    const backend = createRedisBackend(client as unknown as RedisClient, prefix, plainCipher, IDLE_TIMEOUT, clock, 2_000);
    const id = randomUUID();
    await backend.createRecord(id, record());
    await backend.readView(id, API);
    expect(backend.readViewNow?.(id, API)).toBeDefined();
    (client as unknown as { destroy(): void }).destroy();
    expect(backend.readViewNow?.(id, API)).toBeUndefined();
    await expect(backend.readView(id, API)).rejects.toMatchObject({ code: 'session_store_unavailable' });
    await backend.close();
  });
});
