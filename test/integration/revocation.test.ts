import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Browser, CLIENT_ID, REDIS_CLIENT_MODES, startHarness, USER, waitFor, type Harness } from '../support/harness.js';
import { behindRelay } from '../support/behind-relay.js';

const EVENT = { 'http://schemas.openid.net/event/backchannel-logout': {} };

function postLogoutToken(url: string, token: string): Promise<Response> {
  return fetch(`${url}/auth/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: token }),
  });
}

/** The BFF session id behind a browser's signed cookie (`s:<id>.<signature>`). */
const sessionIdOf = (b: Browser) => decodeURIComponent(sessionCookie(b).slice('bff='.length)).slice(2).replace(/\.[^.]*$/, '');

/** The BFF session cookie a browser holds now. */
const sessionCookie = (b: Browser) => b.jar.header(b.url).split('; ').find((c) => c.startsWith('bff=')) as string;

function browserWith(h: Harness, cookie: string, instance = 0): Browser {
  const b = h.browser(instance);
  b.jar.set(b.url, cookie);
  return b;
}

const auth0SidOf = (h: Harness) => {
  const sessions = h.auth0.admin.sessions().filter((s) => s.sub === USER.sub);
  return sessions[sessions.length - 1]?.sid as string;
};

// With client-side caching, each instance keeps session reads in memory: a logout must still reach all of them.
describe.each(REDIS_CLIENT_MODES)('every end of the Auth0 session is a full BFF logout ($mode)', ({ options }) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      redis: true,
      instances: 2,
      ...options,
      bff: { session: { secrets: ['test-session-secret-test-session-secret'], idleTimeout: 600, absoluteTimeout: 3_600 } },
    });
  });
  afterAll(() => h?.close());
  beforeEach(async () => {
    h.upstream.handler = undefined;
    h.auth0.admin.reset();
    await h.auth0.admin.endSession({ sub: USER.sub });
  });

  const claims = (sid: string, extra: object = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return { iss: h.auth0.issuer, aud: CLIENT_ID, iat: now, exp: now + 120, jti: crypto.randomUUID(), sid, sub: USER.sub, events: EVENT, ...extra };
  };

  it('ends every BFF session of the Auth0 session when Auth0 sends a back-channel logout, on every instance', async () => {
    const browser = h.browser(1);
    await browser.login();
    const first = sessionCookie(browser);
    // A second browser profile with the same Auth0 login (SSO): a second BFF session in the same Auth0 session.
    const sibling = h.browser(1);
    for (const cookie of browser.jar.header(h.auth0.issuer).split('; ')) if (!cookie.startsWith('bff')) sibling.jar.set(h.auth0.issuer, cookie);
    await sibling.login();
    const second = sessionCookie(sibling);
    expect(second).not.toBe(first);
    for (const c of [first, second]) {
      expect((await browserWith(h, c, 1).user()).status).toBe(200);
      expect((await browserWith(h, c, 1).api('/api/items')).status).toBe(200);
    }

    // Delivered to instance 0; the sessions were used on instance 1.
    await h.auth0.admin.endSession({ sid: auth0SidOf(h) }, { backchannel: true });
    const delivery = h.auth0.admin.backchannelDeliveries().at(-1);
    expect(delivery?.status).toBe(200);
    for (const c of [first, second]) {
      expect((await browserWith(h, c, 1).user()).status).toBe(401);
      expect((await browserWith(h, c, 1).api('/api/items')).status).toBe(401);
    }
    expect(h.events.some((e) => e.name === 'logout' && (e.payload as { reason: string; sessions: number }).reason === 'backchannel' && (e.payload as { sessions: number }).sessions === 2)).toBe(true);
  });

  it('answers 200 with Cache-Control: no-store for a valid token of an unknown session', async () => {
    const res = await postLogoutToken(h.urls[0] as string, await h.auth0.admin.sign(claims('no-such-sid'), { typ: 'logout+jwt' }));
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('ends every session of the user when the token names only sub', async () => {
    const a = h.browser();
    await a.login();
    const { sid: _sid, ...onlySub } = claims('x');
    const res = await postLogoutToken(h.urls[0] as string, await h.auth0.admin.sign(onlySub, { typ: 'JWT' }));
    expect(res.status).toBe(200);
    expect((await a.user()).status).toBe(401);
  });

  it.each([
    ['a wrong audience', (c: object) => ({ ...c, aud: 'someone-else' })],
    ['a wrong issuer', (c: object) => ({ ...c, iss: 'https://evil.example/' })],
    ['an expired token', (c: object) => ({ ...c, iat: Math.floor(Date.now() / 1000) - 600, exp: Math.floor(Date.now() / 1000) - 300 })],
    ['an iat an hour ahead', (c: object) => ({ ...c, iat: Math.floor(Date.now() / 1000) + 3600, exp: Math.floor(Date.now() / 1000) + 3720 })],
    ['a nonce', (c: object) => ({ ...c, nonce: 'n' })],
    ['no events claim', (c: Record<string, unknown>) => ({ ...c, events: undefined })],
    ['a wrong event', (c: object) => ({ ...c, events: { 'http://example.com/other': {} } })],
    ['neither sid nor sub', (c: Record<string, unknown>) => ({ ...c, sid: undefined, sub: undefined })],
    ['a sid that is not a string (it would widen to every session of the user)', (c: object) => ({ ...c, sid: 12345 })],
    ['an event that is not an object', (c: object) => ({ ...c, events: { 'http://schemas.openid.net/event/backchannel-logout': [] } })],
    ['no jti', (c: Record<string, unknown>) => ({ ...c, jti: undefined })],
  ])('refuses a logout token with %s: 400 JSON, and the session stays', async (_name, change) => {
    const browser = h.browser();
    await browser.login();
    const token = await h.auth0.admin.sign(JSON.parse(JSON.stringify(change(claims(auth0SidOf(h))))));
    const res = await postLogoutToken(h.urls[0] as string, token);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request', error_description: expect.any(String) });
    expect((await browser.user()).status).toBe(200);
  });

  it('refuses a forged signature, an unexpected typ, garbage and a missing token', async () => {
    const browser = h.browser();
    await browser.login();
    const { privateKey } = await generateKeyPair('RS256');
    const forged = await new SignJWT(claims(auth0SidOf(h))).setProtectedHeader({ alg: 'RS256', kid: 'forged' }).sign(privateKey);
    for (const token of [forged, await h.auth0.admin.sign(claims(auth0SidOf(h)), { typ: 'at+jwt' }), 'not-a-jwt', 'a.b.c']) {
      const res = await postLogoutToken(h.urls[0] as string, token);
      expect(res.status).toBe(400);
    }
    const empty = await fetch(`${h.urls[0]}/auth/backchannel-logout`, { method: 'POST' });
    expect(empty.status).toBe(400);
    expect((await browser.user()).status).toBe(200);
    expect(h.logs).toContainEqual(expect.stringMatching(/^warn Refused a back-channel logout \{"error":"The logout_token/));
  });

  it('refuses a body over its limit, or one that is not a form, with 400, and reports it as a refused logout token', async () => {
    const before = h.events.length;
    const large = await fetch(`${h.urls[0]}/auth/backchannel-logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ logout_token: 'x'.repeat(40_000) }),
    });
    expect(large.status).toBe(400);
    expect(await large.json()).toMatchObject({ error: 'invalid_request', error_description: 'The request body is larger than 32kb.' });
    const broken = await fetch(`${h.urls[0]}/auth/backchannel-logout`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded; charset=klingon' }, body: 'logout_token=x' });
    expect(broken.status).toBe(400);
    expect(h.events.slice(before).filter((e) => e.name === 'backchannel_logout_rejected')).toEqual([
      { name: 'backchannel_logout_rejected', payload: { error: 'The request body is larger than 32kb.' } },
      { name: 'backchannel_logout_rejected', payload: { error: 'The request body could not be read.' } },
    ]);
  });

  it('refuses a replayed logout token, on any instance', async () => {
    const token = await h.auth0.admin.sign(claims('replayed-sid'));
    expect((await postLogoutToken(h.urls[0] as string, token)).status).toBe(200);
    const replay = await postLogoutToken(h.urls[1] as string, token);
    expect(replay.status).toBe(400);
    expect(await replay.json()).toMatchObject({ error_description: expect.stringMatching(/used already/) });
  });

  it('ends the session everywhere on user logout, and an in-flight slow request cannot bring it back', async () => {
    const browser = h.browser();
    await browser.login();
    const other = h.browser(1);
    await other.login(); // same Auth0 session through SSO? No: a new browser logs in afresh; keep it as a bystander.
    let release!: () => void;
    const started = new Promise<void>((resolve) => {
      h.upstream.handler = (_req, res) => {
        resolve();
        release = () => res.end('{"late":true}');
      };
    });
    const slow = browser.api('/api/slow');
    await started;
    const { body } = await browser.user();
    const keysBefore = (await h.redisKeys()).length;
    expect((await browser.request(body.logoutUrl)).status).toBe(302);
    release();
    expect((await slow).status).toBe(200);
    expect((await browser.user()).status).toBe(401);
    expect((await browser.api('/api/items')).status).toBe(401);
    expect((await h.redisKeys()).length).toBeLessThan(keysBefore);
    expect((await other.user()).status).toBe(200);
  });

  it('does not revive a session whose exchange was in flight when it ended', async () => {
    const browser = h.browser();
    await browser.login();
    h.clock.advance(61_000);
    h.auth0.admin.failTokenEndpoint({ delayMs: 400 });
    const answered = () => {
      const c = h.auth0.admin.counts().token.refresh_token;
      return (c?.ok ?? 0) + (c?.error ?? 0);
    };
    const before = answered();
    const id = sessionIdOf(browser);
    expect(await h.redisKeys()).toContain(`${h.prefix}tok:{${id}}`);
    const call = browser.api('/api/items');
    // The exchange is on its way to Auth0 (answered 400 ms late) when the Auth0 session ends.
    await waitFor(async () => (await h.redisKeys()).includes(`${h.prefix}lock:{${id}}`), 'the exchange holds its lock');
    await h.auth0.admin.endSession({ sub: USER.sub }, { backchannel: true });
    const res = await call;
    expect(res.status).toBe(401);
    await waitFor(() => answered() > before, 'the delayed exchange was answered');
    expect((await browser.user()).status).toBe(401);
    const keys = await h.redisKeys();
    expect(keys.filter((k) => k.includes(id))).toEqual([]);
  });

  it('ends the session at its absolute lifetime, whatever the activity, with the reason in the event', async () => {
    const browser = h.browser();
    await browser.login();
    for (let i = 0; i < 7; i++) {
      h.clock.advance(500_000);
      expect((await browser.api('/api/items')).status).toBe(200);
    }
    h.clock.advance(200_000);
    const res = await browser.api('/api/items');
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'session_ended' });
    expect(h.events.at(-1)).toMatchObject({ name: 'logout', payload: { reason: 'absolute_timeout' } });
  });

  it('ends an idle session, with the reason in the event, and rolls the idle expiry with activity', async () => {
    const browser = h.browser();
    await browser.login();
    const first = (await browser.user()).body.idleExpiresAt;
    h.clock.advance(300_000);
    expect((await browser.api('/api/items')).status).toBe(200);
    await waitFor(async () => (await browser.user()).body.idleExpiresAt > first, 'idle expiry rolled');
    h.clock.advance(601_000);
    const res = await browser.user();
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ error: 'session_ended' });
    expect(h.events.at(-1)).toMatchObject({ name: 'logout', payload: { reason: 'idle_timeout' } });
  });
});

