import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../../example/api/server.js';
import { createBff, type Bff } from '../../src/index.js';
import {
  AUDIENCE, CLIENT_ID, CLIENT_SECRET, closeServer, listen, scanKeys, SESSION_SECRET, startHarness, USER, waitFor, type Harness, type RecordedRequest,
} from '../support/harness.js';
import { behindRelay } from '../support/behind-relay.js';
import { openSocket, opened } from '../support/ws-client.js';

const OTHER_API = 'https://other-api.example.test';
/** One upstream behind a mount per token policy, and a `client` API the application is not authorised for. */
const MOUNTS = (upstream: string) => [
  { mount: '/api', upstream },
  { mount: '/public', upstream, token: 'user-or-none' as const },
  { mount: '/app', upstream, token: 'client' as const },
  { mount: '/mixed', upstream, token: 'user-or-client' as const },
  { mount: '/plain', upstream, token: 'none' as const },
  { mount: '/denied', upstream, token: 'client' as const, audience: OTHER_API },
];
const AUTHORISED = { client: { clientGrants: [{ audience: 'https://api.example.test' }] } };

const clientGrants = (h: Harness) => h.auth0.admin.counts().token.client_credentials ?? { ok: 0, error: 0 };
const refreshes = (h: Harness) => h.auth0.admin.counts().token.refresh_token?.ok ?? 0;

async function claimsOf(h: Harness, seen: RecordedRequest | undefined, audience = 'https://api.example.test'): Promise<JWTPayload> {
  const header = seen?.headers.authorization;
  expect(header).toMatch(/^Bearer /);
  const jwks = createRemoteJWKSet(new URL(`${h.auth0.issuer}.well-known/jwks.json`));
  return (await jwtVerify((header as string).slice(7), jwks, { issuer: h.auth0.issuer, audience })).payload;
}

