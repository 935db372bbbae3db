import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import express from 'express';
import { createBff } from '../../src/index.js';
import { CLIENT_ID, CLIENT_SECRET, listen, closeServer, REDIS_CLIENT_MODES, SESSION_SECRET, startHarness, type Harness } from '../support/harness.js';
import { behindRelay } from '../support/behind-relay.js';
import { openSocket } from '../support/ws-client.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

describe.each(REDIS_CLIENT_MODES)('when Redis goes down and comes back ($mode)', ({ options }) => {
  const setup = behindRelay(options);

  it('answers 503 while it is down, logs nobody out, and the session works again once it is back', async () => {
    const { h, relay } = setup;
    const browser = h.browser();
    await browser.login();
    expect((await browser.api('/api/items')).status).toBe(200);

    relay.down();
    const client = h.redis as unknown as { isReady: boolean };
    const { waitFor } = await import('../support/harness.js');
    await waitFor(() => !client.isReady, 'the client notices the outage');
    h.events.length = 0;
    h.logs.length = 0;
    const api = await browser.api('/api/items');
    expect(api.status).toBe(503);
    expect(await api.json()).toMatchObject({ error: 'session_store_unavailable' });
    expect((await browser.api('/api/items')).status).toBe(503);
    const user = await browser.request('/auth/user');
    expect(user.status).toBe(503);
    expect((await browser.request('/healthz')).status).toBe(503);
    expect(browser.jar.header(browser.url)).toMatch(/bff=/);
    // Every failure is an event; the log has one line per kind of failure, not one per request.
    expect(h.events.filter((e) => e.name === 'store_failed').map((e) => e.payload)).toEqual([
      { operation: 'api', cause: expect.any(String), sessionRef: expect.stringMatching(/^[\w-]{10}$/) },
      { operation: 'api', cause: expect.any(String), sessionRef: expect.stringMatching(/^[\w-]{10}$/) },
      { operation: 'user', cause: expect.any(String), sessionRef: undefined },
    ]);
    expect(h.logs.filter((l) => /session store failed/.test(l))).toEqual([
      expect.stringMatching(/^warn .*"operation":"api".*"sessionRef":/),
      expect.stringMatching(/^warn .*"operation":"user"/),
    ]);
    // A WebSocket handshake under an API mount is answered and reported the same way.
    h.events.length = 0;
    expect(await openSocket(browser, '/api/live')).toMatchObject({ kind: 'refused', status: 503 });
    expect(h.events.filter((e) => e.name === 'store_failed').map((e) => e.payload)).toEqual([
      { operation: 'websocket', cause: expect.any(String), sessionRef: undefined },
    ]);

    relay.up();
    await waitFor(() => client.isReady, 'the client reconnects', 10_000);
    expect((await browser.api('/api/items')).status).toBe(200);
    expect((await browser.user()).status).toBe(200);
    expect((await browser.request('/healthz')).status).toBe(200);
  });
});

describe.each(REDIS_CLIENT_MODES)('when Redis stops answering without closing its connections ($mode)', ({ options }) => {
  const setup = behindRelay(options);

  it('answers 503 within the command timeout instead of hanging, and works again afterwards', async () => {
    const { h, relay } = setup;
    const browser = h.browser();
    await browser.login();
    relay.freeze();
    const api = await browser.api('/api/items');
    expect(api.status).toBe(503);
    expect(await api.json()).toMatchObject({ error: 'session_store_unavailable' });
    relay.up();
    const { waitFor } = await import('../support/harness.js');
    await waitFor(async () => (await browser.api('/api/items')).status === 200, 'the session works again', 10_000);
    expect((await browser.user()).status).toBe(200);
  });
});

describe('when Redis stops answering, with client-side caching', () => {
  const setup = behindRelay({ redisClientSideCache: { ttl: 2_000 } });

  it('serves a session read just before from memory for at most the cache ttl, then answers 503', async () => {
    const { h, relay } = setup;
    const browser = h.browser();
    await browser.login();
    expect((await browser.api('/api/items')).status).toBe(200);
    relay.freeze();
    expect((await browser.api('/api/items')).status).toBe(200);
    // No invalidation can arrive now: the ttl bounds how long the remembered read is trusted.
    const { waitFor } = await import('../support/harness.js');
    let last: Response | undefined;
    await waitFor(async () => (last = await browser.api('/api/items')).status !== 200, 'the remembered read expires', 10_000);
    expect(last?.status).toBe(503);
    expect(await last?.json()).toMatchObject({ error: 'session_store_unavailable' });
    expect(browser.jar.header(browser.url)).toMatch(/bff=/);
    relay.up();
    await waitFor(async () => (await browser.api('/api/items')).status === 200, 'the session works again', 10_000);
  });
});

describe('when Redis stops answering as a session\'s token passes its refresh point, with client-side caching', () => {
  const setup = behindRelay({ redisClientSideCache: { ttl: 5_000 } });

  it('serves its calls with the token at hand, which still lasts, instead of 503: the renewal waits for the store', async () => {
    const { h, relay } = setup;
    const browser = h.browser();
    await browser.login();
    expect((await browser.api('/api/items')).status).toBe(200);
    const first = h.upstream.requests.at(-1)?.headers.authorization;
    // The emulator's tokens last 60 s: past the refresh point (52 s), with more than half the margin left.
    h.clock.advance(52_500);
    relay.freeze();
    const res = await browser.api('/api/items');
    expect(res.status).toBe(200);
    expect(h.upstream.requests.at(-1)?.headers.authorization).toBe(first);
    relay.up();
    const { waitFor } = await import('../support/harness.js');
    await waitFor(async () => (await browser.api('/api/items')).status === 200 && h.upstream.requests.at(-1)?.headers.authorization !== first, 'the token is renewed once the store answers', 10_000);
    expect(h.events.filter((e) => e.name === 'logout')).toEqual([]);
  });
});