describe('a back-channel logout while Auth0\'s key set is failing', () => {
  let h: Harness;
  /** What the issuer's JWKS answers instead of its keys, while set. */
  let keySetAnswer: (() => Response) | undefined;
  beforeAll(async () => {
    const fetchThrough: typeof fetch = async (input, init) => {
      const url = String(input instanceof Request ? input.url : input);
      if (keySetAnswer !== undefined && url.endsWith('/.well-known/jwks.json')) return keySetAnswer();
      return fetch(input, init);
    };
    h = await startHarness({ redis: true, bff: { fetch: fetchThrough } });
  });
  afterAll(() => h?.close());

  it('answers 502 idp_unavailable while it has none of the keys, refuses nothing, and ends the session once the keys load', async () => {
    const browser = h.browser();
    await browser.login();
    const sid = auth0SidOf(h);
    const now = Math.floor(Date.now() / 1000);
    const token = await h.auth0.admin.sign({ iss: h.auth0.issuer, aud: CLIENT_ID, iat: now, exp: now + 120, jti: crypto.randomUUID(), sid, sub: USER.sub, events: EVENT }, { typ: 'logout+jwt' });
    for (const answer of [() => new Response('upstream connect error', { status: 503 }), () => new Response('<html>maintenance</html>', { status: 200 })]) {
      keySetAnswer = answer;
      const res = await postLogoutToken(h.urls[0] as string, token);
      expect(res.status).toBe(502);
      expect(await res.json()).toMatchObject({ error: 'idp_unavailable' });
      expect((await browser.user()).status).toBe(200);
    }
    expect(h.events.filter((e) => e.name === 'backchannel_logout_rejected')).toEqual([]);

    keySetAnswer = undefined;
    expect((await postLogoutToken(h.urls[0] as string, token)).status).toBe(200);
    expect((await browser.user()).status).toBe(401);
  });
});

