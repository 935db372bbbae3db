import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { scriptedLogin } from '../../src/local-auth0/scripted-login.js';
import { AUDIENCE, USER, deadPort, startHarness, waitFor, type Harness } from '../support/harness.js';
import { registerOtel, valueOf, type Otel } from '../support/otel.js';
import { behindRelay } from '../support/behind-relay.js';
import { openSocket, opened } from '../support/ws-client.js';

// The SDK is registered before any BFF is created, as OpenTelemetry asks of an app (this file's process only).
const otel: Otel = registerOtel();
afterAll(() => otel.shutdown());

const attributesOf = (span: { attributes: Record<string, unknown> }) => span.attributes;

describe('OpenTelemetry traces and metrics of the proxy and the token renewals', () => {
  let h: Harness;
  let deadUpstream: string;
  beforeAll(async () => {
    deadUpstream = `http://127.0.0.1:${await deadPort()}`;
    h = await startHarness({
      redis: true,
      instances: 2,
      bff: { logLevel: 'debug' },
      apis: (upstream) => [{ mount: '/api', upstream }, { mount: '/down', upstream: deadUpstream }],
    });
  });
  afterAll(() => h?.close());
  beforeEach(() => {
    h.auth0.admin.reset();
    h.upstream.requests.length = 0;
  });

  it('makes an HTTP client span per proxied call, and the upstream continues its trace (W3C traceparent)', async () => {
    const browser = h.browser();
    await browser.login();
    const before = otel.spans('GET').length;
    const res = await browser.api('/api/items?color=blue&sig=secret', {
      // What the browser claims is not passed on: the upstream gets the BFF's own span as its parent.
      headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
    });
    expect(res.status).toBe(200);

    const span = otel.spans('GET').slice(before)[0];
    expect(span?.kind).toBe(SpanKind.CLIENT);
    expect(attributesOf(span as never)).toMatchObject({
      'http.request.method': 'GET',
      'http.response.status_code': 200,
      'server.address': '127.0.0.1',
      'server.port': Number(new URL(h.upstream.url).port),
      'url.full': `${h.upstream.url}/items?color=REDACTED&sig=REDACTED`,
      'bff.api': '/api',
    });
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
    const { traceId, spanId } = span?.spanContext() as { traceId: string; spanId: string };
    expect(h.upstream.requests.at(-1)?.headers.traceparent).toBe(`00-${traceId}-${spanId}-01`);

    const durations = await otel.points('http.client.request.duration');
    expect(valueOf(durations, { 'bff.api': '/api', 'http.response.status_code': 200, 'http.request.method': 'GET' })).toBeGreaterThanOrEqual(1);
  });

  it('names a method outside HTTP\'s common ones _OTHER, with the method as sent beside it, and redacts a query part that is a value alone', async () => {
    const browser = h.browser();
    await browser.login();
    const before = otel.spans('HTTP').length;
    const res = await browser.api('/api/calendar?eyJhbGciOiJIUzI1NiJ9.magic-link-token', { method: 'PROPFIND' });
    expect(res.status).toBe(200);

    const span = otel.spans('HTTP').slice(before)[0];
    expect(attributesOf(span as never)).toMatchObject({
      'http.request.method': '_OTHER',
      'http.request.method_original': 'PROPFIND',
      'url.full': `${h.upstream.url}/calendar?REDACTED`,
    });
    const durations = await otel.points('http.client.request.duration');
    expect(valueOf(durations, { 'bff.api': '/api', 'http.request.method': '_OTHER' })).toBeGreaterThanOrEqual(1);
    expect(JSON.stringify(durations)).not.toContain('PROPFIND');
  });

  it('makes a second client span, with http.request.resend_count, for the call replayed after a renewed token', async () => {
    const browser = h.browser();
    await browser.login();
    let calls = 0;
    h.upstream.handler = (_req, res) => {
      if (calls++ === 0) {
        res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' });
        return void res.end();
      }
      res.end('{}');
    };
    const before = otel.spans('GET').length;
    try {
      expect((await browser.api('/api/items')).status).toBe(200);
    } finally {
      h.upstream.handler = undefined;
    }
    const [first, replay] = otel.spans('GET').slice(before);
    expect(first?.attributes).toMatchObject({ 'http.response.status_code': 401, 'error.type': '401' });
    expect(first?.attributes['http.request.resend_count']).toBeUndefined();
    expect(replay?.attributes).toMatchObject({ 'http.response.status_code': 200, 'http.request.resend_count': 1 });
    expect(otel.spans('bff.token.renewal').at(-1)?.attributes['bff.single_flight']).toBe('led');
    expect(h.logs).toContainEqual(expect.stringMatching(/^debug Token exchange started: the API refused the access token/));
  });

  it('records an upstream that cannot be reached: the span fails with its cause, and the failure is counted', async () => {
    const browser = h.browser();
    await browser.login();
    expect((await browser.api('/down/items')).status).toBe(502);

    const span = otel.spans('GET').find((s) => s.attributes['bff.api'] === '/down');
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.attributes['error.type']).toBe('ECONNREFUSED');
    expect(valueOf(await otel.points('bff.upstream.errors'), { 'bff.api': '/down', 'error.type': 'ECONNREFUSED' })).toBe(1);
    expect(valueOf(await otel.points('http.client.request.duration'), { 'bff.api': '/down', 'error.type': 'ECONNREFUSED' })).toBe(1);
  });

  it('makes a client span per WebSocket handshake, whose context the upstream gets in place of the browser\'s', async () => {
    const browser = h.browser();
    await browser.login();
    const before = otel.spans('GET').length;
    const socket = opened(await openSocket(browser, '/api/live?room=1', {
      headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'evil=1', baggage: 'userId=alice' },
    }));
    socket.ws.close();

    const span = otel.spans('GET').slice(before)[0];
    expect(span?.kind).toBe(SpanKind.CLIENT);
    expect(attributesOf(span as never)).toMatchObject({
      'http.request.method': 'GET',
      'http.response.status_code': 101,
      'url.full': `${h.upstream.url}/live?room=REDACTED`,
      'bff.api': '/api',
    });
    const { traceId, spanId } = span?.spanContext() as { traceId: string; spanId: string };
    const handshake = h.upstream.upgrades.at(-1)?.headers;
    expect(handshake?.traceparent).toBe(`00-${traceId}-${spanId}-01`);
    expect(handshake).not.toHaveProperty('tracestate');
    expect(handshake).not.toHaveProperty('baggage');
  });

  it('fails the span of a handshake whose upstream cannot be reached, and counts the failure', async () => {
    const browser = h.browser();
    await browser.login();
    const before = otel.spans('GET').length;
    const down = opened(await openSocket(browser, '/down/live'));
    expect(await down.closed).toMatchObject({ code: 1014 });
    const span = otel.spans('GET').slice(before)[0];
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.attributes['error.type']).toBe('ECONNREFUSED');
    expect(valueOf(await otel.points('bff.upstream.errors'), { 'bff.api': '/down', 'error.type': 'ECONNREFUSED' })).toBeGreaterThanOrEqual(1);
  });

  it('makes a renewal span per request that needed a new token: one led the exchange, the others joined it', async () => {
    const browser = h.browser();
    await browser.login();
    const renewalsBefore = await otel.points('bff.token.renewals');
    const exchangesBefore = valueOf(await otel.points('bff.token.exchange.duration'), { 'bff.exchange.outcome': 'success' });
    const spansBefore = otel.spans('bff.token.renewal').length;
    h.clock.advance(3_600_000);
    // A slow token endpoint, so that the calls arrive while the exchange is under way.
    h.auth0.admin.failTokenEndpoint({ delayMs: 300 });
    const answers = await Promise.all(Array.from({ length: 5 }, () => browser.api('/api/items')));
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);

    const spans = otel.spans('bff.token.renewal').slice(spansBefore);
    const roles = spans.map((s) => s.attributes['bff.single_flight']);
    expect(roles.filter((r) => r === 'led')).toHaveLength(1);
    expect(roles.filter((r) => r === 'joined').length).toBeGreaterThanOrEqual(1);
    expect(roles.every((r) => r === 'led' || r === 'joined')).toBe(true);
    expect(spans.every((s) => s.attributes['bff.audience'] === AUDIENCE && /^[\w-]{10}$/.test(String(s.attributes['bff.session_ref'])))).toBe(true);
    const renewals = await otel.points('bff.token.renewals');
    expect(valueOf(renewals, { 'bff.single_flight': 'led' }) - valueOf(renewalsBefore, { 'bff.single_flight': 'led' })).toBe(1);
    expect(valueOf(renewals, { 'bff.single_flight': 'joined' }) - valueOf(renewalsBefore, { 'bff.single_flight': 'joined' })).toBe(roles.length - 1);
    expect(valueOf(await otel.points('bff.token.exchange.duration'), { 'bff.exchange.outcome': 'success', 'bff.audience': AUDIENCE }) - exchangesBefore).toBe(1);
    expect(h.logs.filter((l) => l.startsWith('debug Joined the token exchange under way'))).toHaveLength(roles.length - 1);
  });

  it('marks the request that waited for another process\'s exchange as waited', async () => {
    const browser = h.browser();
    await browser.login();
    const spansBefore = otel.spans('bff.token.renewal').length;
    h.clock.advance(3_600_000);
    // Slower than the other instance takes to ask, faster than the harness's attempt timeout (500 ms).
    h.auth0.admin.failTokenEndpoint({ delayMs: 300 });
    const first = browser.api('/api/items');
    // Instance 0 holds the session's exchange lock in Redis: instance 1 has to wait for its result.
    await waitFor(async () => (await h.redisKeys()).some((k) => k.startsWith(`${h.prefix}lock:`)), 'instance 0 takes the exchange lock');
    const second = h.browser(1);
    second.jar.set(second.url, browser.jar.header(browser.url).split('; ').find((c) => c.startsWith('bff=')) as string);
    const [a, b] = await Promise.all([first, second.api('/api/items')]);
    expect([a.status, b.status]).toEqual([200, 200]);

    const roles = otel.spans('bff.token.renewal').slice(spansBefore).map((s) => s.attributes['bff.single_flight']).sort();
    expect(roles).toEqual(['led', 'waited']);
    expect(h.logs).toContainEqual(expect.stringMatching(/^debug Waiting for the token exchange that another process holds the lock for \{"sessionRef":"[\w-]{10}","audience":/));
    expect(h.logs).toContainEqual(expect.stringMatching(/^debug Took the token another process stored/));
    expect(valueOf(await otel.points('bff.token.renewals'), { 'bff.single_flight': 'waited' })).toBeGreaterThanOrEqual(1);
  });

  it('records a refused exchange with its outcome, and the session ended by it as a logout by reason', async () => {
    const browser = h.browser();
    await browser.login();
    const before = valueOf(await otel.points('bff.logouts'), { 'bff.logout.reason': 'session_ended' });
    await h.auth0.admin.endSession({ sub: 'auth0|alice' });
    h.clock.advance(3_600_000);
    expect((await browser.api('/api/items')).status).toBe(401);

    const span = otel.spans('bff.token.renewal').at(-1);
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.attributes['error.type']).toBe('session_ended');
    expect(span?.events.map((e) => e.attributes?.['bff.exchange.outcome'])).toEqual(['terminal']);
    expect(valueOf(await otel.points('bff.token.exchange.duration'), { 'bff.exchange.outcome': 'terminal', 'error.type': 'invalid_grant' })).toBeGreaterThanOrEqual(1);
    expect(valueOf(await otel.points('bff.logouts'), { 'bff.logout.reason': 'session_ended' }) - before).toBe(1);
  });

  it("counts an error code the token endpoint does not define as _OTHER, and passes on no text that is not an error code", async () => {
    const browser = h.browser();
    await browser.login();
    const otherBefore = valueOf(await otel.points('bff.token.exchange.duration'), { 'bff.exchange.outcome': 'configuration', 'error.type': '_OTHER' });
    const eventsBefore = h.events.length;
    // A WAF in front of the tenant that answers in JSON, with an error of its own, then with a page in `error`.
    h.auth0.admin.failTokenEndpoint({ status: 400, body: { error: 'waf_rule_81412' } }, { times: 1 });
    h.clock.advance(3_600_000);
    expect((await browser.api('/api/items')).status).toBe(500);
    h.auth0.admin.failTokenEndpoint({ status: 400, body: { error: '<html><title>Request blocked</title> ref 5e1f</html>' } }, { times: 1 });
    expect((await browser.api('/api/items')).status).toBe(500);

    const failed = h.events.slice(eventsBefore).filter((e) => e.name === 'refresh_failed').map((e) => (e.payload as { error: string }).error);
    expect(failed).toEqual(['waf_rule_81412', 'invalid_response']);
    expect(h.logs.join('\n')).not.toContain('Request blocked');
    const points = await otel.points('bff.token.exchange.duration');
    expect(valueOf(points, { 'bff.exchange.outcome': 'configuration', 'error.type': '_OTHER' }) - otherBefore).toBe(1);
    expect(points.some((p) => p.attributes['error.type'] === 'waf_rule_81412')).toBe(false);
    // Nobody is logged out by it: the session answers once the tenant does.
    expect((await browser.api('/api/items')).status).toBe(200);
  });
});

