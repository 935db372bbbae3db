import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ExampleConfigError, readConfig } from '../../example/config.js';
import { chooseClientAuthMethod, startExample, type ExampleLogger, type RunningExample } from '../../example/server.js';
import { CookieJar, scriptedLogin, startLocalAuth0, type LocalAuth0 } from '../../src/local-auth0/index.js';
import { TOKEN_SHAPED } from '../support/harness.js';
import { runProbe } from '../support/run-probe.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const SESSION_SECRET = 'example-test-session-secret-0123456789';

/** Collects what the example logs, instead of printing it. */
function quietLogger(): ExampleLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => void lines.push(`info ${m}`),
    warn: (m) => void lines.push(`warn ${m}`),
    error: (m) => void lines.push(`error ${m}`),
  };
}

/** A scripted browser: one cookie jar, redirects never followed by itself. */
class Client {
  readonly jar = new CookieJar();

  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    const cookie = this.jar.header(url);
    if (cookie) headers.set('cookie', cookie);
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.jar.setFrom(url, res);
    return res;
  }

  /**
   * Logs in through `origin` (an instance of the example) and the emulator's form. The emulator sends the browser
   * to BASE_URL/auth/callback; the callback is delivered to `origin`, as a load balancer in front of it would.
   */
  async login(origin: string, baseURL: string, credentials: { username: string; password: string }): Promise<Response> {
    const start = await this.request(`${origin}/auth/login?returnTo=${encodeURIComponent('/?from=login')}`);
    expect(start.status).toBe(302);
    const { callbackUrl } = await scriptedLogin(start.headers.get('location') as string, credentials, {
      jar: this.jar,
      stopAt: `${baseURL}/auth/callback`,
    });
    const callback = new URL(callbackUrl);
    return this.request(`${origin}${callback.pathname}${callback.search}`);
  }
}

