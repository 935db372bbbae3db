import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { validateOptions, type BffConfig } from '../../src/config/validate.js';
import { BffError, ErrorCode } from '../../src/errors.js';
import { BffEventEmitter } from '../../src/events/events.js';
import { Reporter } from '../../src/events/reporter.js';
import { IdpClient } from '../../src/idp/idp-client.js';
import type { SessionBackend } from '../../src/session/backend.js';
import { plainCipher } from '../../src/session/encryption.js';
import { createMemoryBackend } from '../../src/session/memory-backend.js';
import { Sessions } from '../../src/session/sessions.js';
import { ClientTokens } from '../../src/tokens/client-tokens.js';
import type { WaitTiming } from '../../src/tokens/token-manager.js';

const ISSUER = 'https://tenant.example/';
const API = 'https://api.example.test';

/** Auth0 at the fetch layer: discovery, and a token endpoint answering each request with `answer(form, n)`. */
function fakeTenant(answer: (form: URLSearchParams, n: number) => Response | Promise<Response>, issuer = ISSUER) {
  const requests: URLSearchParams[] = [];
  const fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = String(input instanceof Request ? input.url : input);
    if (url.endsWith('/.well-known/openid-configuration')) {
      return Response.json({ issuer, authorization_endpoint: `${issuer}authorize`, token_endpoint: `${issuer}oauth/token`, jwks_uri: `${issuer}jwks` });
    }
    const form = new URLSearchParams(String(init?.body ?? ''));
    requests.push(form);
    return answer(form, requests.length);
  };
  return { requests, fetch: fetch as typeof globalThis.fetch };
}
const issued = (token: string, expiresIn = 3600) => Response.json({ access_token: token, token_type: 'Bearer', expires_in: expiresIn });
const rateLimited = (seconds: number) => Response.json({ error: 'too_many_requests' }, { status: 429, headers: { 'retry-after': String(seconds) } });

