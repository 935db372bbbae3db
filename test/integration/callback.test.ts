import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scriptedLogin } from '../../src/local-auth0/index.js';
import { closeDeletingKeys, startHarness, stubbedRedis, USER, type Browser, type Harness } from '../support/harness.js';

/** Starts a login in `browser` and returns the callback URL the emulator sends it to, without following it. */
async function callbackUrlFor(_h: Harness, browser: Browser, query = ''): Promise<string> {
  const start = await browser.request(`/auth/login${query}`);
  const { callbackUrl } = await scriptedLogin(start.headers.get('location') as string, USER, { jar: browser.jar, stopAt: `${browser.url}/auth/callback` });
  return callbackUrl;
}

const sessionCookieSet = (res: Response) => res.headers.getSetCookie().some((c) => /^bff=[^;]/.test(c));

describe('the login and callback routes', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: true, bff: { allowedReturnTo: ['/app', '/dashboard'] } });
  });
  afterAll(() => h?.close());

  it('sends the browser to Auth0 with PKCE S256, state, nonce, online_access and the audience', async () => {
    const res = await h.browser().request('/auth/login?returnTo=/app/page&screen_hint=signup&login_hint=alice@example.com');
    expect(res.status).toBe(302);
    const url = new URL(res.headers.get('location') as string);
    expect(`${url.origin}${url.pathname}`).toBe(`${h.auth0.issuer}authorize`);
    const p = url.searchParams;
    expect(p.get('response_type')).toBe('code');
    expect(p.get('code_challenge_method')).toBe('S256');
    expect(p.get('code_challenge')).toMatch(/^[\w-]{43}$/);
    expect(p.get('state')).toBeTruthy();
    expect(p.get('nonce')).toBeTruthy();
    expect(p.get('scope')?.split(' ')).toEqual(expect.arrayContaining(['openid', 'online_access']));
    expect(p.get('scope')).not.toContain('offline_access');
    expect(p.get('audience')).toBe('https://api.example.test');
    expect(p.get('redirect_uri')).toBe(`${h.urls[0]}/auth/callback`);
    expect(p.get('screen_hint')).toBe('signup');
    expect(p.get('login_hint')).toBe('alice@example.com');
    // One binding cookie for the browser, and (this login made it) one of this login's own, until its callback.
    expect(res.headers.getSetCookie().filter((c) => c.startsWith('bff.tx='))).toHaveLength(1);
    expect(res.headers.getSetCookie().filter((c) => c.startsWith('bff.tx.'))).toEqual([expect.stringMatching(/^bff\.tx\.[\w-]{12}=[\w-]{43}; Max-Age=600;.*HttpOnly; SameSite=Lax$/)]);
  });

  it('sets no cookie of a login\'s own once the browser has its binding: cookies do not pile up', async () => {
    const browser = h.browser();
    await browser.request('/auth/login');
    const again = await browser.request('/auth/login?returnTo=/dashboard');
    expect(again.headers.getSetCookie().filter((c) => c.startsWith('bff.tx.'))).toEqual([]);
  });

  it('lets tabs that start a login at the same moment, before the browser has its binding, all log in', async () => {
    const browser = h.browser();
    const [first, second] = await Promise.all([browser.request('/auth/login?returnTo=/app/one'), browser.request('/auth/login?returnTo=/dashboard&prompt=none')]);
    const one = await scriptedLogin(first.headers.get('location') as string, USER, { jar: browser.jar, stopAt: `${browser.url}/auth/callback` });
    const two = await scriptedLogin(second.headers.get('location') as string, USER, { jar: browser.jar, stopAt: `${browser.url}/auth/callback` });
    const a = await browser.request(one.callbackUrl);
    const b = await browser.request(two.callbackUrl);
    expect(a.headers.get('location')).toBe(`${browser.url}/app/one`);
    expect(b.headers.get('location')).toBe(`${browser.url}/dashboard`);
    expect((await browser.user()).status).toBe(200);
    // Each callback cleared its login's own cookie.
    expect(browser.jar.header(browser.url)).not.toMatch(/bff\.tx\./);
  });

  it.each(['https://evil.example/', '//evil.example', '/\\evil.example', '/%2F%2Fevil.example', '/other'])(
    'refuses returnTo=%s with 400 before going to Auth0',
    async (returnTo) => {
      const res = await h.browser().request(`/auth/login?returnTo=${encodeURIComponent(returnTo)}`);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: 'invalid_request' });
    },
  );

  it('refuses a login parameter value it does not pass through', async () => {
    const res = await h.browser().request('/auth/login?prompt=evil');
    expect(res.status).toBe(400);
  });

  it('lets two tabs of one browser log in at the same time', async () => {
    const browser = h.browser();
    const first = await browser.request('/auth/login?returnTo=/app/one');
    const second = await browser.request('/auth/login?returnTo=/dashboard');
    const one = await scriptedLogin(first.headers.get('location') as string, USER, { jar: browser.jar, stopAt: `${browser.url}/auth/callback` });
    const two = await scriptedLogin(second.headers.get('location') as string, USER, { jar: browser.jar, stopAt: `${browser.url}/auth/callback` });
    const a = await browser.request(two.callbackUrl);
    const b = await browser.request(one.callbackUrl);
    expect(a.headers.get('location')).toBe(`${browser.url}/dashboard`);
    expect(b.headers.get('location')).toBe(`${browser.url}/app/one`);
    expect((await browser.user()).status).toBe(200);
  });

  it('refuses a replayed callback, and the replay creates no session', async () => {
    const browser = h.browser();
    const callback = await callbackUrlFor(h, browser);
    expect((await browser.request(callback)).status).toBe(302);
    const attacker = h.browser();
    for (const cookie of browser.jar.header(browser.url).split('; ')) if (cookie.startsWith('bff.tx=')) attacker.jar.set(browser.url, cookie);
    const replay = await attacker.request(callback);
    expect(replay.status).toBe(400);
    expect(sessionCookieSet(replay)).toBe(false);
  });

  it('refuses a forged or tampered state and creates no session', async () => {
    const browser = h.browser();
    const callback = new URL(await callbackUrlFor(h, browser));
    callback.searchParams.set('state', `${callback.searchParams.get('state')}x`);
    const res = await browser.request(callback.href);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request' });
    expect(sessionCookieSet(res)).toBe(false);
    expect((await browser.user()).status).toBe(401);
    const none = await h.browser().request('/auth/callback?code=abc');
    expect(none.status).toBe(400);
  });

  it('refuses a callback that arrives in another browser (login CSRF)', async () => {
    const victim = h.browser();
    const callback = await callbackUrlFor(h, h.browser());
    const res = await victim.request(callback);
    expect(res.status).toBe(400);
    expect((await victim.user()).status).toBe(401);
  });

  it('answers 400 when Auth0 answers access_denied, and creates no session', async () => {
    const browser = h.browser();
    const start = await browser.request('/auth/login');
    const state = new URL(start.headers.get('location') as string).searchParams.get('state');
    const res = await browser.request(`/auth/callback?error=access_denied&error_description=User%20cancelled&state=${state}`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'login_failed', error_description: expect.stringContaining('access_denied') });
    expect(sessionCookieSet(res)).toBe(false);
  });

  it.each([
    ['unauthorized_client', 'Client is not authorized to use this grant type'],
    ['access_denied', 'Service not found: https://api.exmaple.test'],
    ['access_denied', 'Client is not authorized to access "https://api.example.test".'],
  ])('answers 500 configuration_error, logged as an error, when Auth0 answers %s "%s" (the BFF\'s configuration, not the user)', async (code, description) => {
    // A harness of its own: the like refusals of the cases before would be counted, not logged (see the next test).
    const own = await startHarness({ redis: true });
    try {
      const browser = own.browser();
      const start = await browser.request('/auth/login');
      const state = new URL(start.headers.get('location') as string).searchParams.get('state');
      const res = await browser.request(`/auth/callback?error=${code}&error_description=${encodeURIComponent(description)}&state=${state}`);
      expect(res.status).toBe(500);
      expect(await res.json()).toMatchObject({ error: 'configuration_error', error_description: expect.stringContaining(code) });
      expect(sessionCookieSet(res)).toBe(false);
      expect(own.logs.filter((line) => line.startsWith('error'))).toEqual([expect.stringContaining(`Auth0 refused the login because of the BFF's configuration: ${code}`)]);
    } finally {
      await own.close();
    }
  });

  it('logs the first such refusal and counts the like ones: a browser may send any number in callback URLs', async () => {
    const own = await startHarness({ redis: true });
    try {
      const browser = own.browser();
      for (let i = 0; i < 5; i++) {
        const start = await browser.request('/auth/login');
        const state = new URL(start.headers.get('location') as string).searchParams.get('state');
        const res = await browser.request(`/auth/callback?error=unauthorized_client&error_description=${encodeURIComponent(`Check the client secret ${i}`)}&state=${state}`);
        expect(res.status).toBe(500);
      }
      expect(own.logs.filter((line) => line.startsWith('error'))).toEqual([expect.stringContaining('Check the client secret 0')]);
    } finally {
      await own.close();
    }
  });

  it.each([
    ['cannot be reached for the code exchange', { status: 503 }],
    // Later than the harness's 500 ms attempt timeout.
    ['answers the code exchange too late', { delayMs: 1_000 }],
  ] as const)('answers 502 when Auth0 %s, and creates no session', async (_case, failure) => {
    const browser = h.browser();
    const callback = await callbackUrlFor(h, browser);
    h.auth0.admin.failTokenEndpoint(failure, { times: 1 });
    try {
      const res = await browser.request(callback);
      expect(res.status).toBe(502);
      expect(await res.json()).toMatchObject({ error: 'idp_unavailable' });
      expect(sessionCookieSet(res)).toBe(false);
    } finally {
      h.auth0.admin.reset();
    }
  });

  it('ends the session the browser had before when it logs in again, so the old cookie stops working', async () => {
    const browser = h.browser();
    await browser.login();
    const old = browser.jar.header(browser.url).split('; ').find((c) => c.startsWith('bff=')) as string;
    const seen = h.events.length;
    await browser.login();
    // Told as a logout of its own, whose reason says why.
    expect(h.events.slice(seen).filter((e) => e.name === 'logout')).toEqual([
      { name: 'logout', payload: expect.objectContaining({ reason: 'replaced', sessions: 1, sub: USER.sub }) },
    ]);
    const holder = h.browser();
    holder.jar.set(holder.url, old);
    expect((await holder.user()).status).toBe(401);
    expect((await holder.api('/api/items')).status).toBe(401);
    expect((await browser.user()).status).toBe(200);
  });

  it('ends the session the browser had when the login started, also when the callback comes without its cookie (SameSite=Strict)', async () => {
    const browser = h.browser();
    await browser.login();
    const old = browser.jar.header(browser.url).split('; ').find((c) => c.startsWith('bff=')) as string;
    const callback = await callbackUrlFor(h, browser);
    // A Strict cookie stays behind on the navigation from Auth0's site to the callback.
    browser.jar.set(browser.url, 'bff=; Max-Age=0');
    const seen = h.events.length;
    expect((await browser.request(callback)).status).toBe(302);
    expect(h.events.slice(seen).filter((e) => e.name === 'logout')).toEqual([
      { name: 'logout', payload: expect.objectContaining({ reason: 'replaced', sessions: 1 }) },
    ]);
    const holder = h.browser();
    holder.jar.set(holder.url, old);
    expect((await holder.user()).status).toBe(401);
    expect((await browser.user()).status).toBe(200);
  });

  it('answers 400 JSON for a back-channel logout body it cannot read', async () => {
    const res = await fetch(`${h.urls[0]}/auth/backchannel-logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `logout_token=${'a'.repeat(40_000)}`,
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('gives a new session id at login (no fixation)', async () => {
    const browser = h.browser();
    browser.jar.set(browser.url, 'bff=s%3Aattacker-chosen.signature');
    await browser.login();
    expect(browser.jar.header(browser.url)).not.toContain('attacker-chosen');
    expect((await browser.user()).status).toBe(200);
  });

  it('serves /healthz once the issuer metadata is loaded and Redis answers', async () => {
    const res = await h.browser().request('/healthz');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok' });
  });

  it('refuses a logout link that is not bound to the session (a cross-site page cannot log the user out)', async () => {
    const browser = h.browser();
    await browser.login();
    const res = await browser.request('/auth/logout');
    expect(res.status).toBe(400);
    expect((await browser.user()).status).toBe(200);
    const forged = await browser.request('/auth/logout?sid=guess');
    expect(forged.status).toBe(400);
    expect((await browser.user()).status).toBe(200);
  });

  it('answers a method its routes do not take with 405 JSON naming those they do, not with the app\'s page', async () => {
    const cases: Array<[string, string, string]> = [
      ['POST', '/auth/login', 'GET, HEAD'], ['POST', '/auth/callback', 'GET, HEAD'], ['PUT', '/auth/user', 'GET, HEAD'],
      ['DELETE', '/auth/logout', 'GET, HEAD, POST'], ['GET', '/auth/backchannel-logout', 'POST'], ['POST', '/healthz', 'GET, HEAD'],
    ];
    for (const [method, path, allow] of cases) {
      const res = await fetch(`${h.urls[0]}${path}`, { method, redirect: 'manual' });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe(allow);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(await res.json()).toMatchObject({ error: 'method_not_allowed' });
    }
    // The app's own paths, and the routes' own methods, are as they were.
    expect((await fetch(`${h.urls[0]}/auth/login`, { redirect: 'manual' })).status).toBe(302);
    expect((await fetch(`${h.urls[0]}/healthz`, { method: 'HEAD' })).status).toBe(200);
  });

  it('clears no cookie for a logout that carries none (a cross-site form a SameSite cookie does not go with), and clears a stale one', async () => {
    const crossSite = await fetch(`${h.urls[0]}/auth/logout`, { method: 'POST', redirect: 'manual' });
    expect(crossSite.status).toBe(302);
    expect(crossSite.headers.getSetCookie().filter((c) => c.startsWith('bff='))).toEqual([]);

    const browser = h.browser();
    await browser.login();
    const { body } = await browser.user();
    const stale = browser.jar.header(browser.url);
    await browser.request(body.logoutUrl);
    const again = await fetch(`${h.urls[0]}/auth/logout`, { method: 'POST', redirect: 'manual', headers: { cookie: stale } });
    expect(again.status).toBe(302);
    expect(again.headers.getSetCookie().filter((c) => c.startsWith('bff='))).toEqual([expect.stringMatching(/^bff=;.*Expires=Thu, 01 Jan 1970/)]);
  });
});

describe('a session store that fails once the callback has answered', () => {
  let h: Harness;
  /** Whether express-session's saves of a session it saved before never get an answer from Redis. */
  let stallResaves = false;
  beforeAll(async () => {
    const saved = new Set<string>();
    h = await startHarness({
      bff: { redisCommandTimeout: 300 },
      redisConnect: stubbedRedis((client) => {
        const set = client.set.bind(client);
        Object.assign(client, {
          set: (key: string, ...rest: unknown[]) => {
            const again = key.includes(':sess:') && saved.has(key);
            saved.add(key);
            return stallResaves && again ? new Promise(() => {}) : (set as (...args: unknown[]) => Promise<unknown>)(key, ...rest);
          },
        });
      }),
    });
  });
  afterAll(() => closeDeletingKeys(h));

  it('reports no failure for a login that completed: the browser is logged in', async () => {
    stallResaves = true;
    const browser = h.browser();
    const callback = await browser.login();
    expect(callback.status).toBe(302);
    // The answer's end waits for express-session's second save, which the store fails after its timeout.
    expect(await callback.text()).toContain('Found');
    expect((await browser.user()).status).toBe(200);
    expect(h.events.filter((e) => e.name === 'login')).toHaveLength(1);
    expect(h.events.filter((e) => e.name === 'store_failed')).toEqual([]);
    expect(h.logs.filter((line) => line.includes('session store failed'))).toEqual([]);
  });
});

describe('a session store that fails while the callback starts the session', () => {
  let h: Harness;
  /** Redis refuses to write express-session's entries, while set. */
  let refuseSessionSaves = false;
  /** Redis runs the script that creates a session's record, but its answer never comes back, while set. */
  let loseCreateAnswers = false;
  beforeAll(async () => {
    h = await startHarness({
      bff: { redisCommandTimeout: 300 },
      redisConnect: stubbedRedis((client) => {
        const set = client.set.bind(client);
        const evalSha = client.evalSha.bind(client);
        Object.assign(client, {
          set: (key: string, ...rest: unknown[]) => (refuseSessionSaves && key.includes(':sess:')
            ? Promise.reject(new Error('READONLY You can\'t write against a read only replica.'))
            : (set as (...args: unknown[]) => Promise<unknown>)(key, ...rest)),
          evalSha: (sha: string, options: { keys: string[]; arguments: string[] }) => {
            const creating = options.keys.length === 2 && options.keys[0]?.includes(':tok:') === true && options.arguments.length > 6;
            if (!loseCreateAnswers || !creating) return evalSha(sha, options);
            void evalSha(sha, options).catch(() => {});
            return new Promise(() => {});
          },
        });
      }),
    });
  });
  afterAll(() => closeDeletingKeys(h));

  /** The record keys of sessions, which make a session usable (/auth/user and the API read them). */
  const records = async () => (await h.redisKeys()).filter((key) => key.includes(':tok:'));

  it.each([
    ['refuses to save the session', () => (refuseSessionSaves = true)],
    ['runs the creation without answering', () => (loseCreateAnswers = true)],
  ])('leaves the browser logged out, as its 503 says, when the store %s', async (_name, fail) => {
    const before = await records();
    const browser = h.browser();
    const url = await callbackUrlFor(h, browser);
    fail();
    let callback: Response;
    try {
      callback = await browser.request(url);
    } finally {
      refuseSessionSaves = loseCreateAnswers = false;
    }
    expect(callback.status).toBe(503);
    expect(await callback.json()).toMatchObject({ error: 'session_store_unavailable' });
    expect(sessionCookieSet(callback)).toBe(false);
    expect((await browser.user()).status).toBe(401);
    // Nothing is left in the store that a stolen session id could use, and the app heard of no login.
    await expect.poll(records, { timeout: 10_000 }).toEqual(before);
    expect(h.events.filter((e) => e.name === 'login' || e.name === 'logout')).toEqual([]);
  });

  it('sends a silent login back with the error, logged out', async () => {
    const browser = h.browser();
    // Logged in at Auth0 (a silent login needs that), without a BFF session.
    await browser.login();
    browser.jar.set(browser.url, 'bff=; Max-Age=0; Path=/');
    const url = await callbackUrlFor(h, browser, '?prompt=none&returnTo=/app');
    loseCreateAnswers = true;
    let callback: Response;
    try {
      callback = await browser.request(url);
    } finally {
      loseCreateAnswers = false;
    }
    expect(new URL(callback.headers.get('location') as string).searchParams.get('error')).toBe('session_store_unavailable');
    expect(sessionCookieSet(callback)).toBe(false);
    expect((await browser.user()).status).toBe(401);
  });
});

describe('a login when Auth0 refuses the BFF\'s client credentials at the code exchange', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: true, bff: { clientSecret: 'a-client-secret-that-is-not-this-application-s' } });
  });
  afterAll(() => h?.close());

  it('answers 500 configuration_error, logs it as an error without the secret, and creates no session', async () => {
    const browser = h.browser();
    const res = await browser.login();
    expect(res.status).toBe(500);
    expect(await res.json()).toMatchObject({ error: 'configuration_error' });
    expect(sessionCookieSet(res)).toBe(false);
    expect((await browser.user()).status).toBe(401);
    const errors = h.logs.filter((line) => line.startsWith('error'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('client');
    expect(h.logs.join('\n')).not.toContain('a-client-secret-that-is-not-this-application-s');
  });
});