describe('a token policy per API', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: true, apis: MOUNTS, ...AUTHORISED });
  });
  afterAll(() => h?.close());
  beforeEach(() => {
    h.upstream.handler = undefined;
    h.upstream.requests.length = 0;
    h.auth0.admin.reset();
  });

  describe('user-or-none', () => {
    it('forwards a call without a session with no token and no cookie', async () => {
      const res = await h.browser().api('/public/items?q=1', { headers: { cookie: 'bff=not-a-session; other=1', authorization: 'Bearer from-the-browser' } });
      expect(res.status).toBe(200);
      const [seen] = h.upstream.requests;
      expect(seen?.url).toBe('/items?q=1');
      expect(seen?.headers.authorization).toBeUndefined();
      expect(seen?.headers.cookie).toBeUndefined();
    });

    it('forwards a logged-in call with the user\'s token', async () => {
      const browser = h.browser();
      await browser.login();
      expect((await browser.api('/public/items')).status).toBe(200);
      expect((await claimsOf(h, h.upstream.requests[0])).sub).toBe(USER.sub);
      expect(h.upstream.requests[0]?.headers.cookie).toBeUndefined();
    });

    it('answers 401 session_ended on the call that finds the session over, then forwards the next ones as anonymous', async () => {
      const browser = h.browser();
      await browser.login();
      await h.auth0.admin.endSession({ sub: USER.sub }, { backchannel: false });
      h.clock.advance(61_000);
      const ended = await browser.api('/public/items');
      expect(ended.status).toBe(401);
      expect(await ended.json()).toMatchObject({ error: 'session_ended' });
      expect(h.upstream.requests).toHaveLength(0);
      const next = await browser.api('/public/items');
      expect(next.status).toBe(200);
      expect(h.upstream.requests[0]?.headers.authorization).toBeUndefined();
    });

    it('forwards as anonymous a call whose cookie outlived a logout', async () => {
      const browser = h.browser();
      await browser.login();
      const cookie = browser.jar.header(browser.url);
      const { body } = await browser.user();
      await browser.request(body.logoutUrl);
      const res = await h.browser().api('/public/items', { headers: { cookie } });
      expect(res.status).toBe(200);
      expect(h.upstream.requests[0]?.headers.authorization).toBeUndefined();
    });

    it('answers 503 when Auth0 cannot renew the user\'s token, rather than quietly dropping the user', async () => {
      const browser = h.browser();
      await browser.login();
      h.clock.advance(61_000);
      h.auth0.admin.failTokenEndpoint({ status: 503 });
      const res = await browser.api('/public/items');
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ error: 'token_service_unavailable' });
      expect(h.upstream.requests).toHaveLength(0);
      h.auth0.admin.reset();
      expect((await browser.api('/public/items')).status).toBe(200);
      expect((await claimsOf(h, h.upstream.requests[0])).sub).toBe(USER.sub);
    });
  });

  describe('client', () => {
    it('forwards the application\'s own token, with or without a session, and never the browser\'s cookies', async () => {
      const anonymous = await h.browser().api('/app/items');
      expect(anonymous.status).toBe(200);
      const browser = h.browser();
      await browser.login();
      expect((await browser.api('/app/items')).status).toBe(200);
      for (const seen of h.upstream.requests) {
        expect(await claimsOf(h, seen)).toMatchObject({ sub: `${CLIENT_ID}@clients`, gty: 'client-credentials', azp: CLIENT_ID });
        expect(seen.headers.cookie).toBeUndefined();
      }
      expect(h.upstream.requests[0]?.headers.authorization).toBe(h.upstream.requests[1]?.headers.authorization);
    });

    it('exchanges once for twenty concurrent calls, keeps the token until its refresh point, then exchanges once again', async () => {
      h.clock.advance(24 * 3600_000);
      const before = clientGrants(h).ok;
      const first = await Promise.all(Array.from({ length: 20 }, () => h.browser().api('/app/items')));
      expect(first.map((r) => r.status)).toEqual(Array(20).fill(200));
      expect(clientGrants(h).ok - before).toBe(1);
      // 60 s tokens: expiry counted from the request less 1 s (59 s), renewed a refresh margin (6 s) and the
      // clock-skew allowance (1 s) before that: at 52 s, like a user's token.
      h.clock.advance(50_000);
      expect((await h.browser().api('/app/items')).status).toBe(200);
      expect(clientGrants(h).ok - before).toBe(1);
      h.clock.advance(3_000);
      const second = await Promise.all(Array.from({ length: 20 }, () => h.browser().api('/app/items')));
      expect(second.map((r) => r.status)).toEqual(Array(20).fill(200));
      expect(clientGrants(h).ok - before).toBe(2);
      expect(new Set(h.upstream.requests.map((r) => r.headers.authorization)).size).toBe(2);
    });

    it('answers 503 token_service_unavailable with Retry-After when Auth0 fails transiently, asks Auth0 again only once that time is up, logs nobody out, and recovers', async () => {
      const browser = h.browser();
      await browser.login();
      h.clock.advance(24 * 3600_000);
      h.auth0.admin.failTokenEndpoint({ status: 429, retryAfter: 30 });
      const res = await browser.api('/app/items');
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('30');
      expect(await res.json()).toMatchObject({ error: 'token_service_unavailable' });
      expect(h.upstream.requests).toHaveLength(0);
      expect(h.events.some((e) => e.name === 'client_token_failed' && (e.payload as { kind: string }).kind === 'transient')).toBe(true);
      expect((await browser.user()).status).toBe(200);
      // The token is every caller's: the calls within the 30 s, one a second, do not ask Auth0 again.
      const retryAfters: Array<string | null> = [];
      for (let i = 0; i < 9; i++) {
        h.clock.advance(1_000);
        const again = await h.browser().api('/app/items');
        expect(again.status).toBe(503);
        retryAfters.push(again.headers.get('retry-after'));
      }
      expect(retryAfters).toEqual(['29', '28', '27', '26', '25', '24', '23', '22', '21']);
      expect(clientGrants(h).error).toBe(1);
      h.auth0.admin.reset();
      h.clock.advance(21_000);
      expect((await browser.api('/app/items')).status).toBe(200);
    });

    it('renews the token once and replays the call when the upstream says invalid_token', async () => {
      let calls = 0;
      h.upstream.handler = (_req, res) => {
        calls++;
        if (calls === 1) return void res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end();
        res.end('{"second":true}');
      };
      const before = clientGrants(h).ok;
      const res = await h.browser().api('/app/items');
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ second: true });
      expect(clientGrants(h).ok - before).toBe(1);
      const [first, second] = h.upstream.requests;
      expect(first?.headers.authorization).not.toBe(second?.headers.authorization);
    });
  });

  describe('user-or-client', () => {
    it('forwards the user\'s token with a session and the application\'s without one', async () => {
      const browser = h.browser();
      await browser.login();
      expect((await browser.api('/mixed/items')).status).toBe(200);
      expect((await h.browser().api('/mixed/items')).status).toBe(200);
      expect((await claimsOf(h, h.upstream.requests[0])).sub).toBe(USER.sub);
      expect(await claimsOf(h, h.upstream.requests[1])).toMatchObject({ sub: `${CLIENT_ID}@clients`, gty: 'client-credentials' });
    });

    it('never gives a user whose token cannot be renewed right now the application\'s token instead', async () => {
      const browser = h.browser();
      await browser.login();
      expect((await h.browser().api('/mixed/items')).status).toBe(200);
      h.clock.advance(61_000);
      h.auth0.admin.failTokenEndpoint({ status: 503 });
      const res = await browser.api('/mixed/items');
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ error: 'token_service_unavailable' });
      expect(h.upstream.requests).toHaveLength(1);
    });
  });

  describe('none', () => {
    it('forwards without any token, with or without a session, and drops the browser\'s credentials', async () => {
      const browser = h.browser();
      await browser.login();
      const refreshed = refreshes(h);
      const granted = clientGrants(h).ok;
      expect((await browser.api('/plain/items', { headers: { authorization: 'Bearer from-the-browser' } })).status).toBe(200);
      expect((await h.browser().api('/plain/items')).status).toBe(200);
      for (const seen of h.upstream.requests) {
        expect(seen.headers.authorization).toBeUndefined();
        expect(seen.headers.cookie).toBeUndefined();
        expect(seen.headers['x-forwarded-prefix']).toBe('/plain');
      }
      expect(refreshes(h)).toBe(refreshed);
      expect(clientGrants(h).ok).toBe(granted);
    });

    it('keeps the path checks', async () => {
      const res = await h.browser().api('/plain/a%2fb');
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: 'invalid_request' });
      expect(h.upstream.requests).toHaveLength(0);
    });
  });

  it.each(['/public', '/app', '/mixed', '/plain'])('takes no WebSocket on %s: a socket lives with the user\'s session and token, so only `user` APIs forward one', async (mount) => {
    const browser = h.browser();
    await browser.login();
    const upgrades = h.upstream.upgrades.length;
    const refused = await openSocket(browser, `${mount}/live`);
    expect(refused).toMatchObject({ kind: 'refused', status: 400 });
    expect(h.upstream.upgrades).toHaveLength(upgrades);
    const user = opened(await openSocket(browser, '/api/live'));
    user.ws.close();
    await user.closed;
  });

  it.each(['/public', '/app', '/mixed', '/plain'])('keeps the anti-forgery check on %s, with and without a session', async (mount) => {
    const browser = h.browser();
    expect((await browser.request(`${mount}/items`)).status).toBe(403);
    await browser.login();
    const res = await browser.request(`${mount}/items`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: 'csrf_required' });
    expect(h.upstream.requests).toHaveLength(0);
  });

  it('answers 500 configuration_error for an API the application is not authorised for, logs it once, asks Auth0 again only after a pause, and logs nobody out', async () => {
    const browser = h.browser();
    await browser.login();
    const before = clientGrants(h).error;
    const errorsBefore = h.logs.filter((l) => l.startsWith('error')).length;
    const logoutsBefore = h.events.filter((e) => e.name === 'logout').length;
    for (let i = 0; i < 3; i++) {
      const res = await browser.api('/denied/items');
      expect(res.status).toBe(500);
      expect(await res.json()).toMatchObject({ error: 'configuration_error' });
    }
    expect(clientGrants(h).error - before).toBe(1);
    h.clock.advance(10_001);
    expect((await browser.api('/denied/items')).status).toBe(500);
    expect(clientGrants(h).error - before).toBe(2);
    const errors = h.logs.filter((l) => l.startsWith('error')).slice(errorsBefore);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('Machine to Machine');
    expect(errors[0]).toContain(OTHER_API);
    expect(errors[0]).toContain('"status":403');
    expect(h.upstream.requests).toHaveLength(0);
    expect((await browser.user()).status).toBe(200);
    expect((await browser.api('/api/items')).status).toBe(200);
    expect(h.events.filter((e) => e.name === 'logout')).toHaveLength(logoutsBefore);
  });

  it('lets no token reach the browser or the log', async () => {
    const browser = h.browser();
    await browser.login();
    const bodies = await Promise.all(['/public/x', '/app/x', '/mixed/x', '/plain/x', '/denied/x'].map(async (path) => (await browser.api(path)).text()));
    const tokens = h.upstream.requests.flatMap((r) => (r.headers.authorization ? [(r.headers.authorization as string).slice(7)] : []));
    expect(tokens.length).toBeGreaterThan(0);
    for (const token of tokens) {
      for (const text of [...bodies, ...h.logs]) expect(text).not.toContain(token.split('.')[2]);
    }
  });
});

