import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, TOKEN_SHAPED, USER, type Harness } from '../support/harness.js';

describe('login, user and logout against the local Auth0 emulator, with Redis', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: true });
  });
  afterAll(() => h?.close());

  it('logs in and shows the user, never a token', async () => {
    const browser = h.browser();
    const callback = await browser.login('/dashboard?tab=1');
    expect(callback.status).toBe(302);
    expect(callback.headers.get('location')).toBe(`${browser.url}/dashboard?tab=1`);
    const cookie = callback.headers.getSetCookie().find((c) => c.startsWith('bff='));
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Lax/i);

    const { status, body } = await browser.user();
    expect(status).toBe(200);
    expect(body.user).toMatchObject({ sub: USER.sub, email: USER.email });
    expect(body.user).not.toHaveProperty('nonce');
    expect(body.expiresAt).toBeGreaterThan(Date.now() / 1000);
    expect(body.idleExpiresAt).toBeLessThanOrEqual(body.expiresAt);
    expect(body.logoutUrl).toMatch(/^\/auth\/logout\?sid=[\w-]+$/);
    const text = JSON.stringify(body);
    for (const issued of h.auth0.admin.tokens()) expect(issued).not.toHaveProperty('value');
    expect(text).not.toMatch(TOKEN_SHAPED);
  });

  it('keeps the ORT in Redis, and in no answer the browser got', async () => {
    const browser = h.browser();
    const answers: string[] = [];
    const start = await browser.request('/auth/login');
    answers.push(JSON.stringify([...start.headers]));
    const { scriptedLogin } = await import('../../src/local-auth0/index.js');
    const { callbackUrl } = await scriptedLogin(start.headers.get('location') as string, USER, { jar: browser.jar, stopAt: `${browser.url}/auth/callback` });
    const callback = await browser.request(callbackUrl);
    answers.push(JSON.stringify([...callback.headers]), await callback.text());
    const user = await browser.request('/auth/user');
    answers.push(JSON.stringify([...user.headers]), await user.text());

    const tokKeys = (await h.redisKeys()).filter((k) => k.includes(':tok:'));
    expect(tokKeys.length).toBeGreaterThan(0);
    const r = h.redis as unknown as { hGetAll(k: string): Promise<Record<string, string>> };
    const refreshTokens = (await Promise.all(tokKeys.map((k) => r.hGetAll(k)))).map((f) => f.rt).filter(Boolean) as string[];
    expect(refreshTokens.length).toBe(tokKeys.length);
    for (const rt of refreshTokens) {
      expect(rt.startsWith('ORT')).toBe(true);
      for (const answer of answers) expect(answer).not.toContain(rt);
    }
    for (const line of h.logs) for (const rt of refreshTokens) expect(line).not.toContain(rt);
    for (const event of h.events) for (const rt of refreshTokens) expect(JSON.stringify(event)).not.toContain(rt);
  });

  it('answers 401 login_required without a session', async () => {
    const res = await h.browser().request('/auth/user');
    expect(res.status).toBe(401);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual({ error: 'login_required', error_description: expect.any(String) });
  });

  it('logs out: revokes the ORT at Auth0, ends its session, and sends the browser to Auth0\'s logout', async () => {
    const browser = h.browser();
    await browser.login();
    const { body } = await browser.user();
    const before = h.auth0.admin.counts().revocations;
    const sessionsBefore = h.auth0.admin.sessions().filter((s) => s.sub === USER.sub).length;
    const deliveriesBefore = h.auth0.admin.backchannelDeliveries().length;
    h.events.length = 0;

    const res = await browser.request(body.logoutUrl);
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get('location') as string);
    expect(location.href.startsWith(`${h.auth0.issuer}oidc/logout`)).toBe(true);
    expect(location.searchParams.get('post_logout_redirect_uri')).toBe(`${browser.url}/`);
    expect(location.href).not.toMatch(TOKEN_SHAPED);
    expect(res.headers.getSetCookie().some((c) => /^bff=;/.test(c))).toBe(true);

    expect(h.auth0.admin.counts().revocations).toBe(before + 1);
    expect(h.auth0.admin.sessions().filter((s) => s.sub === USER.sub).length).toBeLessThan(sessionsBefore);
    expect((await browser.user()).status).toBe(401);
    // Like Auth0 may, the emulator sends a back-channel logout for the revocation the BFF made: that is the same
    // logout, reported once, as the user's.
    expect(h.auth0.admin.backchannelDeliveries().slice(deliveriesBefore)).toEqual([expect.objectContaining({ status: 200 })]);
    expect(h.events.filter((e) => e.name === 'logout')).toEqual([{ name: 'logout', payload: expect.objectContaining({ reason: 'user', sessions: 1, revoked: true }) }]);
  });
});