describe('OpenTelemetry spans and metrics of login, logout and back-channel logout', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: true });
  });
  afterAll(() => h?.close());

  it('makes a span for the login callback, and counts the login', async () => {
    const before = valueOf(await otel.points('bff.logins'));
    const browser = h.browser();
    expect((await browser.login()).status).toBe(302);
    const span = otel.spans('bff.login.callback').at(-1);
    expect(span?.attributes).toMatchObject({ 'http.response.status_code': 302, 'bff.session_ref': expect.stringMatching(/^[\w-]{10}$/) });
    expect(valueOf(await otel.points('bff.logins')) - before).toBe(1);
  });

  it('fails the span of a callback the browser left before its answer, with no status code it never got', async () => {
    let tokenRequested!: () => void;
    const requested = new Promise<void>((resolve) => (tokenRequested = resolve));
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    // Auth0's answer to the code exchange waits until the browser has left.
    const fetchHeld: typeof fetch = async (input, init) => {
      if (String(input instanceof Request ? input.url : input).endsWith('/oauth/token')) {
        tokenRequested();
        await held;
      }
      return fetch(input, init);
    };
    const left = await startHarness({ redis: true, bff: { fetch: fetchHeld } });
    try {
      const browser = left.browser();
      const start = await browser.request('/auth/login');
      const { callbackUrl } = await scriptedLogin(start.headers.get('location') as string, USER, { jar: browser.jar, stopAt: `${browser.url}/auth/callback` });
      const before = otel.spans('bff.login.callback').length;
      const leaving = new AbortController();
      const answer = browser.request(callbackUrl, { signal: leaving.signal }).catch((error: Error) => error.name);
      await requested;
      leaving.abort();
      expect(await answer).toBe('AbortError');
      await waitFor(() => otel.spans('bff.login.callback').length > before, 'the callback span ends');
      release();

      const span = otel.spans('bff.login.callback').at(-1);
      expect(span?.status.code).toBe(SpanStatusCode.ERROR);
      expect(span?.attributes['error.type']).toBe('aborted');
      expect(span?.attributes).not.toHaveProperty('http.response.status_code');
      await waitFor(() => left.events.some((e) => e.name === 'login'), 'the login completes all the same');
    } finally {
      release();
      await left.close();
    }
  });

  it('makes a failed span for a refused callback, with its error code', async () => {
    const res = await fetch(`${h.urls[0]}/auth/callback?state=forged&code=forged`, { redirect: 'manual' });
    expect(res.status).toBe(400);
    const span = otel.spans('bff.login.callback').at(-1);
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.attributes).toMatchObject({ 'http.response.status_code': 400, 'error.type': 'invalid_request' });
  });

  /** Starts a silent login in `browser` and follows Auth0's redirects back to the BFF's callback URL. */
  async function silentCallback(browser: ReturnType<Harness['browser']>): Promise<string> {
    const start = await browser.request('/auth/login?prompt=none');
    expect(start.status).toBe(302);
    const { callbackUrl } = await scriptedLogin(start.headers.get('location') as string, USER, { jar: browser.jar, stopAt: `${browser.url}/auth/callback` });
    return callbackUrl;
  }

  it('leaves the span of a silent login that found no Auth0 session unfailed, with Auth0\'s answer on it', async () => {
    // No Auth0 session: login_required is the answer the SPA asked for, on every anonymous visit.
    const browser = h.browser();
    const res = await browser.request(await silentCallback(browser));
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toMatch(/[?&]error=login_required(&|#|$)/);
    const span = otel.spans('bff.login.callback').at(-1);
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
    expect(span?.attributes).toMatchObject({ 'http.response.status_code': 302, 'bff.login.silent_answer': 'login_required' });
    expect(span?.attributes).not.toHaveProperty('error.type');
  });

  it('fails the span of a silent login Auth0 could not complete, although the browser is sent back with a redirect', async () => {
    const browser = h.browser();
    await browser.login();
    browser.jar.set(browser.url, 'bff=; Max-Age=0; Path=/');
    const callbackUrl = await silentCallback(browser);
    h.auth0.admin.failTokenEndpoint({ status: 503 });
    try {
      const res = await browser.request(callbackUrl);
      expect(res.status).toBe(302);
      expect(res.headers.get('location')).toMatch(/[?&]error=idp_unavailable(&|#|$)/);
    } finally {
      h.auth0.admin.reset();
    }
    const span = otel.spans('bff.login.callback').at(-1);
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.attributes).toMatchObject({ 'http.response.status_code': 302, 'error.type': 'idp_unavailable' });
    expect(span?.attributes).not.toHaveProperty('bff.login.silent_answer');
  });

  it('fails the span of a logout or back-channel logout whose form body cannot be read, with its error code', async () => {
    const browser = h.browser();
    await browser.login();
    const tooLarge = new URLSearchParams({ filler: 'x'.repeat(5_000) }).toString();
    const logout = await browser.request('/auth/logout', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: tooLarge });
    expect(logout.status).toBe(400);
    expect(await logout.json()).toMatchObject({ error: 'invalid_request' });
    expect(otel.spans('bff.logout').at(-1)).toMatchObject({
      status: { code: SpanStatusCode.ERROR },
      attributes: expect.objectContaining({ 'http.response.status_code': 400, 'error.type': 'invalid_request' }),
    });
    expect((await browser.user()).status).toBe(200);

    const backchannel = await fetch(`${h.urls[0]}/auth/backchannel-logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=koi8-r' },
      body: 'logout_token=x',
    });
    expect(backchannel.status).toBe(400);
    expect(otel.spans('bff.backchannel_logout').at(-1)).toMatchObject({
      status: { code: SpanStatusCode.ERROR },
      attributes: expect.objectContaining({ 'http.response.status_code': 400, 'error.type': 'invalid_request' }),
    });
  });

  it('makes a logout span with the reason, and counts one logout although Auth0 sent a back-channel logout for it', async () => {
    const browser = h.browser();
    await browser.login();
    const logoutsBefore = await otel.points('bff.logouts');
    const backchannelBefore = otel.spans('bff.backchannel_logout').length;
    const { body } = await browser.user();
    expect((await browser.request(body.logoutUrl)).status).toBe(302);

    expect(otel.spans('bff.logout').at(-1)?.attributes).toMatchObject({ 'bff.logout.reason': 'user', 'bff.logout.sessions': 1, 'bff.logout.revoked': true, 'http.response.status_code': 302 });
    // The back-channel logout Auth0 sent for the revocation found nothing left to end.
    const backchannel = otel.spans('bff.backchannel_logout').slice(backchannelBefore);
    expect(backchannel.map((s) => s.attributes)).toEqual([expect.objectContaining({ 'bff.logout.reason': 'backchannel', 'bff.logout.sessions': 0, 'http.response.status_code': 200 })]);
    const logouts = await otel.points('bff.logouts');
    expect(valueOf(logouts, { 'bff.logout.reason': 'user' }) - valueOf(logoutsBefore, { 'bff.logout.reason': 'user' })).toBe(1);
    expect(valueOf(logouts, { 'bff.logout.reason': 'backchannel' })).toBe(valueOf(logoutsBefore, { 'bff.logout.reason': 'backchannel' }));
  });

  it('makes a back-channel logout span for a logout Auth0 started, and counts it by its reason', async () => {
    const browser = h.browser();
    await browser.login();
    const before = valueOf(await otel.points('bff.logouts'), { 'bff.logout.reason': 'backchannel' });
    const sid = h.auth0.admin.sessions().filter((s) => s.sub === 'auth0|alice').at(-1)?.sid as string;
    await h.auth0.admin.endSession({ sid }, { backchannel: true });
    expect((await browser.user()).status).toBe(401);
    expect(otel.spans('bff.backchannel_logout').at(-1)?.attributes).toMatchObject({ 'bff.logout.reason': 'backchannel', 'bff.logout.sessions': 1 });
    expect(valueOf(await otel.points('bff.logouts'), { 'bff.logout.reason': 'backchannel' }) - before).toBe(1);
  });
});

describe('OpenTelemetry metrics of the session store', () => {
  const setup = behindRelay();

  it('counts the requests the session store failed, by operation', async () => {
    const { h, relay } = setup;
    const browser = h.browser();
    await browser.login();
    relay.freeze();
    try {
      expect((await browser.api('/api/items')).status).toBe(503);
    } finally {
      relay.up();
    }
    expect(valueOf(await otel.points('bff.session_store.errors'), { 'bff.operation': 'api' })).toBe(1);
  });
});

describe('the active sessions gauge (memory sessions)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h?.close());

  it('counts the live sessions of this process', async () => {
    const browser = h.browser();
    await browser.login();
    expect(valueOf(await otel.points('bff.session.active'))).toBe(1);
    const { body } = await browser.user();
    await browser.request(body.logoutUrl);
    expect(valueOf(await otel.points('bff.session.active'))).toBe(0);
  });
});