describe('the example configuration, read from the environment', () => {
  it('runs the demo when no issuer is set, generating a session secret and saying so', () => {
    const config = readConfig({});
    expect(config.mode).toBe('demo');
    expect(config.port).toBe(3000);
    expect(config.baseURL).toBeUndefined();
    expect(config.audience).toBe('https://api.example.test');
    expect(config.sessionSecret.length).toBeGreaterThanOrEqual(32);
    expect(config.notices.join(' ')).toMatch(/SESSION_SECRET is not set/);
  });

  it('reads a real tenant\'s settings, and accepts AUTH0_DOMAIN as shorthand for the issuer', () => {
    const config = readConfig({
      AUTH0_DOMAIN: 'tenant.us.auth0.com', CLIENT_ID: 'id', CLIENT_SECRET: 'secret', AUDIENCE: 'https://api.example.com',
      SESSION_SECRET, PORT: '8080', BASE_URL: 'https://app.example.com/', REDIS_URL: 'redis://127.0.0.1:6379/2',
    });
    expect(config).toMatchObject({
      mode: 'auth0', issuer: 'https://tenant.us.auth0.com/', clientId: 'id', clientSecret: 'secret', port: 8080,
      baseURL: 'https://app.example.com', redisUrl: 'redis://127.0.0.1:6379/2', sessionSecret: SESSION_SECRET,
    });
  });

  it('takes any API identifier as AUDIENCE, as Auth0 does, not only a URL', () => {
    const config = readConfig({ AUTH0_DOMAIN: 'tenant.us.auth0.com', CLIENT_ID: 'id', CLIENT_SECRET: 's', AUDIENCE: 'my-api', SESSION_SECRET });
    expect(config.audience).toBe('my-api');
  });

  it('adds the trailing slash Auth0 issuers have', () => {
    const config = readConfig({ ISSUER_URL: 'http://127.0.0.1:4000', CLIENT_ID: 'id', CLIENT_SECRET: 's', AUDIENCE: 'urn:api', SESSION_SECRET });
    expect(config.mode === 'auth0' && config.issuer).toBe('http://127.0.0.1:4000/');
  });

  it('refuses a plain-http issuer that is not on loopback', () => {
    expect(() => readConfig({ ISSUER_URL: 'http://tenant.example.com/', CLIENT_ID: 'id', CLIENT_SECRET: 's', AUDIENCE: 'urn:api', SESSION_SECRET }))
      .toThrow(/ISSUER_URL must use https/);
  });

  it('names every missing setting at once when an issuer is set', () => {
    let error: unknown;
    try {
      readConfig({ ISSUER_URL: 'https://tenant.us.auth0.com/' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ExampleConfigError);
    const problems = (error as ExampleConfigError).problems.join('\n');
    for (const name of ['CLIENT_ID', 'CLIENT_SECRET', 'AUDIENCE', 'SESSION_SECRET']) expect(problems).toMatch(new RegExp(`^${name} is required with ISSUER_URL`, 'm'));
  });

  it('names the variable the user set, AUTH0_DOMAIN, in what is missing with it', () => {
    const error = (() => {
      try {
        return readConfig({ AUTH0_DOMAIN: 'tenant.us.auth0.com' });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ExampleConfigError);
    const problems = (error as ExampleConfigError).problems.join('\n');
    expect(problems).toMatch(/^CLIENT_ID is required with AUTH0_DOMAIN/m);
    expect(problems).not.toContain('ISSUER_URL');
  });

  it.each([
    [{ PORT: 'http' }, /PORT must be a port number/],
    [{ PORT: '70000' }, /PORT must be a port number/],
    [{ BASE_URL: 'https://app.example.com/app' }, /BASE_URL must be an origin/],
    [{ BASE_URL: 'http://app.example.com' }, /BASE_URL must use https/],
    [{ SESSION_SECRET: 'too-short' }, /SESSION_SECRET must be at least 32 characters long \(it has 9\)/],
    [{ REDIS_URL: 'http://user:hunter2@127.0.0.1:6379' }, /REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/],
    [{ UPSTREAM_API_URL: 'not a url' }, /UPSTREAM_API_URL must be an absolute URL/],
    [{ ISSUER_URL: 'https://a.example.com/', AUTH0_DOMAIN: 'a.example.com' }, /ISSUER_URL and AUTH0_DOMAIN are both set/],
    [{ AUTH0_DOMAIN: 'https://tenant.us.auth0.com/' }, /AUTH0_DOMAIN must be a host name/],
    [{ AUTH0_DOMAIN: 'tenant.us.auth0.com:99999' }, /AUTH0_DOMAIN must be a host name/],
    [{ ISSUER_URL: 'https://tenant.us.auth0.com/?x=1' }, /ISSUER_URL must be the issuer itself/],
    [{ ISSUER_URL: 'https://tenant.us.auth0.com/.well-known/openid-configuration' }, /ISSUER_URL must be the issuer itself/],
    [{ UPSTREAM_API_URL: 'https://api.example.com/v1?key=1' }, /UPSTREAM_API_URL must not have a query/],
    [{ REDIS_PREFIX: '{app}:' }, /REDIS_PREFIX must not contain "\{" or "\}"/],
  ])('refuses %j', (env, message) => {
    expect(() => readConfig(env)).toThrow(message);
  });

  it('never prints the password of a Redis URL it refuses', () => {
    expect(() => readConfig({ REDIS_URL: 'http://user:hunter2@127.0.0.1:6379' })).toThrow(expect.objectContaining({ message: expect.not.stringContaining('hunter2') }));
  });

  it('authenticates with client_secret_post when the issuer offers it, else client_secret_basic', () => {
    expect(chooseClientAuthMethod({ token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'] })).toBe('client_secret_post');
    expect(chooseClientAuthMethod({ token_endpoint_auth_methods_supported: ['client_secret_basic'] })).toBe('client_secret_basic');
    expect(chooseClientAuthMethod({})).toBe('client_secret_basic');
  });
});

describe('the example in demo mode (no Auth0 tenant)', () => {
  let example: RunningExample;
  let auth0: LocalAuth0;
  const logger = quietLogger();
  beforeAll(async () => {
    example = await startExample(readConfig({ PORT: '0' }), { logger });
    auth0 = example.auth0 as LocalAuth0;
  });
  afterAll(() => example?.close());

  it('starts the emulator, the example API and the BFF, and is healthy', async () => {
    expect(auth0.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(example.demoLogin).toEqual({ username: 'demo', password: 'demo-password' });
    const res = await fetch(`${example.url}/healthz`);
    expect(res.status).toBe(200);
  });

  it('serves the page, which may only run its own script', async () => {
    const res = await fetch(`${example.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    expect(await res.text()).toMatch(/<script type="module" src="\/app\.js">/);
  });

  it('sends the browser to the emulator to log in, with PKCE, online_access and the API audience', async () => {
    const res = await fetch(`${example.url}/auth/login?returnTo=/`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get('location') as string);
    expect(location.href.startsWith(`${auth0.issuer}authorize`)).toBe(true);
    expect(location.searchParams.get('code_challenge_method')).toBe('S256');
    expect(location.searchParams.get('scope')?.split(' ')).toEqual(expect.arrayContaining(['openid', 'online_access']));
    expect(location.searchParams.get('scope')).not.toMatch(/offline_access/);
    expect(location.searchParams.get('audience')).toBe('https://api.example.test');
    expect(location.searchParams.get('redirect_uri')).toBe(`${example.url}/auth/callback`);
  });

  describe('the example API', () => {
    const now = () => Math.floor(Date.now() / 1000);
    const claims = () => ({ iss: auth0.issuer, sub: 'auth0|demo', aud: 'https://api.example.test', iat: now(), exp: now() + 60, scope: 'openid' });

    it('answers a valid access token with its data', async () => {
      const res = await fetch(`${example.apiUrl}/data`, { headers: { authorization: `Bearer ${await auth0.admin.sign(claims())}` } });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ sub: 'auth0|demo', tokenExpiresAt: expect.any(Number), message: expect.any(String) });
    });

    it('sends a live feed over a WebSocket at /live to a valid token, and refuses one without a token', async () => {
      const ws = new WebSocket(`${example.apiUrl.replace(/^http/, 'ws')}/live`, { headers: { authorization: `Bearer ${await auth0.admin.sign(claims())}` } });
      const first = await new Promise<string>((resolve, reject) => {
        ws.once('message', (data) => resolve(String(data)));
        ws.once('error', reject);
      });
      expect(JSON.parse(first)).toMatchObject({ type: 'hello', sub: 'auth0|demo', n: 0 });
      ws.close();
      const refused = new WebSocket(`${example.apiUrl.replace(/^http/, 'ws')}/live`);
      const status = await new Promise<number>((resolve) => refused.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
      expect(status).toBe(401);
    });

    it('refuses a request without a token, without an error code (RFC 6750)', async () => {
      const res = await fetch(`${example.apiUrl}/data`);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
    });

    it.each([
      ['a malformed token', async () => 'not.a.jwt'],
      ['a token for another audience', async () => auth0.admin.sign({ ...claims(), aud: 'https://other-api.example.test' })],
      ['a token from another issuer', async () => auth0.admin.sign({ ...claims(), iss: 'https://evil.example.com/' })],
      ['an expired token', async () => auth0.admin.sign({ ...claims(), iat: now() - 120, exp: now() - 60 })],
    ])('refuses %s with invalid_token', async (_name, token) => {
      const res = await fetch(`${example.apiUrl}/data`, { headers: { authorization: `Bearer ${await token()}` } });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
      expect((await res.json()).error).toBe('invalid_token');
    });
  });

  it('logs the demo user in, and calls the API through the BFF with the anti-forgery header', async () => {
    const client = new Client();
    const callback = await client.login(example.url, example.url, { username: 'demo', password: 'demo-password' });
    expect(callback.status).toBe(302);
    expect(callback.headers.get('location')).toBe(`${example.url}/?from=login`);
    const cookie = callback.headers.getSetCookie().find((c) => c.startsWith('bff='));
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Lax/i);
    expect(cookie).not.toMatch(/Secure/i);

    const user = await client.request(`${example.url}/auth/user`);
    expect(user.status).toBe(200);
    expect(await user.json()).toMatchObject({ user: { sub: 'auth0|demo', name: 'Demo User' }, expiresAt: expect.any(Number), idleExpiresAt: expect.any(Number), logoutUrl: expect.stringMatching(/^\/auth\/logout\?sid=/) });

    const forged = await client.request(`${example.url}/api/data`);
    expect(forged.status).toBe(403);
    expect((await forged.json()).error).toBe('csrf_required');

    const res = await client.request(`${example.url}/api/data?x=1`, { headers: { 'x-csrf': '1' } });
    expect(res.status).toBe(200);
    const data = await res.json();
    expect(data).toMatchObject({ sub: 'auth0|demo', tokenIssuedAt: expect.any(Number), tokenExpiresAt: expect.any(Number) });
    expect(JSON.stringify(data)).not.toMatch(TOKEN_SHAPED);
  });

  it('answers 400 JSON, and sets no session, for a callback without a pending login', async () => {
    const res = await fetch(`${example.url}/auth/callback?code=forged&state=forged`, { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(res.headers.getSetCookie()).toEqual([]);
    expect(await res.json()).toEqual({ error: expect.any(String), error_description: expect.any(String) });
  });

  it('answers 400 JSON to a back-channel logout without a valid logout token', async () => {
    const res = await fetch(`${example.url}/auth/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: 'not-a-jwt' }) });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: expect.any(String), error_description: expect.any(String) });
  });

  it('answers login_required on /api without a session', async () => {
    const res = await fetch(`${example.url}/api/data`, { headers: { 'x-csrf': '1' } });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: 'login_required', error_description: expect.any(String) });
  });

  it('ends the Auth0 session "elsewhere" with back-channel logout, which ends the BFF session at once', async () => {
    const client = new Client();
    await client.login(example.url, example.url, { username: 'demo', password: 'demo-password' });
    expect((await client.request(`${example.url}/auth/user`)).status).toBe(200);

    const refused = await client.request(`${example.url}/demo/end-auth0-session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(refused.status).toBe(403);
    const anonymous = await fetch(`${example.url}/demo/end-auth0-session`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf': '1' }, body: '{}' });
    expect(anonymous.status).toBe(401);

    const res = await client.request(`${example.url}/demo/end-auth0-session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-csrf': '1' },
      body: JSON.stringify({ backchannel: true }),
    });
    expect(res.status).toBe(200);
    expect((await res.json()).ended).toBeGreaterThanOrEqual(1);
    expect(auth0.admin.sessions().filter((s) => s.sub === 'auth0|demo')).toEqual([]);
    expect((await client.request(`${example.url}/auth/user`)).status).toBe(401);
    const api = await client.request(`${example.url}/api/data`, { headers: { 'x-csrf': '1' } });
    expect(api.status).toBe(401);
  });

  it('answers JSON for a path it does not know', async () => {
    const res = await fetch(`${example.url}/nothing-here`);
    expect(res.status).toBe(404);
    expect((await res.json()).error).toBe('not_found');
  });
});

