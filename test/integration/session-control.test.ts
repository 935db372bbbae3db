import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Request } from 'express';
import { scriptedLogin } from '../../src/local-auth0/index.js';
import { WebSocketCloseCode } from '../../src/index.js';
import { REDIS_CLIENT_MODES, closeDeletingKeys, startHarness, stubbedRedis, USER, type Browser, type Harness } from '../support/harness.js';
import { openSocket, opened, roundTrip } from '../support/ws-client.js';

const FIREFOX = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0';
const CHROME = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36';
const SAFARI = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';

/** A browser that sends this User-Agent with every request. */
function device(h: Harness, instance: number, userAgent: string): Browser {
  const browser = h.browser(instance);
  const request = browser.request.bind(browser);
  browser.request = (path, init = {}) => {
    const headers = new Headers(init.headers);
    headers.set('user-agent', userAgent);
    return request(path, { ...init, headers });
  };
  return browser;
}

/** A browser with this User-Agent, logged in on that instance. */
async function loggedIn(h: Harness, instance: number, userAgent: string): Promise<Browser> {
  const browser = device(h, instance, userAgent);
  await browser.login();
  return browser;
}

/** The session list route, as the SPA calls it. */
async function listSessions(browser: Browser): Promise<Array<Record<string, any>>> {
  const res = await browser.api('/auth/sessions');
  expect(res.status).toBe(200);
  return (await res.json()).sessions;
}

/** The live Auth0 sessions at the emulator. */
const auth0Sids = (h: Harness): string[] => h.auth0.admin.sessions().map((s) => s.sid);

const refOf = (h: Harness, browser: Browser): string =>
  h.bffs[0]!.sessions.refOf({ headers: { cookie: browser.jar.header(browser.url) } } as Request) as string;

/** Logs in again without a page in a browser whose BFF cookie is gone: a second BFF session of the same Auth0 session. */
async function secondBffSessionOfSameAuth0Session(browser: Browser): Promise<void> {
  browser.jar.set(browser.url, 'bff=; Max-Age=0; Path=/');
  const start = await browser.request('/auth/login?prompt=none');
  const { callbackUrl, loginFormShown } = await scriptedLogin(start.headers.get('location') as string, USER, { jar: browser.jar, stopAt: `${browser.url}/auth/callback` });
  expect(loginFormShown).toBe(false);
  expect((await browser.request(callbackUrl)).status).toBe(302);
}

