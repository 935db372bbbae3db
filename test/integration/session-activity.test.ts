import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SESSION_SECRET, startHarness, USER, waitFor, type Browser, type Harness } from '../support/harness.js';

const IDLE_TIMEOUT_S = 600;
const MINUTE = 60_000;

/** `/auth/user?touch=false`: the SPA asking whether its session is alive. */
async function probe(browser: Browser): Promise<{ status: number; body: any }> {
  const res = await browser.request('/auth/user?touch=false');
  return { status: res.status, body: await res.json() };
}

describe.each([['Redis', true], ['memory', false]])('what counts as activity (%s sessions)', (_name, redis) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      redis,
      bff: { session: { secrets: [SESSION_SECRET], idleTimeout: IDLE_TIMEOUT_S, absoluteTimeout: 7200 }, routes: { sessions: true } },
      app: (bff) => {
        const app = express().use(bff);
        app.get('/whoami', async (req, res) => void res.json((await bff.getUser(req, { touch: false })) ?? null));
        return app;
      },
    });
  });
  afterAll(() => h?.close());

  it('lets the SPA poll /auth/user?touch=false without keeping the session alive: it still ends at its idle timeout', async () => {
    const browser = h.browser();
    await browser.login();
    const first = await probe(browser);
    expect(first.status).toBe(200);
    for (let i = 0; i < 4; i++) {
      h.clock.advance(2 * MINUTE);
      const polled = await probe(browser);
      expect(polled.status).toBe(200);
      expect(polled.body.idleExpiresAt).toBe(first.body.idleExpiresAt);
      expect(polled.body.expiresAt).toBe(first.body.expiresAt);
      expect((await browser.request('/whoami')).status).toBe(200);
    }
    h.clock.advance(2 * MINUTE + 1_000);
    const ended = await probe(browser);
    expect(ended.status).toBe(401);
    expect(ended.body).toMatchObject({ error: 'session_ended' });
    expect(h.events.at(-1)).toMatchObject({ name: 'logout', payload: { reason: 'idle_timeout' } });
  });

  it('keeps counting API calls and /auth/user without touch=false as activity', async () => {
    const browser = h.browser();
    await browser.login();
    const first = (await probe(browser)).body.idleExpiresAt as number;
    h.clock.advance(5 * MINUTE);
    expect((await browser.api('/api/items')).status).toBe(200);
    await waitFor(async () => (await probe(browser)).body.idleExpiresAt > first, 'an API call rolled the idle expiry');
    const beforeRoll = (await probe(browser)).body.idleExpiresAt as number;
    h.clock.advance(5 * MINUTE + 1_000);
    const rolled = await browser.user();
    expect(rolled.status).toBe(200);
    // The answer gives the expiry its own call rolled to, a whole idle timeout from now: what the store now holds.
    expect(rolled.body.idleExpiresAt).toBe(Math.floor(h.clock.now() / 1000) + IDLE_TIMEOUT_S);
    expect(rolled.body.idleExpiresAt).toBeGreaterThan(beforeRoll);
    expect((await probe(browser)).body.idleExpiresAt).toBe(rolled.body.idleExpiresAt);
    h.clock.advance(5 * MINUTE + 1_000);
    expect((await probe(browser)).status).toBe(200);
  });

  it('answers a touching bff.getUser and the session list with the idle expiry that request rolled to', async () => {
    const browser = h.browser();
    await browser.login();
    const bff = h.bffs[0]!;
    h.clock.advance(5 * MINUTE);
    const user = await bff.getUser(cookieRequest(browser));
    expect(user?.idleExpiresAt).toBe(Math.floor(h.clock.now() / 1000) + IDLE_TIMEOUT_S);
    expect((await probe(browser)).body.idleExpiresAt).toBe(user?.idleExpiresAt);

    h.clock.advance(5 * MINUTE);
    const listed = await browser.api('/auth/sessions');
    expect(listed.status).toBe(200);
    const current = ((await listed.json()) as { sessions: Array<{ current: boolean; idleExpiresAt: number }> }).sessions.find((s) => s.current);
    expect(current?.idleExpiresAt).toBe(Math.floor(h.clock.now() / 1000) + IDLE_TIMEOUT_S);
  });

  it('shows in the session list when the session was last active: API calls move it, probes do not', async () => {
    const browser = h.browser();
    await browser.login();
    const bff = h.bffs[0]!;
    const mine = async () => (await bff.sessions.list({ sub: USER.sub })).find((s) => s.sessionRef === bff.sessions.refOf(cookieRequest(browser)));
    const loggedIn = (await mine())!.lastActiveAt;
    h.clock.advance(3 * MINUTE);
    expect((await probe(browser)).status).toBe(200);
    expect((await mine())!.lastActiveAt).toBe(loggedIn);
    expect((await browser.api('/api/items')).status).toBe(200);
    await waitFor(async () => (await mine())!.lastActiveAt >= loggedIn + 180, 'the API call was recorded as activity');
  });

  it('records activity at most once a minute: the calls in between write nothing', async () => {
    const browser = h.browser();
    await browser.login();
    const bff = h.bffs[0]!;
    const lastActive = async () => (await bff.sessions.list({ sub: USER.sub })).find((s) => s.sessionRef === bff.sessions.refOf(cookieRequest(browser)))!.lastActiveAt;
    const loggedIn = await lastActive();
    // 40 s of the test clock, leaving room for the real time the calls take on a busy machine.
    for (let i = 0; i < 5; i++) {
      h.clock.advance(8_000);
      expect((await browser.api('/api/items')).status).toBe(200);
      expect((await browser.user()).status).toBe(200);
    }
    expect(await lastActive()).toBe(loggedIn);
    h.clock.advance(21_000);
    expect((await browser.api('/api/items')).status).toBe(200);
    await waitFor(async () => (await lastActive()) >= loggedIn + 61, 'the call a minute after login was recorded');
  });

  it('answers 400 for a touch value it does not know', async () => {
    const browser = h.browser();
    await browser.login();
    const res = await browser.request('/auth/user?touch=maybe');
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request' });
  });
});

/** A request object carrying the browser's cookies, for `bff.sessions.refOf()`. */
function cookieRequest(browser: Browser): express.Request {
  return { headers: { cookie: browser.jar.header(browser.url) } } as express.Request;
}