describe('the example against an Auth0 tenant (an emulator started separately), two replicas sharing Redis', () => {
  const CLIENT = { clientId: 'replicated-bff', clientSecret: 'replicated-bff-secret' };
  const AUDIENCE = 'https://orders.example.test';
  const USER = { username: 'carol', password: 'carol-password', email: 'carol@example.com', name: 'Carol' };
  // The load balancer's URL: the replicas listen elsewhere, and the test talks to each of them directly.
  const BASE_URL = 'http://localhost:8999';
  const prefix = `bfftest:example:${randomUUID()}:`;
  let auth0: LocalAuth0;
  let replicas: RunningExample[] = [];

  beforeAll(async () => {
    auth0 = await startLocalAuth0({
      clients: [{ ...CLIENT, tokenEndpointAuthMethod: 'client_secret_post', redirectUris: [`${BASE_URL}/auth/callback`], postLogoutRedirectUris: [`${BASE_URL}/`] }],
      users: [USER],
      apis: [{ audience: AUDIENCE }],
    });
    const env = {
      PORT: '0', BASE_URL, ISSUER_URL: auth0.issuer, CLIENT_ID: CLIENT.clientId, CLIENT_SECRET: CLIENT.clientSecret,
      AUDIENCE, REDIS_URL, SESSION_SECRET, REDIS_PREFIX: prefix,
    };
    for (let i = 0; i < 2; i += 1) replicas.push(await startExample(readConfig(env), { logger: quietLogger() }));
  });

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.close()));
    await auth0?.stop();
    const redis = createClient({ url: REDIS_URL });
    await redis.connect();
    for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) if (keys.length) await redis.del(keys);
    await redis.close();
  });

  it('is healthy on every replica', async () => {
    for (const replica of replicas) {
      expect(replica.url).toBe(BASE_URL);
      expect(replica.auth0).toBeUndefined();
      expect((await fetch(`${replica.localUrl}/healthz`)).status).toBe(200);
    }
  });

  it('accepts on one replica the cookie another one issued, and logs out from either', async () => {
    const [a, b] = replicas as [RunningExample, RunningExample];
    const client = new Client();
    const callback = await client.login(a.localUrl, BASE_URL, USER);
    expect(callback.status).toBe(302);
    expect(callback.headers.get('location')).toBe(`${BASE_URL}/?from=login`);

    const user = await client.request(`${b.localUrl}/auth/user`);
    expect(user.status).toBe(200);
    const body = await user.json();
    expect(body.user).toMatchObject({ sub: 'auth0|carol', email: USER.email });

    const api = await client.request(`${b.localUrl}/api/data`, { headers: { 'x-csrf': '1' } });
    expect(api.status).toBe(200);
    // REDIS_PREFIX put the session's keys under the prefix both replicas share.
    const redis = createClient({ url: REDIS_URL });
    await redis.connect();
    const keys: string[] = [];
    for await (const batch of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) keys.push(...batch);
    await redis.close();
    expect(keys.some((k) => k.startsWith(`${prefix}tok:`))).toBe(true);
    expect(await api.json()).toMatchObject({ sub: 'auth0|carol' });

    const logout = await client.request(`${b.localUrl}${body.logoutUrl}`);
    expect(logout.status).toBe(302);
    const location = new URL(logout.headers.get('location') as string);
    expect(location.href.startsWith(auth0.issuer)).toBe(true);
    expect(location.searchParams.get('post_logout_redirect_uri')).toBe(`${BASE_URL}/`);
    expect((await client.request(`${a.localUrl}/auth/user`)).status).toBe(401);
    expect(auth0.admin.sessions().filter((s) => s.sub === 'auth0|carol')).toEqual([]);
  });

  it('ends the live feed held by one replica when the user logs out through the other', async () => {
    const [a, b] = replicas as [RunningExample, RunningExample];
    const client = new Client();
    await client.login(a.localUrl, BASE_URL, USER);
    // The page's origin is BASE_URL, whichever replica the load balancer picked.
    const ws = new WebSocket(`${a.localUrl.replace(/^http/, 'ws')}/api/live`, { origin: BASE_URL, headers: { cookie: client.jar.header(`${a.localUrl}/`) } });
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    const first = await new Promise<string>((resolve, reject) => {
      ws.once('message', (data) => resolve(String(data)));
      ws.once('error', reject);
    });
    expect(JSON.parse(first)).toMatchObject({ type: 'hello', sub: 'auth0|carol' });
    const { logoutUrl } = await (await client.request(`${b.localUrl}/auth/user`)).json();
    expect((await client.request(`${b.localUrl}${logoutUrl}`)).status).toBe(302);
    expect(await closed).toBe(4401);
  });
});

