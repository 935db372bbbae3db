import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scriptedLogin } from '../../src/local-auth0/index.js';
import { startHarness, USER, type Browser, type Harness } from '../support/harness.js';

const sessionCookieSet = (res: Response) => res.headers.getSetCookie().some((c) => /^bff=[^;]/.test(c));

/**
 * `/auth/login?prompt=none` the way a page does it: the browser follows every redirect (Auth0 shows no page for
 * prompt=none) until it is back on the BFF's callback, which answers. Returns that answer and whether Auth0 showed
 * its login form on the way (it must not).
 */
async function silentLogin(browser: Browser, query: string): Promise<{ res: Response; loginFormShown: boolean }> {
  const start = await browser.request(`/auth/login?prompt=none&${query}`);
  expect(start.status).toBe(302);
  const { callbackUrl, loginFormShown } = await scriptedLogin(start.headers.get('location') as string, USER, { jar: browser.jar, stopAt: `${browser.url}/auth/callback` });
  return { res: await browser.request(callbackUrl), loginFormShown };
}

/** Forgets the BFF session cookie only: the BFF session is gone for this browser, its Auth0 session is not. */
function dropBffCookie(browser: Browser): void {
  browser.jar.set(browser.url, 'bff=; Max-Age=0; Path=/');
}

describe('silent login (prompt=none)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: true, bff: { allowedReturnTo: ['/app'] } });
  });
  afterAll(() => h?.close());

  it('logs the browser into the BFF without a page while its Auth0 session lives', async () => {
    const browser = h.browser();
    await browser.login('/app');
    dropBffCookie(browser);
    expect((await browser.user()).status).toBe(401);

    const { res, loginFormShown } = await silentLogin(browser, `returnTo=${encodeURIComponent('/app/page?tab=2')}`);
    expect(loginFormShown).toBe(false);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe(`${browser.url}/app/page?tab=2`);
    expect(sessionCookieSet(res)).toBe(true);
    const me = await browser.user();
    expect(me.status).toBe(200);
    expect(me.body.user.sub).toBe(USER.sub);
    expect((await browser.api('/api/items')).status).toBe(200);
  });

  it('sends the browser back to returnTo with error=login_required when Auth0 has no session, and creates no session', async () => {
    const browser = h.browser();
    const records = async () => (await h.redisKeys()).filter((key) => key.includes(':tok:')).length;
    const before = await records();
    const { res, loginFormShown } = await silentLogin(browser, `returnTo=${encodeURIComponent('/app/page?tab=2#top')}`);
    expect(loginFormShown).toBe(false);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe(`${browser.url}/app/page?tab=2&error=login_required#top`);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(sessionCookieSet(res)).toBe(false);
    expect((await browser.user()).status).toBe(401);
    expect(await records()).toBe(before);
  });

  it('finds no Auth0 session once the user logged out, so the silent login comes back with login_required', async () => {
    const browser = h.browser();
    await browser.login();
    const logoutUrl = (await browser.user()).body.logoutUrl as string;
    expect((await browser.request(logoutUrl)).status).toBe(302);

    const { res } = await silentLogin(browser, 'returnTo=/app');
    expect(res.headers.get('location')).toBe(`${browser.url}/app?error=login_required`);
    expect((await browser.user()).status).toBe(401);
  });

  it('comes back to returnTo with the error code, not an error page, when Auth0 cannot complete the code exchange', async () => {
    const browser = h.browser();
    await browser.login();
    dropBffCookie(browser);
    const start = await browser.request('/auth/login?prompt=none&returnTo=/app');
    const { callbackUrl } = await scriptedLogin(start.headers.get('location') as string, USER, { jar: browser.jar, stopAt: `${browser.url}/auth/callback` });
    h.auth0.admin.failTokenEndpoint({ status: 503 });
    try {
      const res = await browser.request(callbackUrl);
      expect(res.status).toBe(302);
      expect(res.headers.get('location')).toBe(`${browser.url}/app?error=idp_unavailable`);
      expect(sessionCookieSet(res)).toBe(false);
    } finally {
      h.auth0.admin.reset();
    }
    expect((await browser.user()).status).toBe(401);
  });

  it('redirects only to the returnTo of the login transaction: a forged callback gets 400 and no redirect', async () => {
    const forged = await h.browser().request(`/auth/callback?error=login_required&state=made-up&returnTo=${encodeURIComponent('https://evil.example/')}`);
    expect(forged.status).toBe(400);
    expect(forged.headers.get('location')).toBeNull();
    expect(await forged.json()).toMatchObject({ error: 'invalid_request' });

    // A genuine silent transaction, but the callback arrives in another browser (login CSRF): refused, no redirect.
    const victim = h.browser();
    const start = await h.browser().request('/auth/login?prompt=none&returnTo=/app');
    const state = new URL(start.headers.get('location') as string).searchParams.get('state') as string;
    const foreign = await victim.request(`/auth/callback?error=login_required&state=${encodeURIComponent(state)}`);
    expect(foreign.status).toBe(400);
    expect(foreign.headers.get('location')).toBeNull();

    // In the right browser, a returnTo in the callback URL is ignored: the transaction's own is used.
    const browser = h.browser();
    const own = await browser.request('/auth/login?prompt=none&returnTo=/app/own');
    const ownState = new URL(own.headers.get('location') as string).searchParams.get('state') as string;
    const res = await browser.request(`/auth/callback?error=login_required&state=${encodeURIComponent(ownState)}&returnTo=${encodeURIComponent('https://evil.example/')}`);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe(`${browser.url}/app/own?error=login_required`);
  });

  it.each([['consent_required', 'consent_required'], ['interaction_required', 'interaction_required'], ['<script>x</script>', 'login_failed']])(
    'passes on Auth0\'s error %s as %s (only an OAuth error code, else login_failed)',
    async (error, expected) => {
      const browser = h.browser();
      const start = await browser.request('/auth/login?prompt=none&returnTo=/app');
      const state = new URL(start.headers.get('location') as string).searchParams.get('state') as string;
      const res = await browser.request(`/auth/callback?error=${encodeURIComponent(error)}&state=${encodeURIComponent(state)}`);
      expect(res.headers.get('location')).toBe(`${browser.url}/app?error=${expected}`);
      expect((await browser.user()).status).toBe(401);
    },
  );

  it('still answers 400 login_failed when Auth0 refuses a login that was not silent', async () => {
    const browser = h.browser();
    const start = await browser.request('/auth/login?returnTo=/app');
    const state = new URL(start.headers.get('location') as string).searchParams.get('state') as string;
    const res = await browser.request(`/auth/callback?error=login_required&state=${encodeURIComponent(state)}`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'login_failed' });
  });
});