describe('the application\'s token across two instances sharing Redis', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: true, instances: 2, apis: MOUNTS, ...AUTHORISED });
  });
  afterAll(() => h?.close());

  it('is exchanged once per expiry for concurrent calls on both instances', async () => {
    const burst = () => Promise.all([0, 1].flatMap((instance) => Array.from({ length: 10 }, () => h.browser(instance).api('/app/items'))));
    const first = await burst();
    expect(first.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(clientGrants(h).ok).toBe(1);
    h.clock.advance(53_000);
    const second = await burst();
    expect(second.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(clientGrants(h).ok).toBe(2);
    expect(new Set(h.upstream.requests.map((r) => r.headers.authorization)).size).toBe(2);
    expect(h.events.filter((e) => e.name === 'client_token')).toHaveLength(2);
  });
});

describe('the application\'s token without Redis', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ apis: MOUNTS, ...AUTHORISED });
  });
  afterAll(() => h?.close());

  it('is kept in memory and exchanged once for concurrent calls', async () => {
    const answers = await Promise.all(Array.from({ length: 10 }, () => h.browser().api('/app/items')));
    expect(answers.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect((await h.browser().api('/mixed/items')).status).toBe(200);
    expect(clientGrants(h).ok).toBe(1);
  });
});

describe('client credentials Auth0 refuses', () => {
  it.each([
    ['a wrong client secret (401 access_denied)', { bff: { clientSecret: 'not-the-secret-of-this-application' } }, { status: 401, error: 'access_denied' }],
    ['the grant type turned off (403 unauthorized_client)', { client: { ...AUTHORISED.client, grantTypes: ['authorization_code' as const, 'refresh_token' as const] } }, { status: 403, error: 'unauthorized_client' }],
  ])('answer 500 configuration_error for %s', async (_name, options, refusal) => {
    const h = await startHarness({ apis: MOUNTS, ...AUTHORISED, ...options });
    try {
      const res = await h.browser().api('/app/items');
      expect(res.status).toBe(500);
      expect(await res.json()).toMatchObject({ error: 'configuration_error' });
      expect(h.upstream.requests).toHaveLength(0);
      expect(h.logs.filter((l) => l.startsWith('error'))).toHaveLength(1);
      expect(h.events.find((e) => e.name === 'client_token_failed')?.payload).toEqual({ audience: 'https://api.example.test', kind: 'configuration', ...refusal });
    } finally {
      await h.close();
    }
  });
});