describe('the example while the issuer is unreachable', () => {
  it('starts anyway, and /healthz answers 503 JSON until the metadata is loaded', async () => {
    // A port nobody listens on: take a free one and release it.
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port: free } = probe.address() as { port: number };
        probe.close(() => resolve(free));
      });
    });
    const logger = quietLogger();
    const example = await startExample(readConfig({
      PORT: '0', ISSUER_URL: `http://127.0.0.1:${port}/`, CLIENT_ID: 'id', CLIENT_SECRET: 'secret', AUDIENCE: 'https://api.example.test',
      SESSION_SECRET, UPSTREAM_API_URL: 'http://127.0.0.1:9/',
    }), { logger });
    try {
      const res = await fetch(`${example.url}/healthz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ error: 'idp_unavailable', error_description: expect.any(String) });
      expect(logger.lines.join('\n')).toMatch(/could not be loaded yet/);
    } finally {
      await example.close();
    }
  });
});

describe('the example as a deployment copied from it', () => {
  it('loads neither the emulator nor the example API when given a tenant and an API of its own', () => {
    const { result } = runProbe<{ ws: boolean; koa: boolean; express: boolean }>('test/support/example-modules-probe.ts');
    expect(result).toEqual({ ws: false, koa: false, express: true });
  });
});

describe('stopping the example', () => {
  it('does not wait for an API call the upstream never answers: the call ends, and close() resolves', async () => {
    let reached!: () => void;
    const arrived = new Promise<void>((resolve) => (reached = resolve));
    const silent = createHttpServer((_req, _res) => reached()); // and never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    const { port } = silent.address() as { port: number };
    const example = await startExample(readConfig({ PORT: '0', UPSTREAM_API_URL: `http://127.0.0.1:${port}/` }), { logger: quietLogger() });
    try {
      const client = new Client();
      expect((await client.login(example.url, example.url, example.demoLogin as { username: string; password: string })).status).toBe(302);
      const call = client.request(`${example.url}/api/data`, { headers: { 'x-csrf': '1' } }).catch((error: unknown) => error);
      await arrived;
      // The upstream's 5-minute answer timeout would hold a stop that waited for the call.
      await example.close();
      expect(await call).toBeInstanceOf(Error);
    } finally {
      await example.close();
      silent.closeAllConnections();
      silent.close();
    }
  });
});

