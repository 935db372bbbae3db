import express, { type Response } from 'express';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BffConfigError, BffError, type Bff } from '../../src/index.js';
import { AUDIENCE, startHarness, USER, waitFor, type Harness } from '../support/harness.js';

const OTHER_API = 'https://other-api.example.test';
const refreshes = (h: Harness) => h.auth0.admin.counts().token.refresh_token?.ok ?? 0;
const answerError = (res: Response, error: unknown) => {
  const e = error as BffError;
  res.status(e.status ?? 500).json({ error: e.code ?? 'server_error' });
};

describe('the guard for the app\'s own API routes', () => {
  let h: Harness;
  /** The app's own routes: one under the proxy's /api mount (declared before the BFF), others elsewhere. */
  const app = (bff: Bff) => {
    const routes = express();
    routes.get('/api/local/profile', bff.requireSession(), (req, res) => void res.json(bff.session(req)));
    routes.get('/local/orders', bff.requireSession(), async (req, res) => {
      try {
        const audience = typeof req.query.audience === 'string' ? req.query.audience : undefined;
        const token = await bff.session(req).accessToken(audience === undefined ? undefined : { audience });
        const upstream = await fetch(`${h.upstream.url}/orders`, { headers: { authorization: `Bearer ${token}` } });
        res.status(upstream.status).json(await upstream.json());
      } catch (error) {
        answerError(res, error);
      }
    });
    routes.post('/local/orders', bff.requireSession(), (_req, res) => void res.status(201).json({ created: true }));
    routes.all('/local/report', bff.requireSession({ csrf: 'unsafe-methods' }), (req, res) => void res.json({ method: req.method }));
    routes.get('/local/unguarded', (req, res) => {
      try {
        bff.session(req);
        res.json({ guarded: true });
      } catch (error) {
        res.status(500).json({ error: (error as Error).name, message: (error as Error).message });
      }
    });
    routes.use(bff);
    return routes;
  };

  beforeAll(async () => {
    h = await startHarness({ redis: true, app });
  });
  afterAll(() => h?.close());
  beforeEach(() => {
    h.upstream.requests.length = 0;
    h.auth0.admin.reset();
  });

  it('answers 403 csrf_required first, then 401 login_required, as JSON and never a redirect', async () => {
    const browser = h.browser();
    const forged = await browser.request('/local/orders', { method: 'POST' });
    expect(forged.status).toBe(403);
    expect(await forged.json()).toMatchObject({ error: 'csrf_required' });
    const anonymous = await browser.api('/local/orders', { method: 'POST' });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('content-type')).toMatch(/json/);
    expect(anonymous.headers.get('cache-control')).toBe('no-store');
    expect(await anonymous.json()).toMatchObject({ error: 'login_required' });
    await browser.login();
    expect((await browser.request('/local/orders', { method: 'POST' })).status).toBe(403);
    expect((await browser.api('/local/orders', { method: 'POST' })).status).toBe(201);
  });

  it('gives the route the user as /auth/user tells it, and is served by the app although its path is under the /api mount', async () => {
    const browser = h.browser();
    await browser.login();
    const res = await browser.api('/api/local/profile');
    expect(res.status).toBe(200);
    const { logoutUrl: _logoutUrl, ...user } = (await browser.user()).body;
    expect(await res.json()).toEqual(user);
    expect(user.user).toMatchObject({ sub: USER.sub, email: USER.email, name: USER.name });
    expect(h.upstream.requests).toHaveLength(0);
    // Every other path under the mount is still the proxy's.
    expect((await browser.api('/api/items')).status).toBe(200);
    expect(h.upstream.requests.map((r) => r.url)).toEqual(['/items']);
  });

  it('gives the route the session\'s access token, renewed once when expiring and shared with the proxy', async () => {
    const browser = h.browser();
    await browser.login();
    expect((await browser.api('/local/orders')).status).toBe(200);
    const jwks = createRemoteJWKSet(new URL(`${h.auth0.issuer}.well-known/jwks.json`));
    const token = (h.upstream.requests[0]?.headers.authorization as string).slice(7);
    expect((await jwtVerify(token, jwks, { issuer: h.auth0.issuer, audience: AUDIENCE })).payload.sub).toBe(USER.sub);

    h.clock.advance(61_000);
    const before = refreshes(h);
    const answers = await Promise.all([browser.api('/local/orders'), browser.api('/api/orders'), browser.api('/local/orders')]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(refreshes(h) - before).toBe(1);
    expect(new Set(h.upstream.requests.slice(1).map((r) => r.headers.authorization)).size).toBe(1);

    expect((await browser.api(`/local/orders?audience=${encodeURIComponent(OTHER_API)}`)).status).toBe(200);
    const other = (h.upstream.requests.at(-1)?.headers.authorization as string).slice(7);
    expect((await jwtVerify(other, jwks, { issuer: h.auth0.issuer, audience: OTHER_API })).payload.sub).toBe(USER.sub);
  });

  it('answers 401 session_ended for a session past its idle timeout, then 401 login_required', async () => {
    const browser = h.browser();
    await browser.login();
    h.clock.advance(3 * 24 * 3600_000 + 1_000);
    const ended = await browser.api('/local/report');
    expect(ended.status).toBe(401);
    expect(await ended.json()).toMatchObject({ error: 'session_ended' });
    const after = await browser.api('/local/report');
    expect(await after.json()).toMatchObject({ error: 'login_required' });
  });

  it('counts a guarded call as activity: the idle timeout rolls', async () => {
    const browser = h.browser();
    await browser.login();
    // Read behind the BFF's back: /auth/user would roll the idle expiry itself.
    const id = decodeURIComponent(/bff=([^;]+)/.exec(browser.jar.header(browser.url))![1]!).slice(2).split('.')[0];
    const storedIdle = async () => Number(await (h.redis as unknown as { hGet(k: string, f: string): Promise<string> }).hGet(`${h.prefix}tok:{${id}}`, 'idle'));
    const idleExpiresAt = await storedIdle();
    h.clock.advance(2 * 24 * 3600_000);
    expect((await browser.api('/api/local/profile')).status).toBe(200);
    await waitFor(async () => (await storedIdle()) > idleExpiresAt, 'the idle expiry rolls');
    h.clock.advance(2 * 24 * 3600_000);
    expect((await browser.api('/api/local/profile')).status).toBe(200);
  });

  it('hands the route session_ended when Auth0 ended the session and the token is renewed', async () => {
    const browser = h.browser();
    await browser.login();
    await h.auth0.admin.endSession({ sub: USER.sub }, { backchannel: false });
    h.clock.advance(61_000);
    const res = await browser.api('/local/orders');
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: 'session_ended' });
    expect((await browser.user()).status).toBe(401);
  });

  it('lets a GET through without the anti-forgery header on a route that asks for `unsafe-methods`, but not a POST', async () => {
    const browser = h.browser();
    await browser.login();
    expect(await (await browser.request('/local/report')).json()).toEqual({ method: 'GET' });
    expect((await browser.request('/local/report', { method: 'POST' })).status).toBe(403);
    expect(await (await browser.api('/local/report', { method: 'POST' })).json()).toEqual({ method: 'POST' });
  });

  it('says plainly when a route reads the session without the guard', async () => {
    const browser = h.browser();
    await browser.login();
    const res = await browser.api('/local/unguarded');
    expect(res.status).toBe(500);
    expect(await res.json()).toMatchObject({ error: 'TypeError', message: expect.stringContaining('requireSession()') });
  });

  it('refuses bad options when the route is declared', () => {
    const bff = h.bffs[0] as Bff;
    expect(() => bff.requireSession({ csrf: 'never' as 'always' })).toThrow(BffConfigError);
    expect(() => bff.requireSession({ csrf: 'never' as 'always' })).toThrow(/requireSession\(options\)\.csrf/);
  });
});