describe('token policies while Redis is down', () => {
  const setup = behindRelay({ apis: MOUNTS, ...AUTHORISED });

  it('answers a call with a session cookie 503, never as anonymous, and serves what needs no store', async () => {
    const { h, relay } = setup;
    const browser = h.browser();
    await browser.login();
    expect((await h.browser().api('/app/items')).status).toBe(200);
    relay.down();
    const client = h.redis as unknown as { isReady: boolean };
    await waitFor(() => !client.isReady, 'the client notices the outage');
    h.upstream.requests.length = 0;

    const personal = await browser.api('/public/items');
    expect(personal.status).toBe(503);
    expect(await personal.json()).toMatchObject({ error: 'session_store_unavailable' });
    expect((await browser.api('/mixed/items')).status).toBe(503);
    expect(h.upstream.requests).toHaveLength(0);
    // No cookie, the application's token still fresh in the process, no token at all: no store needed.
    expect((await h.browser().api('/public/items')).status).toBe(200);
    expect((await h.browser().api('/app/items')).status).toBe(200);
    expect((await browser.api('/plain/items')).status).toBe(200);
    expect(h.upstream.requests).toHaveLength(3);

    relay.up();
    await waitFor(() => client.isReady, 'the client reconnects', 10_000);
    expect((await browser.api('/public/items')).status).toBe(200);
    expect((await claimsOf(h, h.upstream.requests.at(-1))).sub).toBe(USER.sub);
  });
});