describe('a back-channel logout while the session store is briefly down', () => {
  const setup = behindRelay();

  // Auth0 delivers a logout token once: an outage of the store as it arrives must not leave the session alive.
  it('takes the logout token, and ends the session once the store answers again, reported once', async () => {
    const { h, relay } = setup;
    const browser = h.browser();
    await browser.login();
    expect((await browser.api('/api/items')).status).toBe(200);
    const client = h.redis as unknown as { isReady: boolean };

    relay.down();
    await waitFor(() => !client.isReady, 'the client to notice the outage');
    await h.auth0.admin.endSession({ sid: auth0SidOf(h) }, { backchannel: true });
    expect(h.auth0.admin.backchannelDeliveries().at(-1)?.status).toBe(200);

    relay.up();
    await waitFor(() => client.isReady, 'the client to reconnect', 10_000);
    await waitFor(async () => (await browser.api('/api/items')).status === 401, 'the session to end once the store answers', 10_000);
    // The logout is reported once the store has answered the end, which a call may see before it is reported.
    await waitFor(() => h.events.some((e) => e.name === 'logout'), 'the logout to be reported');
    expect(h.events.filter((e) => e.name === 'logout')).toEqual([{ name: 'logout', payload: expect.objectContaining({ reason: 'backchannel', sessions: 1 }) }]);
  });
});
