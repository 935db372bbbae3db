import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisClient } from '../../src/config/options.js';
import { AUDIENCE, REDIS_CLIENT_MODES, scanKeys, startHarness, waitFor, type Harness } from '../support/harness.js';
import { openSocket, opened } from '../support/ws-client.js';

const OTHER = 'https://other-api.example.test';

describe.each(REDIS_CLIENT_MODES)('two BFF instances sharing Redis ($mode)', ({ options }) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      redis: true,
      instances: 2,
      ...options,
      apis: (upstream) => [{ mount: '/api', upstream }, { mount: '/other', upstream, audience: OTHER }],
    });
  });
  afterAll(() => h?.close());

  it('accepts a cookie issued by the other instance', async () => {
    const browser = h.browser(0);
    await browser.login();
    browser.use(1);
    expect((await browser.user()).status).toBe(200);
    expect((await browser.api('/api/items')).status).toBe(200);
  });

  it('exchanges once when twenty requests spread over both instances arrive with an expired token', async () => {
    const browser = h.browser(0);
    await browser.login();
    const cookie = browser.jar.header(browser.url);
    // Each instance has read the session (and, with client-side caching, keeps it in memory).
    for (const url of h.urls) expect((await fetch(`${url}/api/items`, { headers: { cookie, 'x-csrf': '1' } })).status).toBe(200);
    h.clock.advance(61_000);
    const before = h.auth0.admin.counts().token.refresh_token?.ok ?? 0;
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => fetch(`${h.urls[i % 2]}/api/items`, { headers: { cookie, 'x-csrf': '1' } })),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect((h.auth0.admin.counts().token.refresh_token?.ok ?? 0) - before).toBe(1);
  });

  it('asks Auth0 no more, from either instance, once it asked to wait (Retry-After), and renews the token after that', async () => {
    const browser = h.browser(0);
    await browser.login();
    const cookie = browser.jar.header(browser.url);
    const call = (instance: number, mount = '/api') => fetch(`${h.urls[instance]}${mount}/items`, { headers: { cookie, 'x-csrf': '1' } });
    for (const instance of [0, 1]) expect((await call(instance)).status).toBe(200);
    const first = h.upstream.requests.at(-1)?.headers.authorization;
    expect((await call(0, '/other')).status).toBe(200);
    const firstOther = h.upstream.requests.at(-1)?.headers.authorization;
    const refused = () => h.auth0.admin.counts().token.refresh_token?.error ?? 0;
    const granted = () => h.auth0.admin.counts().token.refresh_token?.ok ?? 0;
    const refusedBefore = refused();
    const grantedBefore = granted();
    // Past the refresh point (52 s of 60), with more than half the margin left: the token at hand still serves.
    h.clock.advance(52_500);
    h.auth0.admin.failTokenEndpoint({ status: 429, retryAfter: 30 }, { times: 1 });
    try {
      for (const instance of [0, 1, 1, 0]) {
        expect((await call(instance)).status).toBe(200);
        expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(first);
      }
      // One token request in all: the other instance waits as Auth0 asked the first.
      expect(refused() - refusedBefore).toBe(1);
      expect(granted()).toBe(grantedBefore);
      // What Auth0 asked of one API's renewal holds no other's.
      expect((await call(1, '/other')).status).toBe(200);
      expect(h.upstream.requests.at(-1)?.headers.authorization).not.toBe(firstOther);
      expect(granted() - grantedBefore).toBe(1);
      // Half the margin gone: a 503 at once, with the seconds left, and Auth0 is not asked.
      h.clock.advance(5_000);
      const waiting = await call(1);
      expect(waiting.status).toBe(503);
      expect(Number(waiting.headers.get('retry-after'))).toBeGreaterThan(20);
      expect(Number(waiting.headers.get('retry-after'))).toBeLessThanOrEqual(30);
      expect(refused() - refusedBefore).toBe(1);
    } finally {
      h.auth0.admin.reset();
    }
    h.clock.advance(30_000);
    expect((await call(1)).status).toBe(200);
    expect(h.upstream.requests.at(-1)?.headers.authorization).not.toBe(first);
    expect((await call(0)).status).toBe(200);
  });

  it('forces one exchange in all, not one per instance, when the upstream rejects every token', async () => {
    const browser = h.browser(0);
    await browser.login();
    const cookie = browser.jar.header(browser.url);
    const call = (instance: number) => fetch(`${h.urls[instance]}/api/items`, { headers: { cookie, 'x-csrf': '1' } });
    for (const instance of [0, 1]) expect((await call(instance)).status).toBe(200);
    const granted = () => h.auth0.admin.counts().token.refresh_token?.ok ?? 0;
    const before = granted();
    const rejectEveryToken = () => {
      h.upstream.handler = (_req, res) => {
        res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer error="invalid_token"' });
        res.end('{"error":"from the upstream"}');
      };
    };
    const expectRejected = async (instances: number[]) => {
      for (const instance of instances) {
        const answer = await call(instance);
        // The upstream's own answer reaches the browser.
        expect(answer.status).toBe(401);
        expect(await answer.json()).toEqual({ error: 'from the upstream' });
      }
    };
    try {
      rejectEveryToken();
      await expectRejected([0, 1, 0, 1, 1, 0]);
      expect(granted() - before).toBe(1);
      // Its token expired, the session renews as usual (the upstream takes tokens again)...
      h.upstream.handler = undefined;
      h.clock.advance(61_000);
      expect((await call(1)).status).toBe(200);
      expect(granted() - before).toBe(2);
      // ...and a token a normal renewal gave may be renewed by force again, once.
      rejectEveryToken();
      await expectRejected([1, 0, 0, 1]);
      expect(granted() - before).toBe(3);
    } finally {
      h.upstream.handler = undefined;
    }
  });

  it('refuses a WebSocket handshake with the API\'s own status, sent once, when the token it rejects is the one another instance\'s forced renewal just gave', async () => {
    const browser = h.browser(0);
    await browser.login();
    const granted = () => h.auth0.admin.counts().token.refresh_token?.ok ?? 0;
    const before = granted();
    // Instance 0: an API call whose token the upstream rejects once is renewed by force, and replayed.
    h.upstream.handler = (_req, res) => {
      h.upstream.handler = undefined;
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' });
      res.end();
    };
    expect((await browser.api('/api/items')).status).toBe(200);
    expect(granted() - before).toBe(1);
    const renewed = h.upstream.requests.at(-1)?.headers.authorization;
    // Instance 1: the upstream rejects that token at the handshake too.
    let handshakes = 0;
    h.upstream.upgradeHandler = (_req, socket) => {
      handshakes++;
      socket.end('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer error="invalid_token"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    };
    try {
      browser.use(1);
      // As any refused handshake: opened, then closed with the API's status.
      const refused = opened(await openSocket(browser, '/api/live'));
      expect(await refused.closed).toMatchObject({ code: 1014, reason: 'upstream_refused 401' });
      expect(handshakes).toBe(1);
      expect(h.upstream.upgrades.at(-1)?.headers.authorization).toBe(renewed);
      expect(granted() - before).toBe(1);
    } finally {
      h.upstream.upgradeHandler = undefined;
    }
  });

  it('sees at once on one instance a logout made through the other', async () => {
    const browser = h.browser(0);
    await browser.login();
    const { body } = await browser.user();
    const other = h.browser(1);
    other.jar.set(other.url, browser.jar.header(browser.url).split('; ').find((c) => c.startsWith('bff=')) as string);
    expect((await other.user()).status).toBe(200);
    expect((await other.api('/api/items')).status).toBe(200);
    await browser.request(body.logoutUrl);
    expect((await other.user()).status).toBe(401);
    expect((await other.api('/api/items')).status).toBe(401);
  });

  it('keeps one access token per API audience from the one ORT (multi-resource refresh token)', async () => {
    const browser = h.browser(0);
    await browser.login();
    h.upstream.requests.length = 0;
    expect((await browser.api('/other/things')).status).toBe(200);
    expect((await browser.api('/api/items')).status).toBe(200);
    expect((await browser.api('/other/things')).status).toBe(200);
    const [first, second, third] = h.upstream.requests.map((r) => (r.headers.authorization as string).slice(7));
    const jwks = createRemoteJWKSet(new URL(`${h.auth0.issuer}.well-known/jwks.json`));
    await jwtVerify(first as string, jwks, { audience: OTHER, issuer: h.auth0.issuer });
    await jwtVerify(second as string, jwks, { audience: AUDIENCE, issuer: h.auth0.issuer });
    expect(third).toBe(first);
    expect(decodeJwt(first as string).aud).not.toEqual(decodeJwt(second as string).aud);
  });
});