describe('the application\'s own tokens', () => {
  let now = 0;
  let logs: string[];
  let backend: SessionBackend;
  let idps: IdpClient[];
  let closing: Array<() => void>;
  let events: BffEventEmitter;

  /** One BFF process: its config, Auth0 client and token store, over the shared backend. */
  const process = (fetch: typeof globalThis.fetch, waits?: { timing: WaitTiming; exchangeDeadline: number }, app: { issuer?: string; clientId?: string } = {}): { tokens: ClientTokens; config: BffConfig } => {
    const config = validateOptions({
      issuer: app.issuer ?? ISSUER, clientId: app.clientId ?? 'bff', clientSecret: 'bff-secret', audience: API, baseURL: 'https://app.example',
      session: { secrets: ['a-session-secret-of-at-least-32-characters'] },
      clock: () => now, fetch,
      logger: { warn: (m) => logs.push(`warn ${m}`), error: (m) => logs.push(`error ${m}`) },
      tokens: { exchangeDeadline: waits?.exchangeDeadline ?? 2_000, attemptTimeout: 500 },
    });
    const idp = new IdpClient(config);
    idps.push(idp);
    const report = new Reporter(events, config.logger);
    const sessions = new Sessions(config, backend, report);
    closing.push(() => sessions.close());
    return { tokens: new ClientTokens(config, idp, backend, report, sessions, waits?.timing), config };
  };

  /** Resolves once a process finds the lock taken: the other process is then waiting for it. */
  const lockRefused = (): Promise<void> => new Promise((resolve) => {
    const acquire = backend.acquireLock.bind(backend);
    backend.acquireLock = async (...args) => {
      const taken = await acquire(...args);
      if (!taken) resolve();
      return taken;
    };
  });

  beforeEach(() => {
    now = Date.now();
    logs = [];
    idps = [];
    closing = [];
    events = new BffEventEmitter();
    backend = createMemoryBackend(plainCipher, 60_000, () => now);
  });
  afterEach(async () => {
    for (const idp of idps) idp.close();
    for (const close of closing) close();
    await backend.close();
  });

  it('asks for the API\'s permissions without OpenID scopes, and shares one token between APIs of one audience and scope', async () => {
    const tenant = fakeTenant(() => issued('AT-app-1'));
    const { tokens } = process(tenant.fetch);
    const api = tokens.forApi(API, 'openid profile read:things');
    expect(tokens.forApi(API, 'read:things')).toBe(api);
    expect(tokens.forApi(API, undefined)).not.toBe(api);
    expect((await api.token()).token).toBe('AT-app-1');
    expect(Object.fromEntries(tenant.requests[0]!)).toMatchObject({ grant_type: 'client_credentials', audience: API, scope: 'read:things' });
    await tokens.forApi(API, 'openid').token();
    expect(tenant.requests[1]!.has('scope')).toBe(false);
  });

  it('says in the client_token event how long the grant took with its retries, not the last request alone', async () => {
    let firstAt = 0;
    let lastAt = 0;
    const tenant = fakeTenant(async (_form, n) => {
      if (n > 1) {
        lastAt = performance.now();
        return issued('AT-app-1');
      }
      firstAt = performance.now();
      await new Promise((resolve) => setTimeout(resolve, 50));
      return Response.json({ error: 'server_error' }, { status: 503 });
    });
    const durations: number[] = [];
    events.on('client_token', ({ durationMs }) => void durations.push(durationMs));
    const { tokens } = process(tenant.fetch);
    expect((await tokens.forApi(API, undefined).token()).token).toBe('AT-app-1');
    expect(durations).toHaveLength(1);
    expect(durations[0]).toBeGreaterThanOrEqual(Math.floor(lastAt - firstAt));
  });

  it('still backs off when every answer is a 429 with Retry-After: 0: a bounded number of requests to a rate-limited Auth0', async () => {
    const tenant = fakeTenant(() => Response.json({ error: 'too_many_requests' }, { status: 429, headers: { 'retry-after': '0' } }));
    const { tokens } = process(tenant.fetch, { timing: { pollMs: 25, watchedPollMs: 250 }, exchangeDeadline: 1_000 });
    await expect(Promise.resolve().then(() => tokens.forApi(API, undefined).token())).rejects.toMatchObject({ code: 'token_service_unavailable' });
    expect(tenant.requests.length).toBeGreaterThanOrEqual(2);
    expect(tenant.requests.length).toBeLessThanOrEqual(15);
  });

  it('gives back a lock the store took but answered too late: the next call gets a token instead of waiting out its expiry', async () => {
    const tenant = fakeTenant(() => issued('AT-app-1'));
    const { tokens } = process(tenant.fetch, { timing: { pollMs: 25, watchedPollMs: 250 }, exchangeDeadline: 1_000 });
    const acquire = backend.acquireLock.bind(backend);
    let late = true;
    backend.acquireLock = async (...args) => {
      const taken = await acquire(...args);
      if (!late) return taken;
      late = false;
      throw new BffError(ErrorCode.SESSION_STORE_UNAVAILABLE, 'The session store did not answer in time.');
    };
    const slot = tokens.forApi(API, undefined);
    await expect(Promise.resolve().then(() => slot.token())).rejects.toMatchObject({ code: 'session_store_unavailable' });
    // The store answers again: the lock it took is given back, and the next call renews within its deadline.
    expect((await slot.token()).token).toBe('AT-app-1');
  });

  it('takes its turn when the process holding the lock gives up without a token', async () => {
    const otherWaiting = lockRefused();
    const tenant = fakeTenant(async (_form, n) => {
      if (n > 1) return issued('AT-app-2');
      await otherWaiting;
      return Response.json({ error: 'too_many_requests' }, { status: 429, headers: { 'retry-after': '60' } });
    });
    const [a, b] = [process(tenant.fetch), process(tenant.fetch)];
    const [first, second] = await Promise.allSettled([a.tokens.forApi(API, undefined).token(), b.tokens.forApi(API, undefined).token()]);
    expect(first).toMatchObject({ status: 'rejected', reason: { code: ErrorCode.TOKEN_SERVICE_UNAVAILABLE, retryAfter: 60 } });
    expect(second).toMatchObject({ status: 'fulfilled', value: { token: 'AT-app-2' } });
    expect(tenant.requests).toHaveLength(2);
  });

  it('hands a process waiting for another\'s exchange the token as soon as it is stored, not at its next read', async () => {
    const otherWaiting = lockRefused();
    const tenant = fakeTenant(async () => {
      await otherWaiting;
      return issued('AT-app-1');
    });
    // A deadline and reads on a timer an hour away: only the store's word can bring the waiter its token in time.
    const HOUR = 3_600_000;
    const [a, b] = [process(tenant.fetch), process(tenant.fetch, { timing: { pollMs: HOUR, watchedPollMs: HOUR }, exchangeDeadline: HOUR })];
    const [first, second] = await Promise.all([a.tokens.forApi(API, undefined).token(), b.tokens.forApi(API, undefined).token()]);
    expect([first.token, second.token]).toEqual(['AT-app-1', 'AT-app-1']);
    expect(tenant.requests).toHaveLength(1);
  });

  it('takes a token another process stored while it waited, even one too short for the refresh margin, and warns once', async () => {
    const otherWaiting = lockRefused();
    const tenant = fakeTenant(async () => {
      await otherWaiting;
      return issued('AT-short', 2);
    });
    const [a, b] = [process(tenant.fetch), process(tenant.fetch)];
    const [first, second] = await Promise.all([a.tokens.forApi(API, undefined).token(), b.tokens.forApi(API, undefined).token()]);
    expect([first.token, second.token]).toEqual(['AT-short', 'AT-short']);
    expect(tenant.requests).toHaveLength(1);
    expect(logs.filter((l) => /too short/.test(l))).toHaveLength(1);
  });

  it('uses a token Auth0 issued even when the store cannot share it', async () => {
    backend.storeClientToken = async () => {
      throw new BffError(ErrorCode.SESSION_STORE_UNAVAILABLE, 'down');
    };
    const tenant = fakeTenant(() => issued('AT-app-1'));
    const { tokens } = process(tenant.fetch);
    const api = tokens.forApi(API, undefined);
    expect((await api.token()).token).toBe('AT-app-1');
    expect(api.token()).toMatchObject({ token: 'AT-app-1' });
    expect(tenant.requests).toHaveLength(1);
    expect(logs.some((l) => l.startsWith('warn') && /share/.test(l))).toBe(true);
  });

  it('logs a refusal once per run of refusals, answers it from memory for 10 s, and logs again after a token was issued', async () => {
    let refuse = true;
    const tenant = fakeTenant(() => refuse
      ? Response.json({ error: 'access_denied', error_description: 'Client is not authorized to access' }, { status: 403 })
      : issued('AT-app-1', 60));
    const { tokens } = process(tenant.fetch);
    const api = tokens.forApi(API, undefined);
    const refused = { code: ErrorCode.CONFIGURATION_ERROR, status: 500 };
    await expect(api.token()).rejects.toMatchObject(refused);
    await expect(api.token()).rejects.toMatchObject(refused);
    expect(tenant.requests).toHaveLength(1);
    now += 10_001;
    await expect(api.token()).rejects.toMatchObject(refused);
    expect(tenant.requests).toHaveLength(2);
    expect(logs.filter((l) => l.startsWith('error'))).toHaveLength(1);
    refuse = false;
    now += 10_001;
    await api.token();
    refuse = true;
    now += 60_000;
    await expect(api.token()).rejects.toMatchObject(refused);
    expect(logs.filter((l) => l.startsWith('error'))).toHaveLength(2);
  });

  it('never keeps a token for another API: a configuration error, and nothing stored', async () => {
    const jwt = (aud: string) => `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from(JSON.stringify({ aud })).toString('base64url')}.c2ln`;
    const tenant = fakeTenant(() => issued(jwt('https://another-api.example.test')));
    const { tokens } = process(tenant.fetch);
    await expect(tokens.forApi(API, undefined).token()).rejects.toMatchObject({ code: ErrorCode.CONFIGURATION_ERROR });
    expect(await backend.readClientToken(tokens.forApi(API, undefined).name)).toBeUndefined();
    expect(logs.filter((l) => l.startsWith('error'))).toHaveLength(1);
    const right = fakeTenant(() => issued(jwt(API)));
    expect((await process(right.fetch).tokens.forApi(API, undefined).token()).token).toBe(jwt(API));
  });

  it('answers at once, synchronously, while its token is before the refresh point', async () => {
    const tenant = fakeTenant(() => issued('AT-app-1', 60));
    const { tokens } = process(tenant.fetch);
    const api = tokens.forApi(API, undefined);
    await api.token();
    // 60 s: expiry at 59 s from the request, refresh point 6 s (margin) + 1 s (clock skew) before it.
    now += 51_000;
    expect(api.token()).toMatchObject({ token: 'AT-app-1' });
    now += 1_000;
    const renewing = api.token();
    expect(renewing).toBeInstanceOf(Promise);
    await renewing;
    expect(tenant.requests).toHaveLength(2);
  });

  it('asks Auth0 once while it says Retry-After: every call until then gets 503 with the seconds left, then it asks again', async () => {
    let limited = true;
    const tenant = fakeTenant(() => (limited ? rateLimited(30) : issued('AT-app-1')));
    const { tokens } = process(tenant.fetch);
    const api = tokens.forApi(API, undefined);
    const left: number[] = [];
    for (let i = 0; i < 10; i++) {
      await Promise.resolve(api.token()).then(() => expect.unreachable('no token while Auth0 rate-limits'), (error: BffError) => {
        expect(error.code).toBe(ErrorCode.TOKEN_SERVICE_UNAVAILABLE);
        left.push(error.retryAfter!);
      });
      now += 1_000;
    }
    expect(left).toEqual([30, 29, 28, 27, 26, 25, 24, 23, 22, 21]);
    expect(tenant.requests).toHaveLength(1);
    limited = false;
    now += 19_000;
    await expect(Promise.resolve(api.token())).rejects.toMatchObject({ code: ErrorCode.TOKEN_SERVICE_UNAVAILABLE, retryAfter: 1 });
    expect(tenant.requests).toHaveLength(1);
    now += 1_000;
    expect((await api.token()).token).toBe('AT-app-1');
    expect(tenant.requests).toHaveLength(2);
  });

  it('remembers a Retry-After of an hour for a minute at most, and says so', async () => {
    const tenant = fakeTenant(() => rateLimited(3_600));
    const { tokens } = process(tenant.fetch);
    const api = tokens.forApi(API, undefined);
    await expect(Promise.resolve(api.token())).rejects.toMatchObject({ code: ErrorCode.TOKEN_SERVICE_UNAVAILABLE, retryAfter: 60 });
    now += 59_500;
    await expect(Promise.resolve(api.token())).rejects.toMatchObject({ code: ErrorCode.TOKEN_SERVICE_UNAVAILABLE, retryAfter: 1 });
    expect(tenant.requests).toHaveLength(1);
    now += 500;
    await expect(Promise.resolve(api.token())).rejects.toMatchObject({ code: ErrorCode.TOKEN_SERVICE_UNAVAILABLE, retryAfter: 60 });
    expect(tenant.requests).toHaveLength(2);
  });

  it('keeps using a token that has not expired while Auth0 says to wait, one another process stored included, but never the one the upstream rejected', async () => {
    // Past its refresh point (52 s), with more than half its margin (6 s) left: renewing it meets the rate limit,
    // and it serves the call that asked, and the next ones without asking again.
    const { tenant, api } = await rateLimitedAfterOneToken();
    expect(await api.token()).toMatchObject({ token: 'AT-app-1' });
    expect(await api.token()).toMatchObject({ token: 'AT-app-1' });
    expect(tenant.requests).toHaveLength(2);
    await expect(api.renew('AT-app-1')).rejects.toMatchObject({ code: ErrorCode.TOKEN_SERVICE_UNAVAILABLE, retryAfter: 30 });
    // Another process got one before the limit: it is taken, and kept until its own refresh point.
    await backend.storeClientToken(api.name, { token: 'AT-app-2', expiresAt: now + 3_600_000, refreshAt: now + 3_540_000, scope: undefined });
    expect(await api.renew('AT-app-1')).toMatchObject({ token: 'AT-app-2' });
    expect(api.token()).toMatchObject({ token: 'AT-app-2' });
    expect(tenant.requests).toHaveLength(2);
  });

  it('stops serving the token at hand once half its refresh margin is gone, while Auth0 still says to wait', async () => {
    const { tenant, api } = await rateLimitedAfterOneToken();
    expect(await api.token()).toMatchObject({ token: 'AT-app-1' });
    // 56 s: of the margin from 52 s to 58 s (expiry less the clock skew), less than half is left.
    now += 3_000;
    await expect(Promise.resolve(api.token())).rejects.toMatchObject({ code: ErrorCode.TOKEN_SERVICE_UNAVAILABLE, retryAfter: 27 });
    expect(tenant.requests).toHaveLength(2);
  });

  /** A tenant that issues one 60 s token and then answers 429 Retry-After: 30; the clock at 53 s, past its refresh point. */
  async function rateLimitedAfterOneToken() {
    const tenant = fakeTenant((_form, n) => (n === 1 ? issued('AT-app-1', 60) : rateLimited(30)));
    const api = process(tenant.fetch).tokens.forApi(API, undefined);
    expect((await api.token()).token).toBe('AT-app-1');
    now += 53_000;
    return { tenant, api };
  }

  it('keeps the tokens of applications sharing a store apart: another Client ID, or the same one at another tenant', async () => {
    const OTHER_ISSUER = 'https://other-tenant.example/';
    const tenant = fakeTenant((form) => issued(`AT-${form.get('client_id')}`));
    const other = fakeTenant((form) => issued(`AT-${form.get('client_id')}-other-tenant`), OTHER_ISSUER);
    const apps = [process(tenant.fetch), process(tenant.fetch, undefined, { clientId: 'second-app' }), process(other.fetch, undefined, { issuer: OTHER_ISSUER })];
    const tokensIssued = [];
    for (const { tokens } of apps) tokensIssued.push((await tokens.forApi(API, 'read:things').token()).token);
    expect(tokensIssued).toEqual(['AT-bff', 'AT-second-app', 'AT-bff-other-tenant']);
    const names = apps.map(({ tokens }) => tokens.forApi(API, 'read:things').name);
    for (const name of names) expect(name).toMatch(/^[\w-]{16}:https:\/\/api\.example\.test read:things$/);
    expect(names.some((name) => name.includes('bff') || name.includes('second-app'))).toBe(false);
  });
});