describe('npm start (example/start.ts)', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const start = (env: Record<string, string>) =>
    spawn(process.execPath, ['--import', 'tsx', 'example/start.ts'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  const collect = (child: ReturnType<typeof start>) => {
    const out = { text: '' };
    child.stdout.on('data', (chunk: Buffer) => (out.text += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out.text += chunk.toString()));
    return out;
  };
  const exited = (child: ReturnType<typeof start>) => new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  it('prints the URL and the demo login, serves, and stops cleanly on SIGTERM', async () => {
    const child = start({ PORT: '0' });
    const out = collect(child);
    const exit = exited(child);
    try {
      await expect.poll(() => out.text, { timeout: 20_000, interval: 50 }).toMatch(/Ctrl-C stops it/);
      expect(out.text).toMatch(/Log in as +demo \/ demo-password/);
      // No warning a user cannot act on: sessions in memory come with what to set, and on Node 20 (past its end of
      // life) oidc-provider's advice to upgrade is the only other one.
      const warnings = out.text.split('\n').filter((line) => /warn/i.test(line));
      expect(warnings).toEqual([
        ...(process.versions.node.startsWith('20.') ? ['oidc-provider WARNING: Unsupported runtime. Use Node.js v22.x LTS, or a later LTS release.'] : []),
        expect.stringMatching(/^warn: Sessions are kept in memory/),
      ]);
      expect(out.text).toMatch(/Sessions +in memory \(set REDIS_URL to keep them in Redis\)/);
      const url = /Open +(http:\/\/localhost:\d+)/.exec(out.text)?.[1] as string;
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      child.kill('SIGTERM');
      expect(await exit).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('exits 1, naming each problem, when the environment is invalid', async () => {
    const child = start({ ISSUER_URL: 'http://tenant.example.com/' });
    const out = collect(child);
    expect(await exited(child)).toBe(1);
    expect(out.text).toMatch(/ISSUER_URL must use https/);
    expect(out.text).toMatch(/CLIENT_ID is required/);
  });
});
