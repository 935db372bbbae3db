import express from 'express';
import session from 'express-session';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBff } from '../../src/index.js';
import { AUDIENCE, CLIENT_ID, CLIENT_SECRET, SESSION_SECRET, startHarness, USER, type Harness } from '../support/harness.js';

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

describe('session.external without the app\'s express-session', () => {
  it('answers 500 configuration_error, and a log line names the missing middleware once, however many requests come', async () => {
    const errors: string[] = [];
    const bff = createBff({
      issuer: 'http://127.0.0.1:9/', clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, audience: AUDIENCE,
      baseURL: 'http://127.0.0.1:3000', session: { secrets: [SESSION_SECRET], external: true },
      logger: { warn: () => {}, error: (message: string) => void errors.push(message) },
    });
    try {
      const app = express();
      app.use(bff);
      for (let i = 0; i < 3; i++) {
        const res = await supertest(app).get('/auth/callback?code=c&state=s');
        expect(res.status).toBe(500);
        expect(res.body).toEqual({ error: 'configuration_error', error_description: 'session.external is set, but no express-session middleware ran before the BFF.' });
      }
      expect(errors).toEqual(['session.external is set, but no express-session middleware ran before the BFF.']);
    } finally {
      await bff.close();
    }
  });
});