describe('client-side caching of the session read', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: true, instances: 2, redisClientSideCache: {} });
  });
  afterAll(() => h?.close());

  const cacheOf = (i: number) => (h.redisClients[i] as unknown as { clientSideCache: { stats(): { missCount: number } } }).clientSideCache;

  it('answers repeated API calls without asking Redis again, and sees the exchanged token another instance stored', async () => {
    const browser = h.browser(0);
    await browser.login();
    const cookie = browser.jar.header(browser.url);
    const call = (i: number) => fetch(`${h.urls[i]}/api/items`, { headers: { cookie, 'x-csrf': '1' } });
    expect((await call(1)).status).toBe(200);
    // Every read that goes to Redis is a miss of the client's cache.
    const missesBefore = cacheOf(1).stats().missCount;
    for (let i = 0; i < 5; i++) expect((await call(1)).status).toBe(200);
    expect(cacheOf(1).stats().missCount).toBe(missesBefore);

    // Instance 0 exchanges the expiring token; instance 1 must forward the new one, not the one it had in memory.
    h.clock.advance(61_000);
    h.upstream.requests.length = 0;
    const before = h.auth0.admin.counts().token.refresh_token?.ok ?? 0;
    expect((await call(0)).status).toBe(200);
    expect((await call(1)).status).toBe(200);
    const [viaFirst, viaSecond] = h.upstream.requests.map((r) => r.headers.authorization);
    expect(viaSecond).toBe(viaFirst);
    expect((h.auth0.admin.counts().token.refresh_token?.ok ?? 0) - before).toBe(1);
  });
  it('forwards the token another instance is exchanging as soon as Redis says it is stored, without reading it on a timer meanwhile', async () => {
    const browser = h.browser(0);
    await browser.login();
    const cookie = browser.jar.header(browser.url);
    const call = (i: number) => fetch(`${h.urls[i]}/api/items`, { headers: { cookie, 'x-csrf': '1' } });
    for (const i of [0, 1]) expect((await call(i)).status).toBe(200);
    const reads = () => {
      const stats = (h.redisClients[1] as unknown as { clientSideCache: { stats(): { hitCount: number; missCount: number } } }).clientSideCache.stats();
      return stats.hitCount + stats.missCount;
    };

    // Instance 0 holds the exchange lock while Auth0 takes half a second to answer; instance 1 waits for its token.
    h.auth0.admin.failTokenEndpoint({ delayMs: 500 }, { times: 1 });
    h.clock.advance(61_000);
    h.upstream.requests.length = 0;
    const led = call(0);
    await waitFor(async () => (await scanKeys(h.redis as RedisClient, `${h.prefix}lock:*`)).length === 1, 'instance 0 to hold the exchange lock');
    const readsBefore = reads();
    const started = performance.now();
    const waited = await call(1);
    const elapsed = performance.now() - started;
    expect(waited.status).toBe(200);
    expect((await led).status).toBe(200);

    // Both forwarded the one new token. Instance 1 read the session once per 250 ms of waiting at most (its safety
    // net), besides the request's own reads, one at once and one or two when told: not every 25 ms as it once did.
    const [first, second] = h.upstream.requests.map((r) => r.headers.authorization);
    expect(second).toBe(first);
    expect(reads() - readsBefore).toBeLessThanOrEqual(6 + elapsed / 250);
  });
});
