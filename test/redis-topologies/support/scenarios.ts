import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { REDIS_CLIENT_MODES, USER, waitFor, type Harness } from '../../support/harness.js';
import { startTopologyHarness, type Topology } from './topology-harness.js';
import { apiOnEvery, attemptLogin, bffCookie, bffSessionId, exchanges, loggedIn, logoutToken, newestAuth0Sid, postLogoutToken, ssoPair } from './browsers.js';

/**
 * The BFF's promises on a Redis topology, with two instances, with and without RESP3 client-side caching:
 * sessions shared, one exchange per expiry, every kind of logout reaching every instance, and the lifetimes.
 */
export function sharedScenarios(topology: () => Topology): void {
  describe.each(REDIS_CLIENT_MODES)('two BFF instances ($mode)', ({ options }) => {
    let h: Harness;
    beforeAll(async () => {
      h = await startTopologyHarness(topology(), {
        ...options,
        bff: { session: { secrets: ['test-session-secret-test-session-secret'], idleTimeout: 600, absoluteTimeout: 3_600 } },
      });
    });
    afterAll(() => h?.close());
    // The tests that move the BFF's clock come last: logout tokens are signed with the real time.
    beforeEach(async () => {
      // Every test starts with no Auth0 session of the user: a back-channel logout by sub ends only its own.
      await h.auth0.admin.endSession({ sub: USER.sub });
    });

    it('logs in on one instance and proxies calls on both', async () => {
      const browser = h.browser(0);
      expect((await browser.login()).status).toBe(302);
      expect(await apiOnEvery(h, browser)).toEqual([200, 200]);
      expect((await browser.use(1).user()).status).toBe(200);
    });

    it('ends every BFF session of the Auth0 session on user logout, on every instance', async () => {
      const [browser, sibling] = await ssoPair(h, [0, 1]);
      expect(bffCookie(sibling)).not.toBe(bffCookie(browser));
      for (const b of [browser, sibling]) expect(await apiOnEvery(h, b)).toEqual([200, 200]);
      const cookies = [browser, sibling].map((b) => b.jar.header(b.url));

      const logout = await browser.request((await browser.user()).body.logoutUrl);
      expect(logout.status).toBe(302);
      expect(bffCookie(browser)).toBeUndefined();
      for (const cookie of cookies) {
        for (const url of h.urls) expect((await fetch(`${url}/api/items`, { headers: { cookie, 'x-csrf': '1' } })).status).toBe(401);
      }
    });

    it('ends every BFF session of the Auth0 session on a back-channel logout by sid, on every instance', async () => {
      const [browser, sibling] = await ssoPair(h, [1, 1]);
      for (const b of [browser, sibling]) expect(await apiOnEvery(h, b)).toEqual([200, 200]);
      await h.auth0.admin.endSession({ sid: newestAuth0Sid(h) }, { backchannel: true });
      expect(h.auth0.admin.backchannelDeliveries().at(-1)?.status).toBe(200);
      for (const b of [browser, sibling]) expect(await apiOnEvery(h, b)).toEqual([401, 401]);
    });

    it('ends every BFF session of the user on a back-channel logout by sub, on every instance', async () => {
      const first = h.browser(0);
      await first.login();
      const second = h.browser(1);
      await second.login();
      for (const b of [first, second]) expect(await apiOnEvery(h, b)).toEqual([200, 200]);
      const res = await postLogoutToken(h.urls[1] as string, await logoutToken(h, { sub: USER.sub }));
      expect(res.status).toBe(200);
      for (const b of [first, second]) expect(await apiOnEvery(h, b)).toEqual([401, 401]);
    });

    it('exchanges exactly once per expiry, for twenty calls spread over both instances, expiry after expiry', async () => {
      const browser = h.browser(0);
      await browser.login();
      expect(await apiOnEvery(h, browser)).toEqual([200, 200]);
      for (let expiry = 0; expiry < 3; expiry++) {
        h.clock.advance(61_000);
        const before = exchanges(h);
        const statuses = await Promise.all(Array.from({ length: 20 }, (_, i) => browser.use(i % 2).api('/api/items').then((r) => r.status)));
        expect(statuses).toEqual(Array(20).fill(200));
        expect(exchanges(h) - before).toBe(1);
      }
    });

    it('forwards on each instance the token the other one just exchanged', async () => {
      const browser = h.browser(0);
      await browser.login();
      const cookie = browser.jar.header(browser.url);
      const call = (i: number) => fetch(`${h.urls[i]}/api/items`, { headers: { cookie, 'x-csrf': '1' } });
      expect((await call(1)).status).toBe(200);
      const cache = (h.redisClients.at(-1) as unknown as { clientSideCache?: { stats(): { missCount: number } } }).clientSideCache;
      expect(cache !== undefined).toBe(options.redisClientSideCache !== undefined);
      // With client-side caching, repeated calls are answered from memory: no read reaches Redis (a miss).
      const misses = cache?.stats().missCount;
      for (let i = 0; i < 5; i++) expect((await call(1)).status).toBe(200);
      expect(cache?.stats().missCount).toBe(misses);

      h.clock.advance(61_000);
      h.upstream.requests.length = 0;
      expect((await call(0)).status).toBe(200);
      expect((await call(1)).status).toBe(200);
      const [viaFirst, viaSecond] = h.upstream.requests.map((r) => r.headers.authorization);
      expect(viaSecond).toBe(viaFirst);
    });

    it('finds a revocation at the next exchange and ends the Auth0 session\'s BFF sessions', async () => {
      const [browser, sibling] = await ssoPair(h, [0, 1]);
      expect(await apiOnEvery(h, browser)).toEqual([200, 200]);
      // Ended at Auth0 without a back-channel logout: the BFF learns it when it next exchanges the ORT.
      await h.auth0.admin.endSession({ sid: newestAuth0Sid(h) });
      expect(await apiOnEvery(h, browser)).toEqual([200, 200]);
      h.clock.advance(61_000);
      const res = await browser.use(1).api('/api/items');
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: 'session_ended' });
      expect(await apiOnEvery(h, sibling)).toEqual([401, 401]);
    });

    it('ends an idle session, and rolls the idle expiry with activity on either instance', async () => {
      const browser = h.browser(0);
      await browser.login();
      const first = (await browser.user()).body.idleExpiresAt;
      h.clock.advance(300_000);
      expect((await browser.use(1).api('/api/items')).status).toBe(200);
      await waitFor(async () => (await browser.user()).body.idleExpiresAt > first, 'the idle expiry rolled');
      h.clock.advance(601_000);
      const res = await browser.use(0).api('/api/items');
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: 'session_ended' });
      expect(h.events.at(-1)).toMatchObject({ name: 'logout', payload: { reason: 'idle_timeout' } });
      expect(await apiOnEvery(h, browser)).toEqual([401, 401]);
    });

    it('ends a session at its absolute lifetime, whatever the activity', async () => {
      const browser = h.browser(0);
      await browser.login();
      for (let i = 0; i < 7; i++) {
        h.clock.advance(500_000);
        expect((await browser.use(i % 2).api('/api/items')).status).toBe(200);
      }
      h.clock.advance(200_000);
      const res = await browser.use(1).api('/api/items');
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: 'session_ended' });
      expect(h.events.at(-1)).toMatchObject({ name: 'logout', payload: { reason: 'absolute_timeout' } });
    });
  });

  describe('a new session and the replicas', () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startTopologyHarness(topology());
    });
    afterAll(() => h?.close());

    /** WAIT commands a server has run since it started (INFO commandstats). */
    const waits = async (port: number) =>
      Number(/cmdstat_wait:calls=(\d+)/.exec(String(await (await topology().node(port)).sendCommand(['INFO', 'commandstats'])))?.[1] ?? 0);

    it('is on a replica by the time the login answers: a failover right after cannot log the user out', async () => {
      const browser = await loggedIn(h.browser(0));
      const record = `${h.prefix}tok:{${bffSessionId(browser)}}`;
      const { master, replica } = await topology().homeOf(record);
      expect(await waits(master)).toBeGreaterThan(0);
      const onReplica = await topology().node(replica.port);
      // A cluster replica answers reads of its master's keys only after READONLY; a Sentinel-watched one always.
      await onReplica.sendCommand(['READONLY']).catch(() => {});
      expect(await onReplica.exists(record)).toBe(1);
    });

    it('still logs in while every replica hangs, without waiting for them', async () => {
      const replicas = await topology().replicaServers();
      expect(replicas.length).toBeGreaterThan(0);
      for (const r of replicas) r.pause();
      try {
        expect(await attemptLogin(h.browser(1))).toBe(302);
      } finally {
        for (const r of replicas) r.resume();
      }
    });
  });
}
