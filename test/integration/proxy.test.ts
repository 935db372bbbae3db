import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import express from 'express';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AUDIENCE, startHarness, TOKEN_SHAPED, USER, waitFor, type Browser, type Harness } from '../support/harness.js';

const refreshCount = (h: Harness) => h.auth0.admin.counts().token.refresh_token?.ok ?? 0;

describe('the API proxy with transparent ORT exchange', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: true, auth0: { accessTokenTtl: 60 } });
  });
  afterAll(() => h?.close());
  beforeEach(() => {
    h.upstream.handler = undefined;
    h.upstream.requests.length = 0;
    h.auth0.admin.reset();
  });

  it('forwards any method, path, query and body with a valid JWT for the API and no browser cookie', async () => {
    const browser = h.browser();
    await browser.login();
    const res = await browser.api('/api/items/7?limit=5&q=a%20b', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer from-the-browser', 'x-custom': 'kept' },
      body: JSON.stringify({ hello: 'world' }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ method: 'POST', url: '/items/7?limit=5&q=a%20b', body: '{"hello":"world"}' });

    const [seen] = h.upstream.requests;
    expect(seen?.headers.cookie).toBeUndefined();
    expect(seen?.headers['x-custom']).toBe('kept');
    expect(seen?.headers['x-forwarded-host']).toBe(new URL(browser.url).host);
    expect(seen?.headers['x-forwarded-proto']).toBe('http');
    expect(seen?.headers.host).toBe(new URL(h.upstream.url).host);
    const token = (seen?.headers.authorization as string).replace(/^Bearer /, '');
    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(`${h.auth0.issuer}.well-known/jwks.json`)), { issuer: h.auth0.issuer, audience: AUDIENCE });
    expect(payload.sub).toBe(USER.sub);
  });

  it('refuses a call without the anti-forgery header before anything else, and never calls the upstream', async () => {
    const anonymous = await h.browser().request('/api/items');
    expect(anonymous.status).toBe(403);
    expect(await anonymous.json()).toMatchObject({ error: 'csrf_required' });
    const browser = h.browser();
    await browser.login();
    const wrongValue = await browser.request('/api/items', { headers: { 'x-csrf': '0' } });
    expect(wrongValue.status).toBe(403);
    expect(h.upstream.requests).toHaveLength(0);
  });

  it('answers 401 login_required as JSON without a session, never a redirect', async () => {
    const res = await h.browser().api('/api/items');
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toMatch(/json/);
    expect(await res.json()).toMatchObject({ error: 'login_required' });
  });

  it('never lets a dot segment climb out of the API mount (Express resolves it to another path first)', async () => {
    const browser = h.browser();
    await browser.login();
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${browser.url}/api/../admin`, { headers: { cookie: browser.jar.header(browser.url), 'x-csrf': '1' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    // Express serves it as /admin: the app's own 404 here, and never the upstream.
    expect(status).toBe(404);
    expect(h.upstream.requests).toHaveLength(0);
  });

  it.each(['/api/a%2fb', '/api/a%5cb', '/api//evil.example/x', '/api/x%0d%0aX-Injected:%201'])(
    'refuses the path %s with 400 and does not call the upstream',
    async (path) => {
      const browser = h.browser();
      await browser.login();
      const res = await browser.api(path);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: 'invalid_request' });
      expect(h.upstream.requests).toHaveLength(0);
    },
  );

  it('exchanges once when twenty requests arrive with an expired token, and answers all of them', async () => {
    const browser = h.browser();
    await browser.login();
    h.clock.advance(61_000);
    const before = refreshCount(h);
    const answers = await Promise.all(Array.from({ length: 20 }, () => browser.api('/api/items')));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(refreshCount(h) - before).toBe(1);
    const tokens = new Set(h.upstream.requests.map((r) => r.headers.authorization));
    expect(tokens.size).toBe(1);
  });

  it('keeps using a fresh token without exchanging', async () => {
    const browser = h.browser();
    await browser.login();
    const before = refreshCount(h);
    for (let i = 0; i < 5; i++) expect((await browser.api('/api/items')).status).toBe(200);
    expect(refreshCount(h)).toBe(before);
  });

  it('does not exchange again for a slow request that started before an exchange and ends after it', async () => {
    const browser = h.browser();
    await browser.login();
    let releaseSlow!: () => void;
    const slowStarted = new Promise<void>((resolve) => {
      h.upstream.handler = (req, res) => {
        if (req.url === '/slow') {
          resolve();
          releaseSlow = () => res.end('{"slow":true}');
          return;
        }
        res.end('{}');
      };
    });
    const slow = browser.api('/api/slow');
    await slowStarted;
    h.clock.advance(61_000);
    const before = refreshCount(h);
    expect((await browser.api('/api/fast')).status).toBe(200);
    expect(refreshCount(h) - before).toBe(1);
    releaseSlow();
    expect((await slow).status).toBe(200);
    expect((await browser.api('/api/fast')).status).toBe(200);
    expect(refreshCount(h) - before).toBe(1);
  });

  it('ends the BFF session when the Auth0 session ended elsewhere: 401 session_ended and its keys gone from Redis', async () => {
    const browser = h.browser();
    await browser.login();
    const keysBefore = await h.redisKeys();
    const { body } = await browser.user();
    expect(body.user.sub).toBe(USER.sub);
    await h.auth0.admin.endSession({ sub: USER.sub }, { backchannel: false });
    h.clock.advance(61_000);
    const res = await browser.api('/api/items');
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'session_ended' });
    expect((await browser.user()).status).toBe(401);
    const keysAfter = await h.redisKeys();
    const sessionKeys = keysBefore.filter((k) => /:(tok|sess):/.test(k) && !keysAfter.includes(k));
    expect(sessionKeys.length).toBeGreaterThanOrEqual(2);
    expect(h.events.some((e) => e.name === 'logout' && (e.payload as { reason: string }).reason === 'session_ended')).toBe(true);
  });

  it.each([
    ['503', { status: 503 } as const],
    ['429 with Retry-After', { status: 429, retryAfter: 1 } as const],
    ['a slow token endpoint', { delayMs: 3_000 } as const],
  ])('answers 503 token_service_unavailable for %s, keeps the session, and recovers', async (_name, mode) => {
    const browser = h.browser();
    await browser.login();
    h.clock.advance(61_000);
    h.auth0.admin.failTokenEndpoint(mode);
    const res = await browser.api('/api/items');
    expect(res.status).toBe(503);
    const retryAfter = Number(res.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(await res.json()).toMatchObject({ error: 'token_service_unavailable' });
    expect(h.upstream.requests).toHaveLength(0);
    expect(h.logs).toContainEqual(expect.stringMatching(/^warn Auth0 failed a token exchange; retrying .*"audience":"https:\/\/api\.example\.test","sessionRef":"[\w-]{10}"/));
    expect((await browser.user()).status).toBe(200);
    h.auth0.admin.reset();
    // Auth0 is asked again once the wait it asked for is over.
    h.clock.advance(retryAfter * 1_000);
    expect((await browser.api('/api/items')).status).toBe(200);
  });

  it('serves calls with the token at hand while Auth0 is rate-limited, and asks it again only after its Retry-After', async () => {
    const browser = h.browser();
    await browser.login();
    expect((await browser.api('/api/items')).status).toBe(200);
    const first = h.upstream.requests.at(-1)?.headers.authorization;
    // The emulator's tokens last 60 s: past the refresh point (52 s), with more than half the refresh margin (6 s)
    // left (until 55 s).
    h.clock.advance(52_500);
    h.auth0.admin.failTokenEndpoint({ status: 429, retryAfter: 30 });
    h.auth0.admin.resetCounts();
    for (let i = 0; i < 3; i++) expect((await browser.api('/api/items')).status).toBe(200);
    expect(h.upstream.requests.slice(-3).map((r) => r.headers.authorization)).toEqual([first, first, first]);
    // One token request: the calls after the first wait as Auth0 asked.
    expect(h.auth0.admin.counts().token.refresh_token?.error).toBe(1);

    // Half the margin gone: a 503 at once, with the seconds left, and Auth0 is not asked.
    h.clock.advance(5_000);
    const waiting = await browser.api('/api/items');
    expect(waiting.status).toBe(503);
    expect(Number(waiting.headers.get('retry-after'))).toBeGreaterThan(20);
    expect(Number(waiting.headers.get('retry-after'))).toBeLessThanOrEqual(30);
    expect(h.auth0.admin.counts().token.refresh_token?.error).toBe(1);

    h.auth0.admin.reset();
    h.clock.advance(30_000);
    expect((await browser.api('/api/items')).status).toBe(200);
    expect(h.upstream.requests.at(-1)?.headers.authorization).not.toBe(first);
    expect((await browser.user()).status).toBe(200);
  });

  it('answers 503 at once when the API rejects the token at hand while Auth0 asked to wait: a forced renewal waits too', async () => {
    const browser = h.browser();
    await browser.login();
    expect((await browser.api('/api/items')).status).toBe(200);
    h.clock.advance(52_500);
    h.auth0.admin.failTokenEndpoint({ status: 429, retryAfter: 30 });
    expect((await browser.api('/api/items')).status).toBe(200);
    // The API's clock runs ahead: it calls the token expired.
    h.upstream.handler = (_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token", error_description="expired"' });
      res.end();
    };
    const res = await browser.api('/api/items', { signal: AbortSignal.timeout(10_000) });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: 'token_service_unavailable' });
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('renews the token once and replays a GET when the upstream says invalid_token', async () => {
    const browser = h.browser();
    await browser.login();
    let calls = 0;
    h.upstream.handler = (_req, res) => {
      calls++;
      if (calls === 1) {
        res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token", error_description="revoked"' });
        return void res.end();
      }
      res.end('{"second":true}');
    };
    const before = refreshCount(h);
    const res = await browser.api('/api/items');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ second: true });
    expect(refreshCount(h) - before).toBe(1);
    const [first, second] = h.upstream.requests;
    expect(first?.headers.authorization).not.toBe(second?.headers.authorization);
  });

  it('forces at most one exchange when the upstream keeps rejecting the token', async () => {
    const browser = h.browser();
    await browser.login();
    h.upstream.handler = (_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' });
      res.end();
    };
    const before = refreshCount(h);
    for (let i = 0; i < 5; i++) expect((await browser.api('/api/items')).status).toBe(401);
    expect(refreshCount(h) - before).toBe(1);
  });

  it('passes interim 1xx answers over and forwards the final one', async () => {
    const browser = h.browser();
    await browser.login();
    h.upstream.handler = (_req, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      res.setHeader('content-type', 'application/json');
      res.end('{"final":true}');
    };
    const res = await browser.api('/api/items');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ final: true });
  });

  it('forwards a query on the mount itself, and drops headers that could rewrite the path or fake the client', async () => {
    const browser = h.browser();
    await browser.login();
    const res = await browser.api('/api?x=1', { headers: { 'x-original-url': '/admin', 'x-http-method-override': 'DELETE', 'x-real-ip': '1.2.3.4' } });
    expect(res.status).toBe(200);
    const [seen] = h.upstream.requests;
    expect(seen?.url).toBe('/?x=1');
    expect(seen?.headers['x-original-url']).toBeUndefined();
    expect(seen?.headers['x-http-method-override']).toBeUndefined();
    expect(seen?.headers['x-real-ip']).toBeUndefined();
  });

  it('forwards a backslash in the query as the browser sends it (unencoded), and still refuses one in the path', async () => {
    const browser = h.browser();
    await browser.login();
    const res = await browser.api('/api/search?path=C:\\Users\\me');
    expect(res.status).toBe(200);
    expect(h.upstream.requests.at(-1)?.url).toBe('/search?path=C:\\Users\\me');
    const before = h.upstream.requests.length;
    const refused = await browser.api('/api/a%5Cb');
    expect(refused.status).toBe(400);
    expect(h.upstream.requests).toHaveLength(before);
  });

  it('drops every header other proxies and CDNs put the client\'s address or scheme in: the API sees only the BFF\'s X-Forwarded-*', async () => {
    const browser = h.browser();
    await browser.login();
    const forged = {
      'x-client-ip': '6.6.6.1', 'client-ip': '6.6.6.2', 'true-client-ip': '6.6.6.3', 'cf-connecting-ip': '6.6.6.4',
      'fastly-client-ip': '6.6.6.5', 'x-cluster-client-ip': '6.6.6.6', 'x-forwarded': 'for=6.6.6.7', 'forwarded-for': '6.6.6.8',
      'x-original-forwarded-for': '6.6.6.9', 'x-forwarded-ssl': 'on', 'x-forwarded-scheme': 'https', 'x-url-scheme': 'https', 'front-end-https': 'on',
    };
    expect((await browser.api('/api/items', { headers: forged })).status).toBe(200);
    const seen = h.upstream.requests.at(-1)?.headers ?? {};
    expect(Object.keys(seen).filter((name) => name in forged)).toEqual([]);
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('http');
  });

  it('keeps the API\'s reason phrase, and Node\'s own where the API\'s cannot be written', async () => {
    const browser = h.browser();
    await browser.login();
    let reason = 'Validation Failed';
    h.upstream.handler = (_req, res) => {
      res.writeHead(422, reason, { 'content-type': 'application/json' });
      res.end('{}');
    };
    expect((await browser.api('/api/items')).statusText).toBe('Validation Failed');
    reason = 'Unprocessable Entity';
    expect((await browser.api('/api/items')).statusText).toBe('Unprocessable Entity');
    h.upstream.handler = (_req, res) => {
      res.writeHead(299, 'Custom Thing', { 'content-type': 'application/json' });
      res.end('{}');
    };
    const custom = await browser.api('/api/items');
    expect([custom.status, custom.statusText]).toEqual([299, 'Custom Thing']);
  });

  it('drops the browser\'s W3C baggage, which services behind the API would read as the BFF\'s context', async () => {
    const browser = h.browser();
    await browser.login();
    expect((await browser.api('/api/items', { headers: { baggage: 'tenant=admin,user.role=superuser' } })).status).toBe(200);
    expect(h.upstream.requests.at(-1)?.headers.baggage).toBeUndefined();
  });

  it('passes no cookie an upstream sets on to the browser, nor an order to clear them: the cookies on the BFF\'s origin are the BFF\'s', async () => {
    const browser = h.browser();
    await browser.login();
    h.upstream.handler = (_req, res) => {
      res.setHeader('set-cookie', ['bff=; Max-Age=0; Path=/', 'bff.tx=x; Path=/', 'tracking=1; Path=/']);
      res.setHeader('clear-site-data', '"cookies", "storage"');
      res.setHeader('content-type', 'application/json');
      res.end('{}');
    };
    const res = await browser.api('/api/items');
    expect(res.status).toBe(200);
    expect(res.headers.getSetCookie()).toEqual([]);
    expect(res.headers.get('clear-site-data')).toBeNull();
    // The session cookie was not cleared (or replaced): the user is still logged in.
    expect((await browser.user()).status).toBe(200);
  });

  it('passes the 401 on for a request with a body, without replaying it', async () => {
    const browser = h.browser();
    await browser.login();
    h.upstream.handler = (_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"', 'content-type': 'application/json' });
      res.end('{"error":"invalid_token"}');
    };
    const res = await browser.api('/api/items', { method: 'POST', body: 'x' });
    expect(res.status).toBe(401);
    expect(h.upstream.requests).toHaveLength(1);
  });

  it('breaks the browser\'s answer off when the upstream breaks off mid-response', async () => {
    const browser = h.browser();
    await browser.login();
    h.upstream.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('{"partial":');
      setTimeout(() => res.socket?.destroy(), 20);
    };
    const before = h.events.length;
    const res = await browser.api('/api/items');
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
    // The answer had begun: the operator still hears of it.
    await waitFor(() => h.events.slice(before).some((e) => e.name === 'upstream_failed'), 'the broken answer is reported');
    expect(h.events.slice(before).find((e) => e.name === 'upstream_failed')?.payload).toMatchObject({ api: '/api', error: 'upstream_unavailable', broken: true, sessionRef: expect.any(String) });
  });

  it('tells an app who is logged in through getUser, without exchanging', async () => {
    const browser = h.browser();
    await browser.login();
    h.clock.advance(61_000);
    const before = refreshCount(h);
    const user = await h.bffs[0]!.getUser({ headers: { cookie: browser.jar.header(browser.url) } } as never);
    expect(user?.user).toMatchObject({ sub: USER.sub, email: USER.email });
    expect(JSON.stringify(user)).not.toMatch(TOKEN_SHAPED);
    expect(refreshCount(h)).toBe(before);
    expect(await h.bffs[0]!.getUser({ headers: {} } as never)).toBeUndefined();
  });

  it('lets an app get the access token itself through getAccessToken', async () => {
    const browser = h.browser();
    await browser.login();
    const cookie = browser.jar.header(browser.url);
    const token = await h.bffs[0]!.getAccessToken({ headers: { cookie } } as never);
    expect(token.split('.')).toHaveLength(3);
    await expect(h.bffs[0]!.getAccessToken({ headers: {} } as never)).rejects.toMatchObject({ code: 'login_required', status: 401 });
  });

  it('refuses a token of another scope for the proxied API\'s audience, which would replace the token the proxy sends', async () => {
    const browser = h.browser();
    await browser.login();
    const req = { headers: { cookie: browser.jar.header(browser.url) } } as never;
    h.clock.advance(61_000);
    const before = refreshCount(h);
    await expect(h.bffs[0]!.getAccessToken(req, { scope: 'openid' })).rejects.toMatchObject({ code: 'configuration_error', status: 500 });
    expect(refreshCount(h)).toBe(before);
    // The proxy's token for the audience is unchanged: its call renews it with the API's own scope, as always.
    expect((await browser.api('/api/items')).status).toBe(200);
    expect(await h.bffs[0]!.getAccessToken(req)).toBe(h.upstream.requests.at(-1)?.headers.authorization?.replace(/^Bearer /, ''));
  });
});

describe('upstream faults', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      redis: true,
      apis: (upstream) => [
        { mount: '/api', upstream: 'http://127.0.0.1:9' },
        { mount: '/slow', upstream, timeout: 300 },
        // Declared after the mount it is nested in.
        { mount: '/api/nested', upstream },
      ],
    });
  });
  afterAll(() => h?.close());

  it('sends a call under a nested mount to that mount\'s API, not to the one it is nested in', async () => {
    const browser = h.browser();
    await browser.login();
    h.upstream.requests.length = 0;
    expect((await browser.api('/api/nested/items?page=2')).status).toBe(200);
    expect(h.upstream.requests.map((r) => r.url)).toEqual(['/items?page=2']);
    expect((await browser.api('/api/items')).status).toBe(502);
  });

  it('answers 504 upstream_timeout when the upstream does not answer in time, and keeps the session', async () => {
    const browser = h.browser();
    await browser.login();
    h.upstream.handler = () => {};
    const res = await browser.api('/slow/items');
    expect(res.status).toBe(504);
    expect(await res.json()).toMatchObject({ error: 'upstream_timeout' });
    expect((await browser.user()).status).toBe(200);
  });

  it('answers 502 upstream_unavailable when the upstream cannot be reached', async () => {
    const browser = h.browser();
    await browser.login();
    const res = await browser.api('/api/items');
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ error: 'upstream_unavailable' });
    expect((await browser.user()).status).toBe(200);
  });
});

describe('an API call whose target is in absolute form (RFC 9112 3.2.2)', () => {
  let h: Harness;
  let browser: Browser;
  beforeAll(async () => {
    h = await startHarness({ app: (bff) => express().use(bff).use((_req, res) => void res.status(404).send('the app')) });
    browser = h.browser();
    await browser.login();
  });
  afterAll(() => h?.close());

  /** The request with its target as written: `http://host/api/...`, which fetch never sends. */
  const absolute = (path: string, headers: Record<string, string>) => new Promise<{ status: number; body: string }>((resolve, reject) => {
    const { hostname, port } = new URL(browser.url);
    const cookie = browser.jar.header(browser.url) ?? '';
    request({ hostname, port, path: `${browser.url}${path}`, headers: { cookie, ...headers }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject).end();
  });

  it('is proxied as its path is, as Express routes such a request: same checks, same upstream request', async () => {
    const answer = await absolute('/api/items/7?limit=5', { 'x-csrf': '1' });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ method: 'GET', url: '/items/7?limit=5' });
    expect(h.upstream.requests.at(-1)?.headers.authorization).toMatch(/^Bearer /);
  });

  it('still needs the anti-forgery header, and still goes to the app when no API is there', async () => {
    const calls = h.upstream.requests.length;
    const refused = await absolute('/api/items', {});
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body)).toMatchObject({ error: 'csrf_required' });
    expect(await absolute('/apix/items', { 'x-csrf': '1' })).toEqual({ status: 404, body: 'the app' });
    expect(h.upstream.requests.length).toBe(calls);
  });
});