describe.each(REDIS_CLIENT_MODES)('sessions a user can see and end, two instances sharing Redis ($mode)', ({ options }) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: true, instances: 2, ...options, bff: { routes: { sessions: '/auth/sessions' } } });
  });
  afterAll(() => h?.close());

  /** Ends every session of the test user, so that each test starts from none. */
  async function reset(): Promise<void> {
    await h.bffs[0]!.sessions.end({ sub: USER.sub, sessionRef: 'all' });
  }

  it('lists a user\'s sessions of both instances with created, last active, expiries and a short user-agent, the current one marked', async () => {
    await reset();
    const laptop = await loggedIn(h, 0, FIREFOX);
    h.clock.advance(2 * 60_000);
    const phone = await loggedIn(h, 1, SAFARI);

    const fromApp = await h.bffs[1]!.sessions.list({ sub: USER.sub });
    expect(fromApp.map((s) => s.userAgent).sort()).toEqual(['Firefox 128 on Windows', 'Safari 17 on iOS']);
    const listed = await listSessions(phone);
    expect(listed.map((s) => s.userAgent)).toEqual(['Safari 17 on iOS', 'Firefox 128 on Windows']);
    const me = (await phone.user()).body;
    const current = listed.find((s) => s.current);
    expect(current).toMatchObject({ sessionRef: refOf(h, phone), userAgent: 'Safari 17 on iOS', expiresAt: me.expiresAt, idleExpiresAt: me.idleExpiresAt });
    expect(current!.createdAt).toBeGreaterThan(0);
    expect(current!.lastActiveAt).toBeGreaterThanOrEqual(current!.createdAt);
    expect(listed.find((s) => !s.current)).toMatchObject({ sessionRef: refOf(h, laptop), userAgent: 'Firefox 128 on Windows', current: false });
    // Neither a session id nor the Auth0 sid nor a token reaches the browser.
    const text = JSON.stringify(listed);
    for (const sid of auth0Sids(h)) expect(text).not.toContain(sid);
    for (const browser of [laptop, phone]) expect(text).not.toContain(browser.jar.get(browser.url, 'bff')!.slice(4, 20));
  });

  it('ends another device\'s session from the SPA: its ORT is revoked, its Auth0 session ends, and it is logged out on every instance', async () => {
    await reset();
    const laptop = device(h, 0, FIREFOX);
    const phone = device(h, 1, CHROME);
    const before = auth0Sids(h);
    await laptop.login();
    const laptopSid = auth0Sids(h).find((sid) => !before.includes(sid));
    await phone.login();
    expect((await laptop.api('/api/items')).status).toBe(200);
    const revocations = h.auth0.admin.counts().revocations;

    const res = await phone.api(`/auth/sessions/${refOf(h, laptop)}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual({ ended: 1, revoked: 1, revocationFailed: 0 });
    expect(h.auth0.admin.counts().revocations).toBe(revocations + 1);

    for (const instance of [0, 1]) {
      expect((await laptop.use(instance).api('/api/items')).status).toBe(401);
      expect((await laptop.user()).status).toBe(401);
    }
    // "Log out my other devices" for real: Auth0 has no session for the laptop any more (a silent login finds none).
    expect(laptopSid).toBeDefined();
    expect(auth0Sids(h)).not.toContain(laptopSid);
    const silent = await laptop.request('/auth/login?prompt=none&returnTo=/');
    const { callbackUrl } = await scriptedLogin(silent.headers.get('location') as string, USER, { jar: laptop.jar, stopAt: `${laptop.url}/auth/callback` });
    expect(new URL(callbackUrl).searchParams.get('error')).toBe('login_required');
    // The phone is untouched.
    expect((await phone.api('/api/items')).status).toBe(200);
    expect((await listSessions(phone)).map((s) => s.current)).toEqual([true]);
    expect(h.events).toContainEqual({ name: 'logout', payload: expect.objectContaining({ reason: 'revoked', sessions: 1, sub: USER.sub }) });
  });

  it('closes the WebSockets of the session it ends, on another instance', async () => {
    await reset();
    const laptop = await loggedIn(h, 0, FIREFOX);
    const phone = await loggedIn(h, 1, CHROME);
    const socket = opened(await openSocket(laptop, '/api/live'));
    const kept = opened(await openSocket(phone.use(0), '/api/live'));
    phone.use(1);

    expect((await phone.api(`/auth/sessions/${refOf(h, laptop)}`, { method: 'DELETE' })).status).toBe(200);
    expect(await socket.closed).toMatchObject({ code: WebSocketCloseCode.SESSION_ENDED });
    expect((await roundTrip(kept, 'still here')).data.toString()).toBe('still here');
    kept.ws.close();
  });

  it('ends every other session with DELETE /auth/sessions/others, and keeps the current one', async () => {
    await reset();
    const browsers = [device(h, 0, FIREFOX), device(h, 1, CHROME), device(h, 0, SAFARI)];
    for (const browser of browsers) await browser.login();
    const auth0Sessions = auth0Sids(h).length;
    const [a, b, current] = browsers as [Browser, Browser, Browser];

    const res = await current.api('/auth/sessions/others', { method: 'DELETE' });
    expect(await res.json()).toEqual({ ended: 2, revoked: 2, revocationFailed: 0 });
    expect((await a.api('/api/items')).status).toBe(401);
    expect((await b.api('/api/items')).status).toBe(401);
    expect((await current.api('/api/items')).status).toBe(200);
    expect(await h.bffs[1]!.sessions.list({ sub: USER.sub })).toHaveLength(1);
    expect(auth0Sids(h)).toHaveLength(auth0Sessions - 2);
  });

  it('ends together the BFF sessions that share one Auth0 session, and shows that they do', async () => {
    await reset();
    const laptop = await loggedIn(h, 0, FIREFOX);
    const first = refOf(h, laptop);
    await secondBffSessionOfSameAuth0Session(laptop);
    const second = refOf(h, laptop);
    const phone = await loggedIn(h, 1, CHROME);

    const listed = await h.bffs[0]!.sessions.list({ sub: USER.sub });
    const [one, two] = [listed.find((s) => s.sessionRef === first)!, listed.find((s) => s.sessionRef === second)!];
    expect(one.auth0SessionRef).toBeDefined();
    expect(one.auth0SessionRef).toBe(two.auth0SessionRef);
    expect(listed.find((s) => s.userAgent?.startsWith('Chrome'))!.auth0SessionRef).not.toBe(one.auth0SessionRef);

    expect(await h.bffs[1]!.sessions.end({ sub: USER.sub, sessionRef: first })).toEqual({ ended: 2, revoked: 1, revocationFailed: 0 });
    expect((await laptop.user()).status).toBe(401);
    expect((await phone.user()).status).toBe(200);
  });

  it('ends a session that shares the current one\'s Auth0 session here only, so the current one lives on', async () => {
    await reset();
    const laptop = await loggedIn(h, 0, FIREFOX);
    const older = refOf(h, laptop);
    await secondBffSessionOfSameAuth0Session(laptop);
    const sids = auth0Sids(h);

    const res = await laptop.api(`/auth/sessions/${older}`, { method: 'DELETE' });
    expect(await res.json()).toEqual({ ended: 1, revoked: 0, revocationFailed: 0 });
    expect(auth0Sids(h)).toEqual(sids);
    expect((await laptop.api('/api/items')).status).toBe(200);
    expect((await listSessions(laptop)).map((s) => s.sessionRef)).toEqual([refOf(h, laptop)]);
  });

  it('needs the anti-forgery header, and a cross-site request without it ends nothing', async () => {
    await reset();
    const laptop = await loggedIn(h, 0, FIREFOX);
    const phone = await loggedIn(h, 1, CHROME);
    for (const [path, method] of [['/auth/sessions', 'GET'], [`/auth/sessions/${refOf(h, laptop)}`, 'DELETE'], ['/auth/sessions/others', 'DELETE']] as const) {
      const res = await phone.request(path, { method });
      expect(res.status).toBe(403);
      expect(res.headers.get('content-type')).toContain('application/json');
      expect(await res.json()).toMatchObject({ error: 'csrf_required' });
    }
    expect((await laptop.api('/api/items')).status).toBe(200);
    expect(await h.bffs[0]!.sessions.list({ sub: USER.sub })).toHaveLength(2);
  });

  it('answers JSON errors: 401 without a session, 400 for a malformed or the current sessionRef, and ends nothing for an unknown one', async () => {
    await reset();
    const anonymous = await h.browser().api('/auth/sessions');
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({ error: 'login_required' });

    const phone = await loggedIn(h, 1, CHROME);
    for (const ref of ['not-a-ref!', 'x'.repeat(11), refOf(h, phone)]) {
      const res = await phone.api(`/auth/sessions/${encodeURIComponent(ref)}`, { method: 'DELETE' });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: 'invalid_request' });
    }
    const unknown = await phone.api('/auth/sessions/AAAAAAAAAA', { method: 'DELETE' });
    expect(await unknown.json()).toEqual({ ended: 0, revoked: 0, revocationFailed: 0 });
    expect((await phone.user()).status).toBe(200);
  });

  it('lets the app end all of a user\'s sessions, on every instance', async () => {
    await reset();
    const laptop = await loggedIn(h, 0, FIREFOX);
    const phone = await loggedIn(h, 1, CHROME);
    const auth0Sessions = auth0Sids(h).length;
    expect(await h.bffs[0]!.sessions.end({ sub: USER.sub, sessionRef: 'all' })).toEqual({ ended: 2, revoked: 2, revocationFailed: 0 });
    for (const browser of [laptop, phone]) for (const instance of [0, 1]) expect((await browser.use(instance).api('/api/items')).status).toBe(401);
    expect(await h.bffs[1]!.sessions.list({ sub: USER.sub })).toEqual([]);
    expect(auth0Sids(h)).toHaveLength(auth0Sessions - 2);
  });
});

describe('sessions a user can see and end, in memory (one process)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: false, bff: { routes: { sessions: true } } });
  });
  afterAll(() => h?.close());

  it('lists and ends the other sessions of the user', async () => {
    const laptop = await loggedIn(h, 0, FIREFOX);
    const phone = await loggedIn(h, 0, CHROME);
    expect((await listSessions(phone)).map((s) => [s.userAgent, s.current])).toEqual(expect.arrayContaining([['Firefox 128 on Windows', false], ['Chrome 126 on macOS', true]]));
    expect(await (await phone.api('/auth/sessions/others', { method: 'DELETE' })).json()).toEqual({ ended: 1, revoked: 1, revocationFailed: 0 });
    expect((await laptop.api('/api/items')).status).toBe(401);
    expect((await phone.api('/api/items')).status).toBe(200);
  });

  it('still ends the sessions when Auth0 cannot be reached to revoke them, and says so', async () => {
    const laptop = await loggedIn(h, 0, FIREFOX);
    const phone = await loggedIn(h, 0, CHROME);
    await h.auth0.stop();
    const res = await phone.api(`/auth/sessions/${refOf(h, laptop)}`, { method: 'DELETE' });
    expect(await res.json()).toEqual({ ended: 1, revoked: 0, revocationFailed: 1 });
    expect((await laptop.user()).status).toBe(401);
    expect((await phone.user()).status).toBe(200);
    expect(h.events.some((e) => e.name === 'revocation_failed')).toBe(true);
    expect(h.logs.some((l) => l.startsWith('warn Could not revoke'))).toBe(true);
  });
});

describe('ending another device while the session store stalls', () => {
  let h: Harness;
  /** How many of the next index removals (the last step of ending a session) Redis never answers. */
  let stalledRemovals = 0;
  /** How many of the next session ends Redis runs without its answer ever coming back. */
  let lostEnds = 0;
  /** Whether Auth0's revocation endpoint fails (a 503), everything else answering. */
  let failRevocations = false;
  const failingRevocation: typeof fetch = async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    if (failRevocations && url.endsWith('/oauth/revoke')) {
      return new Response(JSON.stringify({ error: 'temporarily_unavailable' }), { status: 503, headers: { 'content-type': 'application/json' } });
    }
    return fetch(input, init);
  };
  beforeAll(async () => {
    h = await startHarness({
      bff: { routes: { sessions: true }, redisCommandTimeout: 300, fetch: failingRevocation },
      redisConnect: stubbedRedis((client) => {
        const zRem = client.zRem.bind(client);
        const evalSha = client.evalSha.bind(client);
        Object.assign(client, {
          zRem: (...args: Parameters<typeof zRem>) => (stalledRemovals > 0 && stalledRemovals-- > 0 ? new Promise(() => {}) : zRem(...args)),
          // The script that ends a session names its record, its express-session entry and its lock.
          evalSha: (sha: string, options: { keys: string[]; arguments: string[] }) => {
            const ending = options.keys.length === 3 && options.keys.some((key) => key.includes(':lock:'));
            if (!ending || lostEnds === 0) return evalSha(sha, options);
            lostEnds--;
            void evalSha(sha, options).catch(() => {});
            return new Promise(() => {});
          },
        });
      }),
    });
  });
  afterAll(() => closeDeletingKeys(h));

  it('ends it all the same when the removal from the user\'s index gets no answer', async () => {
    const laptop = await loggedIn(h, 0, FIREFOX);
    const phone = await loggedIn(h, 0, CHROME);
    const socket = opened(await openSocket(laptop, '/api/live'));
    const before = auth0Sids(h);
    const revocations = h.auth0.admin.counts().revocations;

    stalledRemovals = 1;
    const res = await phone.api(`/auth/sessions/${refOf(h, laptop)}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ended: 1, revoked: 1, revocationFailed: 0 });
    expect(h.auth0.admin.counts().revocations).toBe(revocations + 1);
    expect(auth0Sids(h)).toHaveLength(before.length - 1);
    expect(await socket.closed).toMatchObject({ code: WebSocketCloseCode.SESSION_ENDED });
    expect((await laptop.user()).status).toBe(401);
    expect((await phone.api('/api/items')).status).toBe(200);
    // The store is told once it answers: the index keeps no entry of the ended session.
    await expect.poll(async () => (await listSessions(phone)).map((s) => s.current), { timeout: 10_000 }).toEqual([true]);
    await expect.poll(() => h.events.filter((e) => e.name === 'logout').length, { timeout: 10_000 }).toBe(1);
  });

  it('still revokes its ORT, closes its sockets and reports the logout when the store ends it but its answer never comes', async () => {
    const laptop = await loggedIn(h, 0, FIREFOX);
    const phone = await loggedIn(h, 0, CHROME);
    const socket = opened(await openSocket(laptop, '/api/live'));
    const before = auth0Sids(h);
    const logouts = h.events.filter((e) => e.name === 'logout').length;

    lostEnds = 1;
    const ended = refOf(h, laptop);
    const res = await phone.api(`/auth/sessions/${ended}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ended: 1, revoked: 1, revocationFailed: 0 });
    expect(auth0Sids(h)).toHaveLength(before.length - 1);
    expect(await socket.closed).toMatchObject({ code: WebSocketCloseCode.SESSION_ENDED });
    expect((await laptop.user()).status).toBe(401);
    expect((await phone.api('/api/items')).status).toBe(200);
    expect(h.events.filter((e) => e.name === 'logout').slice(logouts)).toEqual([
      { name: 'logout', payload: expect.objectContaining({ reason: 'revoked', sessions: 1, revoked: true }) },
    ]);
    expect((await listSessions(phone)).map((s) => s.sessionRef)).not.toContain(ended);
    expect(h.logs.some((l) => l.includes('did not take a logout; retrying in the background'))).toBe(true);
  });

  it('reports a user\'s logout once when the store ends the session but its answer never comes', async () => {
    const laptop = await loggedIn(h, 0, FIREFOX);
    const logoutUrl = (await laptop.user()).body.logoutUrl as string;
    const logouts = h.events.filter((e) => e.name === 'logout').length;

    lostEnds = 1;
    const res = await laptop.request(logoutUrl);
    expect(res.status).toBe(302);
    expect((await laptop.user()).status).toBe(401);
    // The store is asked again once it answers, finds the session gone, and the app hears of the logout then.
    await expect.poll(() => h.events.filter((e) => e.name === 'logout').slice(logouts), { timeout: 10_000 }).toEqual([
      { name: 'logout', payload: expect.objectContaining({ reason: 'user', sessions: 1, revoked: true }) },
    ]);
  });

  it('ends a session that shares the current one\'s Auth0 session when the store ends it but its answer never comes, and reports the logout once', async () => {
    const laptop = await loggedIn(h, 0, FIREFOX);
    const older = refOf(h, laptop);
    await secondBffSessionOfSameAuth0Session(laptop);
    const sids = auth0Sids(h);
    const logouts = h.events.filter((e) => e.name === 'logout').length;

    lostEnds = 1;
    const res = await laptop.api(`/auth/sessions/${older}`, { method: 'DELETE' });
    // The end is decided (and has happened): the SPA is not told that nothing happened.
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ended: 1, revoked: 0, revocationFailed: 0 });
    expect(auth0Sids(h)).toEqual(sids);
    expect((await laptop.api('/api/items')).status).toBe(200);
    const listed = (await listSessions(laptop)).map((s) => s.sessionRef);
    expect(listed).toContain(refOf(h, laptop));
    expect(listed).not.toContain(older);
    // The retry finds the session gone, by this end: the app hears of it then.
    await expect.poll(() => h.events.filter((e) => e.name === 'logout').slice(logouts), { timeout: 10_000 }).toEqual([
      { name: 'logout', payload: expect.objectContaining({ reason: 'revoked', sessions: 1 }) },
    ]);
  });

  it('ends another device when the store ends it but its answer never comes and Auth0 does not confirm the revocation, and reports the logout once', async () => {
    const laptop = await loggedIn(h, 0, FIREFOX);
    const phone = await loggedIn(h, 0, CHROME);
    const logouts = h.events.filter((e) => e.name === 'logout').length;

    lostEnds = 1;
    failRevocations = true;
    let res: Response;
    try {
      res = await phone.api(`/auth/sessions/${refOf(h, laptop)}`, { method: 'DELETE' });
    } finally {
      failRevocations = false;
    }
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ended: 1, revoked: 0, revocationFailed: 1 });
    expect((await laptop.user()).status).toBe(401);
    expect((await phone.api('/api/items')).status).toBe(200);
    await expect.poll(() => h.events.filter((e) => e.name === 'logout').slice(logouts), { timeout: 10_000 }).toEqual([
      { name: 'logout', payload: expect.objectContaining({ reason: 'revoked', sessions: 1, revoked: false }) },
    ]);
  });
});

describe('two requests ending the same session at once', () => {
  let h: Harness;
  /** While set, session ends wait here until two have come: both requests have read the session before either ends it. */
  let heldEnds: Array<() => void> | undefined;
  beforeAll(async () => {
    h = await startHarness({
      // Generous: a held end must not time out while the other request gets to its own.
      bff: { routes: { sessions: true }, redisCommandTimeout: 10_000 },
      redisConnect: stubbedRedis((client) => {
        const evalSha = client.evalSha.bind(client);
        Object.assign(client, {
          evalSha: (sha: string, options: { keys: string[]; arguments: string[] }) => {
            const ending = options.keys.length === 3 && options.keys.some((key) => key.includes(':lock:'));
            const held = heldEnds;
            if (!ending || held === undefined) return evalSha(sha, options);
            return new Promise((resolve, reject) => {
              held.push(() => void evalSha(sha, options).then(resolve, reject));
              if (held.length < 2) return;
              heldEnds = undefined;
              for (const send of held) send();
            });
          },
        });
      }),
    });
  });
  afterAll(() => closeDeletingKeys(h));

  it('revokes it once, and the request that ended nothing says it revoked nothing', async () => {
    const laptop = await loggedIn(h, 0, FIREFOX);
    const phone = await loggedIn(h, 0, CHROME);
    const tablet = await loggedIn(h, 0, SAFARI);
    const revocations = h.auth0.admin.counts().revocations;

    heldEnds = [];
    const answers = await Promise.all([phone, tablet].map(async (browser) => (await browser.api(`/auth/sessions/${refOf(h, laptop)}`, { method: 'DELETE' })).json()));
    expect(answers.sort((a, b) => b.ended - a.ended)).toEqual([
      { ended: 1, revoked: 1, revocationFailed: 0 },
      { ended: 0, revoked: 0, revocationFailed: 0 },
    ]);
    expect(h.auth0.admin.counts().revocations).toBe(revocations + 1);
    expect(h.events.filter((e) => e.name === 'logout')).toEqual([
      { name: 'logout', payload: expect.objectContaining({ reason: 'revoked', sessions: 1, revoked: true }) },
    ]);
    expect((await laptop.user()).status).toBe(401);
    expect((await phone.api('/api/items')).status).toBe(200);
    expect((await tablet.api('/api/items')).status).toBe(200);
  });
});

describe('the sessions route', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: false });
  });
  afterAll(() => h?.close());

  it('is off unless routes.sessions asks for it', async () => {
    const browser = h.browser();
    await browser.login();
    expect((await browser.api('/auth/sessions')).status).toBe(404);
    expect((await browser.api(`/auth/sessions/${refOf(h, browser)}`, { method: 'DELETE' })).status).toBe(404);
    expect((await browser.user()).status).toBe(200);
  });

  it('refuses bad arguments from the app with a TypeError naming them', async () => {
    const { sessions } = h.bffs[0]!;
    await expect(sessions.list({ sub: '' })).rejects.toThrow(/"sub"/);
    await expect(sessions.end({ sub: USER.sub, sessionRef: 'nope' })).rejects.toThrow(/"sessionRef"/);
    await expect(sessions.end({ sub: USER.sub, sessionRef: 'all', except: 'nope' })).rejects.toThrow(/"except"/);
  });
});
