import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scriptedLogin } from '../../src/local-auth0/index.js';
import { startHarness, USER, type Harness } from '../support/harness.js';

const HOUR_S = 3600;
/** A user of an enterprise connection whose identity provider's session ends at a fixed time. */
const ENTERPRISE = { sub: 'oidc|bob', username: 'bob', password: 'bob-password', email: 'bob@example.com', name: 'Bob', session_expiry: Math.floor(Date.now() / 1000) + HOUR_S };
/** One whose identity provider's session ends in five minutes. */
const ENDING = { sub: 'oidc|carol', username: 'carol', password: 'carol-password', session_expiry: Math.floor(Date.now() / 1000) + 300 };

describe('the ID token session_expiry claim (an enterprise identity provider\'s session end)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      redis: true,
      bff: { routes: { sessions: true } },
      auth0: { users: [{ ...USER }, ENTERPRISE] },
    });
  });
  afterAll(() => h?.close());

  it('caps the BFF session\'s absolute lifetime: /auth/user and the session list say so, and the session ends then', async () => {
    const browser = h.browser();
    await browser.login(undefined, ENTERPRISE);
    const me = await browser.user();
    expect(me.status).toBe(200);
    expect(me.body.expiresAt).toBe(ENTERPRISE.session_expiry);
    expect(me.body.idleExpiresAt).toBeLessThanOrEqual(ENTERPRISE.session_expiry);
    const listed = (await (await browser.api('/auth/sessions')).json()).sessions;
    expect(listed[0].expiresAt).toBe(ENTERPRISE.session_expiry);
    // The emulator ends its own session at the same time, as Auth0 does.
    expect(h.auth0.admin.sessions().find((s) => s.sub === ENTERPRISE.sub)?.expiresAt).toBe(ENTERPRISE.session_expiry);

    h.clock.advance(30 * 60_000);
    expect((await browser.api('/api/items')).status).toBe(200);
    h.clock.advance(30 * 60_000 + 1_000);
    const res = await browser.api('/api/items');
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'session_ended' });
    expect(h.events.at(-1)).toMatchObject({ name: 'logout', payload: { reason: 'absolute_timeout', sub: ENTERPRISE.sub } });
  });

  it('leaves the configured absolute lifetime of a user without the claim as it is', async () => {
    const browser = h.browser();
    await browser.login();
    const me = (await browser.user()).body;
    expect(me.expiresAt - Math.floor(h.clock.now() / 1000)).toBeGreaterThan(6 * 24 * HOUR_S);
  });
});

describe('a session_expiry that has passed by the BFF\'s clock', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: true, auth0: { users: [ENDING] } });
  });
  afterAll(() => h?.close());

  it('refuses the login, and creates no session', async () => {
    const browser = h.browser();
    const start = await browser.request('/auth/login');
    const { callbackUrl } = await scriptedLogin(start.headers.get('location') as string, ENDING, { jar: browser.jar, stopAt: `${browser.url}/auth/callback` });
    // The BFF's clock runs six minutes ahead of the identity provider's: the session it names is over already.
    h.clock.advance(6 * 60_000);
    const res = await browser.request(callbackUrl);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'login_failed', error_description: expect.stringContaining('session_expiry') });
    expect(res.headers.getSetCookie().some((c) => /^bff=[^;]/.test(c))).toBe(false);
    expect((await browser.user()).status).toBe(401);
  });
});
