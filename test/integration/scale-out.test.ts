import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIENCE, startHarness, type Harness } from '../support/harness.js';

const OTHER = 'https://other-api.example.test';

describe('two BFF instances sharing Redis', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      redis: true,
      instances: 2,
      apis: (upstream) => [{ mount: '/api', upstream }, { mount: '/other', upstream, audience: OTHER }],
    });
  });
  afterAll(() => h?.close());

  it('accepts a cookie issued by the other instance', async () => {
    const browser = h.browser(0);
    await browser.login();
    browser.use(1);
    expect((await browser.user()).status).toBe(200);
    expect((await browser.api('/api/items')).status).toBe(200);
  });

  it('exchanges once when twenty requests spread over both instances arrive with an expired token', async () => {
    const browser = h.browser(0);
    await browser.login();
    h.clock.advance(61_000);
    const before = h.auth0.admin.counts().token.refresh_token?.ok ?? 0;
    const cookie = browser.jar.header(browser.url);
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => fetch(`${h.urls[i % 2]}/api/items`, { headers: { cookie, 'x-csrf': '1' } })),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect((h.auth0.admin.counts().token.refresh_token?.ok ?? 0) - before).toBe(1);
  });

  it('sees at once on one instance a logout made through the other', async () => {
    const browser = h.browser(0);
    await browser.login();
    const { body } = await browser.user();
    const other = h.browser(1);
    other.jar.set(other.url, browser.jar.header(browser.url).split('; ').find((c) => c.startsWith('bff=')) as string);
    expect((await other.user()).status).toBe(200);
    await browser.request(body.logoutUrl);
    expect((await other.user()).status).toBe(401);
    expect((await other.api('/api/items')).status).toBe(401);
  });

  it('keeps one access token per API audience from the one ORT (multi-resource refresh token)', async () => {
    const browser = h.browser(0);
    await browser.login();
    h.upstream.requests.length = 0;
    expect((await browser.api('/other/things')).status).toBe(200);
    expect((await browser.api('/api/items')).status).toBe(200);
    expect((await browser.api('/other/things')).status).toBe(200);
    const [first, second, third] = h.upstream.requests.map((r) => (r.headers.authorization as string).slice(7));
    const jwks = createRemoteJWKSet(new URL(`${h.auth0.issuer}.well-known/jwks.json`));
    await jwtVerify(first as string, jwks, { audience: OTHER, issuer: h.auth0.issuer });
    await jwtVerify(second as string, jwks, { audience: AUDIENCE, issuer: h.auth0.issuer });
    expect(third).toBe(first);
    expect(decodeJwt(first as string).aud).not.toEqual(decodeJwt(second as string).aud);
  });
});