describe('the application\'s token with DPoP', () => {
  let h: Harness;
  let api: ExampleApi;
  beforeAll(async () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }) as JsonWebKey;
    h = await startHarness({
      redis: true,
      ...AUTHORISED,
      bff: { dpop: { key } },
      auth0: { dpop: { requireNonce: true } },
      apis: async (_upstreamUrl, auth0) => {
        api = await startExampleApi({ issuer: auth0.issuer, audience: 'https://api.example.test', dpop: { nonces: true } });
        return [{ mount: '/app', upstream: api.url, token: 'client' }];
      },
    });
  });
  afterAll(async () => {
    await h?.close();
    await api?.close();
  });

  it('is bound to the BFF\'s key, and each call proves it to an API that takes only DPoP', async () => {
    const answers = await Promise.all([h.browser().api('/app/data'), h.browser().api('/app/data')]);
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    expect(await answers[0]!.json()).toMatchObject({ sub: `${CLIENT_ID}@clients` });
    expect(clientGrants(h).ok).toBe(1);
  });
});

describe('the application\'s token of two applications sharing one Redis and prefix', () => {
  const OTHER_APP = 'second-app';
  const OTHER_SECRET = 'second-app-secret-for-tests-only-123';
  let h: Harness;
  let other: Bff;
  let otherUrl: string;
  let server: Server | undefined;
  beforeAll(async () => {
    h = await startHarness({
      redis: true,
      apis: (upstream) => [{ mount: '/app', upstream, token: 'client' as const }],
      auth0: {
        clients: [
          { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: ['http://127.0.0.1/cb'], clientGrants: [{ audience: AUDIENCE }] },
          { clientId: OTHER_APP, clientSecret: OTHER_SECRET, redirectUris: ['http://127.0.0.1/cb'], clientGrants: [{ audience: AUDIENCE }] },
        ],
      },
    });
    server = createServer();
    await listen(server);
    otherUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    other = createBff({
      issuer: h.auth0.issuer, clientId: OTHER_APP, clientSecret: OTHER_SECRET, audience: AUDIENCE, baseURL: otherUrl,
      session: { secrets: [SESSION_SECRET] }, apis: [{ mount: '/app', upstream: h.upstream.url, token: 'client' }],
      redis: h.redis, redisPrefix: h.prefix, clock: h.clock.now, logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    server.on('request', express().use(other));
    await other.ready();
  });
  afterAll(async () => {
    await other?.close();
    if (server) await closeServer(server);
    await h?.close();
  });

  it('gives each application\'s API calls its own token, stored under a key that names neither Client ID', async () => {
    expect((await h.browser().api('/app/items')).status).toBe(200);
    expect((await fetch(`${otherUrl}/app/items`, { headers: { 'x-csrf': '1' } })).status).toBe(200);
    const azps = await Promise.all(h.upstream.requests.map(async (seen) => (await claimsOf(h, seen)).azp));
    expect(azps).toEqual([CLIENT_ID, OTHER_APP]);
    const keys = await scanKeys(h.redis!, `${h.prefix}ctok:*`);
    expect(keys).toHaveLength(2);
    for (const key of keys) {
      expect(key.slice(h.prefix.length)).toMatch(/^ctok:[\w-]{16}:https:\/\/api\.example\.test$/);
      expect(key).not.toContain(CLIENT_ID);
      expect(key).not.toContain(OTHER_APP);
    }
  });
});
