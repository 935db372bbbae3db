import express from 'express';
import session from 'express-session';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SESSION_SECRET, startHarness, USER, type Harness } from '../support/harness.js';

describe('in-memory sessions (no Redis)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: false });
  });
  afterAll(() => h?.close());

  it('warns at startup that memory serves one process only', () => {
    expect(h.logs.some((l) => l.startsWith('warn') && /one process only/.test(l))).toBe(true);
  });

  it('logs in, proxies with a single exchange under concurrency, and logs out', async () => {
    const browser = h.browser();
    await browser.login();
    expect((await browser.user()).body.user.sub).toBe(USER.sub);
    h.clock.advance(61_000);
    const answers = await Promise.all(Array.from({ length: 20 }, () => browser.api('/api/items')));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(h.auth0.admin.counts().token.refresh_token?.ok).toBe(1);
    const { body } = await browser.user();
    expect((await browser.request(body.logoutUrl)).status).toBe(302);
    expect((await browser.user()).status).toBe(401);
    expect(h.auth0.admin.counts().revocations).toBe(1);
  });

  it('ends the session when the Auth0 session ends elsewhere', async () => {
    const browser = h.browser();
    await browser.login();
    await h.auth0.admin.endSession({ sub: USER.sub }, { backchannel: true });
    expect((await browser.user()).status).toBe(401);
  });
});

describe('with an express-session the app already set up (session.external)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      redis: true,
      bff: { session: { external: true } },
      app: (bff) => {
        const app = express();
        app.use(session({ secret: SESSION_SECRET, resave: false, saveUninitialized: false, name: 'app.sid', cookie: { httpOnly: true, sameSite: 'lax' } }));
        app.use(bff);
        app.get('/mine', (req, res) => void res.json({ loggedIn: Boolean(req.session.bff) }));
        return app;
      },
    });
  });
  afterAll(() => h?.close());

  it('uses the app\'s session cookie for login, user, API calls and logout', async () => {
    const browser = h.browser();
    const callback = await browser.login();
    expect(callback.status).toBe(302);
    expect(callback.headers.getSetCookie().some((c) => c.startsWith('app.sid='))).toBe(true);
    expect(browser.jar.header(browser.url)).not.toMatch(/(^|; )bff=/);
    expect(await (await browser.request('/mine')).json()).toEqual({ loggedIn: true });
    expect((await browser.user()).body.user.sub).toBe(USER.sub);
    h.clock.advance(61_000);
    expect((await browser.api('/api/items')).status).toBe(200);
    const { body } = await browser.user();
    expect((await browser.request(body.logoutUrl)).status).toBe(302);
    expect((await browser.user()).status).toBe(401);
    expect(await (await browser.request('/mine')).json()).toEqual({ loggedIn: false });
  });

  it('clears the app\'s own session entry when Auth0 ends the session through a back-channel logout', async () => {
    const browser = h.browser();
    await browser.login();
    expect(await (await browser.request('/mine')).json()).toEqual({ loggedIn: true });
    await h.auth0.admin.endSession({ sub: USER.sub }, { backchannel: true });
    expect(await (await browser.request('/mine')).json()).toEqual({ loggedIn: false });
    expect((await browser.user()).status).toBe(401);
  });
});