describe('when Auth0 cannot be reached', () => {
  it('reports 503 on /healthz and 502 on login until the issuer answers', async () => {
    const dead = createServer();
    await listen(dead);
    const port = (dead.address() as AddressInfo).port;
    await closeServer(dead);
    const logs: string[] = [];
    const bff = createBff({
      issuer: `http://127.0.0.1:${port}/`,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      baseURL: 'http://127.0.0.1:3999',
      session: { secrets: [SESSION_SECRET] },
      logger: { warn: (m) => logs.push(m), error: (m) => logs.push(m) },
      tokens: { attemptTimeout: 300 },
    });
    const app = express().use(bff);
    const server = createServer(app);
    await listen(server);
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const health = await fetch(`${url}/healthz`);
      expect(health.status).toBe(503);
      expect(await health.json()).toMatchObject({ error: 'idp_unavailable', checks: { issuer: false, sessionStore: true } });
      const login = await fetch(`${url}/auth/login`, { redirect: 'manual' });
      expect(login.status).toBe(502);
      expect(await login.json()).toMatchObject({ error: 'idp_unavailable' });
      expect(logs.some((l) => /memory/.test(l))).toBe(true);
      expect(logs).toContain('Auth0 could not be reached');
    } finally {
      await bff.close();
      await closeServer(server);
    }
  });

  it('still logs the user out locally when the revocation fails, and reports it', async () => {
    const h = await startHarness({ redis: true });
    try {
      const browser = h.browser();
      await browser.login();
      const { body } = await browser.user();
      await h.auth0.stop();
      const res = await browser.request(body.logoutUrl);
      expect(res.status).toBe(302);
      expect((await browser.user()).status).toBe(401);
      expect(h.events.some((e) => e.name === 'revocation_failed')).toBe(true);
      expect(h.events.find((e) => e.name === 'logout')?.payload).toMatchObject({ reason: 'user', revoked: false });
      expect(h.logs.some((l) => /revoke/.test(l))).toBe(true);
    } finally {
      await h.close().catch(() => {});
    }
  });

  it('reports a revocation Auth0 refuses with its HTTP status and error code, once', async () => {
    // Auth0's revocation endpoint failing (a 503 with an OAuth error body), everything else answering.
    const failingRevocation: typeof fetch = async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if (url.endsWith('/oauth/revoke')) {
        return new Response(JSON.stringify({ error: 'temporarily_unavailable', error_description: 'try later' }), { status: 503, headers: { 'content-type': 'application/json' } });
      }
      return fetch(input, init);
    };
    const h = await startHarness({ redis: true, bff: { fetch: failingRevocation } });
    try {
      const browser = h.browser();
      await browser.login();
      const { body } = await browser.user();
      expect((await browser.request(body.logoutUrl)).status).toBe(302);
      expect((await browser.user()).status).toBe(401);
      expect(h.events.filter((e) => e.name === 'revocation_failed').map((e) => e.payload)).toEqual([
        { sub: expect.any(String), sid: expect.any(String), sessionRef: expect.any(String), error: 'http_503', status: 503 },
      ]);
      expect(h.logs.filter((l) => /revoke/.test(l))).toEqual([expect.stringMatching(/^warn .*"error":"http_503","status":503/)]);
      expect(h.events.filter((e) => e.name === 'logout').map((e) => e.payload)).toEqual([expect.objectContaining({ reason: 'user', revoked: false })]);
    } finally {
      await h.close();
    }
  });
});

describe('configuration faults at the token endpoint', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: true });
  });
  afterAll(() => h?.close());

  it('answers 500 configuration_error when Auth0 refuses the client, logs it, and keeps the session', async () => {
    const browser = h.browser();
    await browser.login();
    h.clock.advance(61_000);
    h.auth0.admin.failTokenEndpoint({ status: 401, body: { error: 'access_denied', error_description: 'Unauthorized' } });
    try {
      const res = await browser.api('/api/items');
      expect(res.status).toBe(500);
      expect(await res.json()).toMatchObject({ error: 'configuration_error' });
      // Logged once, where it was found, with what it takes to fix it (and never a token).
      expect(h.logs.filter((l) => l.startsWith('error'))).toEqual([
        expect.stringMatching(/client credentials.*"error":"access_denied","status":401,"audience":"https:\/\/api\.example\.test","sessionRef":"[\w-]{10}"/),
      ]);
    } finally {
      h.auth0.admin.reset();
    }
    expect((await browser.user()).status).toBe(200);
    expect((await browser.api('/api/items')).status).toBe(200);
  });

  it('treats access_denied from an Action on a refresh as the end of the Auth0 session', async () => {
    const browser = h.browser();
    await browser.login();
    h.clock.advance(61_000);
    h.auth0.admin.failTokenEndpoint({ status: 403, body: { error: 'access_denied', error_description: 'revoked by policy' } });
    try {
      const res = await browser.api('/api/items');
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: 'session_ended' });
    } finally {
      h.auth0.admin.reset();
    }
    expect((await browser.user()).status).toBe(401);
  });
});