describe('X-Forwarded-For', () => {
  const forwardedFor = async (trustProxy: boolean) => {
    const h = await startHarness({ app: (bff) => express().set('trust proxy', trustProxy ? 'loopback' : false).use(bff) });
    try {
      const browser = h.browser();
      await browser.login();
      expect((await browser.api('/api/items', { headers: { 'x-forwarded-for': '203.0.113.7' } })).status).toBe(200);
      return h.upstream.requests.at(-1)?.headers['x-forwarded-for'];
    } finally {
      await h.close();
    }
  };

  it('names the connecting address, never what the browser claims, unless the app trusts its proxy', async () => {
    expect(await forwardedFor(false)).toMatch(/^(::ffff:)?127\.0\.0\.1$/);
    // Behind a trusted load balancer (Express's "trust proxy"), the client it reports.
    expect(await forwardedFor(true)).toBe('203.0.113.7');
  });
});

describe('streaming through the API proxy', () => {
  let h: Harness;
  let browser: Browser;
  beforeAll(async () => {
    h = await startHarness({ redis: true });
    browser = h.browser();
    await browser.login();
  });
  afterAll(() => h?.close());
  beforeEach(() => {
    h.upstream.handler = undefined;
    h.upstream.requests.length = 0;
    h.logs.length = 0;
  });

  // 4 MiB: far more than any socket buffer, so the answer crosses the proxy in many pieces, with backpressure.
  const big = Buffer.alloc(4 * 1024 * 1024, 'abcdefghijklmnopqrstuvwxyz0123456789');
  const digest = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

  it.each([
    ['with a Content-Length', true],
    ['chunked', false],
  ])('passes a large answer on whole, %s', async (_name, withLength) => {
    h.upstream.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', ...(withLength ? { 'content-length': String(big.length) } : {}) });
      let offset = 0;
      const pump = (): void => {
        while (offset < big.length) {
          const piece = big.subarray(offset, (offset += 64 * 1024));
          if (!res.write(piece)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    };
    const res = await browser.api('/api/big');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(withLength ? String(big.length) : null);
    expect(digest(new Uint8Array(await res.arrayBuffer()))).toBe(digest(big));
  });

  it('passes a large upload on whole', async () => {
    const upload = big.subarray(0, 2 * 1024 * 1024);
    const res = await browser.api('/api/upload', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: upload });
    expect(res.status).toBe(200);
    expect(h.upstream.requests.at(-1)?.body).toBe(upload.toString());
  });

  it('delivers each piece of an open-ended answer as it comes, and ends the upstream answer when the browser goes away', async () => {
    let upstreamClosed = false;
    h.upstream.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      let n = 0;
      res.write(`data: ${n++}\n\n`);
      const timer = setInterval(() => res.write(`data: ${n++}\n\n`), 50);
      res.on('close', () => {
        upstreamClosed = true;
        clearInterval(timer);
      });
    };
    const controller = new AbortController();
    const res = await browser.api('/api/events', { signal: controller.signal });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    // The first event arrives while the upstream keeps the answer open: nothing waits for the rest.
    expect(new TextDecoder().decode((await reader.read()).value)).toContain('data: 0');
    controller.abort();
    await waitFor(() => upstreamClosed, 'the upstream answer ends');
    // The session and the connection pool go on serving (with an upstream that answers and ends).
    h.upstream.handler = undefined;
    expect((await browser.api('/api/items')).status).toBe(200);
    expect(h.logs).toEqual([]);
  });

  it('ends the upstream request when the browser goes away before the answer', async () => {
    let upstreamClosed = false;
    let arrived!: () => void;
    const reached = new Promise<void>((resolve) => (arrived = resolve));
    h.upstream.handler = (_req, res) => {
      res.on('close', () => (upstreamClosed = true));
      arrived(); // and never answers
    };
    const controller = new AbortController();
    const call = browser.api('/api/slow', { signal: controller.signal }).catch((error: unknown) => error);
    await reached;
    controller.abort();
    expect(await call).toBeInstanceOf(Error);
    await waitFor(() => upstreamClosed, 'the upstream request ends');
    h.upstream.handler = undefined;
    expect((await browser.api('/api/items')).status).toBe(200);
    // A browser that leaves is an everyday event, not a failure to alert on.
    expect(h.logs).toEqual([]);
  });
});
