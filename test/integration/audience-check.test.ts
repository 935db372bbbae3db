import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIENCE, startHarness, type Harness } from '../support/harness.js';
import { registerOtel, valueOf, type Otel } from '../support/otel.js';

// The app's OpenTelemetry SDK: the token requests' metric says what came of each.
const otel: Otel = registerOtel();
afterAll(() => otel.shutdown());

const OTHER = 'https://other-api.example.test';

const refreshes = (h: Harness) => h.auth0.admin.counts().token.refresh_token?.ok ?? 0;

describe('the audience of the access tokens Auth0 sends back', () => {
  describe('when the application\'s refresh token policy does not cover an API (Auth0 answers for the default audience)', () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness({
        redis: true,
        client: { refreshTokenPolicies: [] },
        apis: (upstream) => [{ mount: '/api', upstream }, { mount: '/other', upstream, audience: OTHER }],
      });
    });
    afterAll(() => h?.close());

    it('answers 500 configuration_error, forwards nothing, stores nothing, logs it once and logs nobody out', async () => {
      const browser = h.browser();
      await browser.login();
      const before = refreshes(h);
      const mismatches = async () => valueOf(await otel.points('bff.token.exchange.duration'), { 'bff.exchange.outcome': 'configuration', 'error.type': 'audience_mismatch', 'bff.audience': OTHER });
      const successes = async () => valueOf(await otel.points('bff.token.exchange.duration'), { 'bff.exchange.outcome': 'success', 'bff.audience': OTHER });
      const [mismatchesBefore, successesBefore] = [await mismatches(), await successes()];

      for (let i = 0; i < 2; i++) {
        const res = await browser.api('/other/things');
        expect(res.status).toBe(500);
        expect(await res.json()).toMatchObject({ error: 'configuration_error' });
      }
      // Auth0 did answer both exchanges, with a token for the login's API: neither was kept for /other.
      expect(refreshes(h)).toBe(before + 2);
      expect(h.upstream.requests.filter((r) => r.url.startsWith('/things'))).toEqual([]);
      expect(h.logs.filter((line) => line.startsWith('error') && line.includes(OTHER))).toHaveLength(1);
      expect(h.logs.filter((line) => line.startsWith('error'))).toHaveLength(1);
      expect(h.events).toContainEqual({ name: 'refresh_failed', payload: expect.objectContaining({ audience: OTHER, kind: 'configuration', error: 'audience_mismatch' }) });
      expect(h.events.filter((e) => e.name === 'logout')).toEqual([]);
      // Each of the two token requests is counted, as a configuration failure, not as a success.
      expect(await mismatches() - mismatchesBefore).toBe(2);
      expect(await successes() - successesBefore).toBe(0);

      // The session and the login API's token are untouched.
      expect((await browser.user()).status).toBe(200);
      expect((await browser.api('/api/items')).status).toBe(200);
      const sent = h.upstream.requests.at(-1)!;
      expect(decodeJwt((sent.headers.authorization as string).slice('Bearer '.length)).aud).toBe(AUDIENCE);
    });
  });

  describe('when an API\'s audience is one Auth0 does not know (a typo: Auth0 answers 403 access_denied "Service not found")', () => {
    const TYPO = 'https://api.exmaple.test';
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness({ redis: true, apis: (upstream) => [{ mount: '/api', upstream }, { mount: '/typo', upstream, audience: TYPO }] });
    });
    afterAll(() => h?.close());

    it('answers 500 configuration_error and logs nobody out: the next call to a well-configured API works', async () => {
      const browser = h.browser();
      await browser.login();

      const res = await browser.api('/typo/things');
      expect(res.status).toBe(500);
      expect(await res.json()).toMatchObject({ error: 'configuration_error' });
      expect(h.events).toContainEqual({ name: 'refresh_failed', payload: expect.objectContaining({ audience: TYPO, kind: 'configuration', error: 'audience_mismatch' }) });
      expect(h.events.filter((e) => e.name === 'logout')).toEqual([]);
      expect(h.upstream.requests.filter((r) => r.url.startsWith('/things'))).toEqual([]);

      expect((await browser.user()).status).toBe(200);
      expect((await browser.api('/api/items')).status).toBe(200);
    });
  });

  describe('when the refresh token policy covers the API', () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness({
        redis: true,
        client: { refreshTokenPolicies: [{ audience: OTHER }] },
        apis: (upstream) => [{ mount: '/api', upstream }, { mount: '/other', upstream, audience: OTHER }],
      });
    });
    afterAll(() => h?.close());

    it('sends each API a token of its own audience', async () => {
      const browser = h.browser();
      await browser.login();
      expect((await browser.api('/other/things')).status).toBe(200);
      expect((await browser.api('/api/items')).status).toBe(200);
      const [other, api] = h.upstream.requests.slice(-2).map((r) => decodeJwt((r.headers.authorization as string).slice('Bearer '.length)).aud);
      expect(other).toBe(OTHER);
      expect(api).toBe(AUDIENCE);
      expect(h.logs.filter((line) => line.startsWith('error'))).toEqual([]);
    });
  });

  describe('at login', () => {
    let h: Harness;
    beforeAll(async () => {
      // The emulator, like Auth0, issues the login's token for the audience asked for. To see what the BFF does with
      // one for another API, the code exchange's answer has its access token swapped on the way (nothing else).
      const swapLoginToken: typeof fetch = async (input, init) => {
        const response = await fetch(input, init);
        if (!String(input).endsWith('/oauth/token') || !String(init?.body).includes('grant_type=authorization_code')) return response;
        const body = await response.json() as Record<string, unknown>;
        const claims = { ...decodeJwt(body.access_token as string), aud: OTHER };
        body.access_token = ['eyJhbGciOiJSUzI1NiJ9', Buffer.from(JSON.stringify(claims)).toString('base64url'), 'c2ln'].join('.');
        return new Response(JSON.stringify(body), { status: response.status, headers: response.headers });
      };
      h = await startHarness({ redis: true, bff: { fetch: swapLoginToken } });
    });
    afterAll(() => h?.close());

    it('refuses a login whose access token is for another API: 500 configuration_error, no session', async () => {
      const browser = h.browser();
      const res = await browser.login();
      expect(res.status).toBe(500);
      expect(await res.json()).toMatchObject({ error: 'configuration_error' });
      expect(res.headers.getSetCookie().some((c) => /^bff=[^;]/.test(c))).toBe(false);
      expect((await browser.user()).status).toBe(401);
      expect(h.logs.filter((line) => line.startsWith('error') && line.includes(AUDIENCE))).toHaveLength(1);
    });
  });
});
