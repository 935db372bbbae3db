import { createHook, executionAsyncResource } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { validateOptions, type BffConfig } from '../../src/config/validate.js';
import { BffError, ErrorCode } from '../../src/errors.js';
import { BffEventEmitter, type BffEventName, type BffEvents } from '../../src/events/events.js';
import { Reporter } from '../../src/events/reporter.js';
import { IdpClient } from '../../src/idp/idp-client.js';
import type { SessionBackend } from '../../src/session/backend.js';
import { plainCipher } from '../../src/session/encryption.js';
import { createMemoryBackend } from '../../src/session/memory-backend.js';
import type { AccessTokenEntry, SessionRecord } from '../../src/session/record.js';
import { Sessions } from '../../src/session/sessions.js';
import { TokenManager, accessTokenEntry, servesPastRefresh, type AccessTokenOptions, type WaitTiming } from '../../src/tokens/token-manager.js';

const ISSUER = 'https://tenant.example/';
const TOKEN_ENDPOINT = 'https://tenant.example/oauth/token';
const JWKS_URI = 'https://tenant.example/.well-known/jwks.json';
const CLIENT_ID = 'bff-client';
const CLIENT_SECRET = 'bff-client-secret-value';
const API = 'https://api.example.test';
const OTHER_API = 'https://other-api.example.test';
const ORT = 'ORT-online-refresh-token-1';
const AT_1 = 'AT-stored-access-token-1';
const DEADLINE_MS = 1_000;
const ATTEMPT_TIMEOUT_MS = 200;
const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const IDLE_TIMEOUT = 3 * DAY;

interface TokenRequest {
  readonly form: URLSearchParams;
  readonly signal: AbortSignal | undefined;
}
type Answer = (request: TokenRequest) => Response | Promise<Response>;

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Response =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
const tokens = (accessToken: string, extra: Record<string, unknown> = {}): Answer =>
  () => json(200, { access_token: accessToken, token_type: 'Bearer', expires_in: 3600, scope: 'read:things', ...extra });
const oauthError = (status: number, error: string, headers: Record<string, string> = {}): Answer =>
  () => json(status, { error, error_description: `${error} from the fake` }, headers);
/** An answer that never comes: it only ends when the request is aborted. */
const never: Answer = ({ signal }) => new Promise<Response>((_resolve, reject) => {
  if (signal?.aborted) return reject(signal.reason);
  signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
});
const connectionRefused: Answer = () => {
  throw new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 203.0.113.1:443') });
};

/**
 * Whether promise hooks are on in this process. On, every promise is an async resource of its own (a callback
 * runs with its promise as the current resource) and every promise and await costs more; off (Node's default),
 * they are not. On Node 20 and 22 the first AsyncLocalStorage.run() turns them on for good.
 */
async function promiseHooksOn(): Promise<boolean> {
  const promise = Promise.resolve().then(() => [executionAsyncResource()]);
  return (await promise)[0] === promise;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Auth0's discovery document and a token endpoint that answers from a script, recording every request. */
class FakeAuth0 {
  readonly requests: TokenRequest[] = [];
  readonly script: Answer[] = [];
  /** What the token endpoint answers once the script is used up. */
  otherwise: Answer = () => json(500, { error: 'server_error', error_description: 'the test did not script this request' });
  jwks: unknown = { keys: [] };

  answer(...answers: Answer[]): this {
    this.script.push(...answers);
    return this;
  }

  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (url === `${ISSUER}.well-known/openid-configuration`) {
      return json(200, {
        issuer: ISSUER,
        authorization_endpoint: `${ISSUER}authorize`,
        token_endpoint: TOKEN_ENDPOINT,
        jwks_uri: JWKS_URI,
        revocation_endpoint: `${ISSUER}oauth/revoke`,
        id_token_signing_alg_values_supported: ['RS256'],
      });
    }
    if (url === JWKS_URI) return json(200, this.jwks);
    if (url === TOKEN_ENDPOINT) {
      const request = { form: new URLSearchParams(String(init?.body ?? '')), signal: init?.signal ?? undefined };
      this.requests.push(request);
      return (this.script.shift() ?? this.otherwise)(request);
    }
    return json(404, { error: 'not_found' });
  };
}

interface LogLine {
  level: string;
  message: string;
  details: Record<string, unknown> | undefined;
}

describe('the token manager', () => {
  let now = 0;
  const clock = () => now;
  let auth0: FakeAuth0;
  let logs: LogLine[];
  let emitted: Array<{ name: BffEventName; payload: unknown }>;
  let config: BffConfig;
  let events: BffEventEmitter;
  let report: Reporter;
  let backend: SessionBackend;
  let sessions: Sessions;
  let idp: IdpClient;
  let manager: TokenManager;

  const configOptions = () => {
    const log = (level: string) => (message: string, details?: Record<string, unknown>) => void logs.push({ level, message, details });
    return {
      issuer: ISSUER,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      audience: API,
      baseURL: 'https://app.example',
      session: { secrets: ['a-session-secret-of-at-least-32-chars'] },
      fetch: auth0.fetch as typeof fetch,
      clock,
      logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    };
  };

  /** A BFF (config, memory sessions, IdP client, token manager) whose Auth0 is the fake. */
  async function start(budget: { exchangeDeadline: number; attemptTimeout: number } = { exchangeDeadline: DEADLINE_MS, attemptTimeout: ATTEMPT_TIMEOUT_MS }): Promise<void> {
    config = validateOptions({ ...configOptions(), tokens: budget });
    events = new BffEventEmitter();
    for (const name of ['login', 'refresh', 'refresh_failed', 'logout', 'revocation_failed', 'backchannel_logout_rejected'] as const) {
      events.on(name, (payload: unknown) => void emitted.push({ name, payload }));
    }
    backend = createMemoryBackend(plainCipher, IDLE_TIMEOUT, clock);
    report = new Reporter(events, config.logger);
    sessions = new Sessions(config, backend, report);
    idp = new IdpClient(config);
    await idp.ready();
    manager = new TokenManager(config, idp, sessions, report);
  }

  beforeEach(async () => {
    now = Date.now();
    auth0 = new FakeAuth0();
    logs = [];
    emitted = [];
    await start();
  });

  afterEach(async () => {
    idp.close();
    await backend.close();
  });

  /** An access token issued now for `lifetime` seconds, due for renewal at the default margin: min(60 s, 10%). */
  const issued = (token: string, lifetime = 3600): AccessTokenEntry => ({
    token,
    expiresAt: now + lifetime * SECOND,
    refreshAt: now + (lifetime - Math.min(60, lifetime * 0.1)) * SECOND,
    scope: 'read:things',
  });

  /** A logged-in session as the callback leaves it: an ORT and an access token for the login audience. */
  async function login(overrides: Partial<SessionRecord> = {}): Promise<string> {
    const id = randomUUID();
    await backend.createRecord(id, {
      sub: 'auth0|alice',
      sid: 'auth0-sid-1',
      createdAt: now,
      absoluteExpiresAt: now + 7 * DAY,
      idleExpiresAt: now + IDLE_TIMEOUT,
      lastActiveAt: now,
      userAgent: undefined,
      logoutId: randomUUID(),
      refreshToken: ORT,
      idToken: undefined,
      scope: 'openid profile email online_access',
      claims: { sub: 'auth0|alice', name: 'Alice Example' },
      accessTokens: { [API]: issued(AT_1) },
      ...overrides,
    });
    return id;
  }

  /** What an API request does: read the session's view, then ask for a token (through `tokenManager`). */
  async function accessToken(id: string, audience = API, options: AccessTokenOptions & { scope?: string; tokenManager?: TokenManager } = {}): Promise<AccessTokenEntry> {
    const view = await backend.readView(id, audience);
    if (!view) throw new Error(`no session ${id}`);
    const { scope, tokenManager = manager, ...rest } = options;
    return tokenManager.accessToken({ id, view }, { audience, scope }, rest);
  }

  /** Publishes a new key at the fake's JWKS, and returns a function that signs Alice's ID tokens with it. */
  async function idTokenSigner(): Promise<(claims: Record<string, unknown>) => Promise<string>> {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    auth0.jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] };
    return (claims) => new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setIssuer(ISSUER)
      .setAudience(CLIENT_ID)
      .setSubject('auth0|alice')
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(privateKey);
  }

  /** Lets the access token of the login audience reach its renewal time. */
  async function letTokenExpire(id: string, audience = API): Promise<void> {
    const entry = (await backend.readRecord(id))?.accessTokens[audience];
    if (!entry) throw new Error('no access token to expire');
    // Its expiry, not its refresh point: a token past its refresh point still serves while Auth0 fails for the moment.
    now = Math.max(now, entry.expiresAt);
  }

  /**
   * Lets the session's token expire and starts an exchange here whose answer from Auth0 (`held`) waits; then a call
   * of the same session in another process (its waits `timing`), which finds the exchange lock taken. Lets the
   * answer go once that process waits for it: it has read the session after the lock was refused. Auth0 answers
   * the requests after that with `then`. The second call is for `secondAudience`.
   */
  async function waitBehindAnExchange(id: string, timing: WaitTiming, held: Answer, then: Answer[] = [], secondAudience = API): Promise<{ first: Promise<AccessTokenEntry>; second: Promise<AccessTokenEntry> }> {
    const other = new TokenManager(config, idp, new Sessions(config, backend, report), report, timing);
    const hold = deferred();
    auth0.answer(async (request) => {
      await hold.promise;
      return held(request);
    }, ...then);
    await letTokenExpire(id);
    const first = accessToken(id);
    first.catch(() => {});
    await expect.poll(() => auth0.requests.length).toBe(1);
    let reads = 0;
    const read = backend.readView.bind(backend);
    backend.readView = (...args) => (reads++, read(...args));
    const second = accessToken(id, secondAudience, { tokenManager: other });
    // The call's own read, then the waiter's first.
    await expect.poll(() => reads).toBeGreaterThanOrEqual(2);
    hold.resolve();
    return { first, second };
  }

  async function failure(promise: Promise<unknown>): Promise<BffError> {
    try {
      await promise;
    } catch (error) {
      expect(error).toBeInstanceOf(BffError);
      return error as BffError;
    }
    throw new Error('expected the call to fail');
  }

  const eventsNamed = <K extends BffEventName>(name: K) => emitted.filter((e) => e.name === name).map((e) => e.payload as BffEvents[K][0]);

  describe('when the access token is fresh or expiring', () => {
    it('returns a fresh token without asking Auth0', async () => {
      const id = await login();
      now += 30 * MINUTE;
      expect((await accessToken(id)).token).toBe(AT_1);
      expect(auth0.requests).toHaveLength(0);
    });

    it('keeps using the token until a minute before it expires, then exchanges the ORT once', async () => {
      const id = await login();
      auth0.answer(tokens('AT-2'));

      now += 3540 * SECOND - 1;
      expect((await accessToken(id)).token).toBe(AT_1);
      expect(auth0.requests).toHaveLength(0);

      now += 1;
      expect((await accessToken(id)).token).toBe('AT-2');
      expect((await accessToken(id)).token).toBe('AT-2');
      expect(auth0.requests).toHaveLength(1);
      expect(eventsNamed('refresh')).toEqual([expect.objectContaining({ sub: 'auth0|alice', sid: 'auth0-sid-1', audience: API, expiresIn: 3600 })]);
    });

    it('never hands out again a token Auth0 issued already at its expiry (expires_in 0), and takes a minute for one without expires_in', async () => {
      const id = await login();
      auth0.answer(tokens('AT-2', { expires_in: 0 }), tokens('AT-3', { expires_in: undefined }));
      await letTokenExpire(id);
      expect((await accessToken(id)).token).toBe('AT-2');
      now += 30 * SECOND;
      const renewed = await accessToken(id);
      expect(renewed).toMatchObject({ token: 'AT-3', expiresAt: now + 59 * SECOND });
      expect(auth0.requests).toHaveLength(2);
    });

    it('renews a short-lived token when 10% of its lifetime is left', async () => {
      const id = await login({ accessTokens: { [API]: issued(AT_1, 300) } });
      auth0.answer(tokens('AT-2', { expires_in: 300 }));
      now += 269 * SECOND;
      expect((await accessToken(id)).token).toBe(AT_1);
      now += 1 * SECOND;
      const renewed = await accessToken(id);
      // Expiry: a second less than the lifetime (exp's rounding); renewal: 10% (30 s) and the 1 s skew allowance before.
      expect(renewed).toEqual({ token: 'AT-2', expiresAt: now + 299 * SECOND, refreshAt: now + 268 * SECOND, scope: 'read:things' });
      expect(auth0.requests).toHaveLength(1);
    });

    it('stores the renewed token to be renewed again a minute before it expires', async () => {
      const id = await login();
      auth0.answer(tokens('AT-2', { expires_in: 86400 }));
      await letTokenExpire(id);
      await accessToken(id);
      expect((await backend.readView(id, API))?.accessToken).toEqual({ token: 'AT-2', expiresAt: now + 86399 * SECOND, refreshAt: now + 86338 * SECOND, scope: 'read:things' });
    });

    it('counts a renewed token\'s life from when its request went out, not from when the answer arrived', async () => {
      const id = await login();
      await letTokenExpire(id);
      const sentAt = now;
      // Auth0 takes 800 ms to answer: the token's exp was fixed when it was issued, within that time.
      auth0.answer((request) => {
        now += 800;
        return tokens('AT-2', { expires_in: 60 })(request);
      });
      const renewed = await accessToken(id);
      expect(now).toBe(sentAt + 800);
      expect(renewed).toMatchObject({ token: 'AT-2', expiresAt: sentAt + 59 * SECOND, refreshAt: sentAt + (59 - 6 - 1) * SECOND });
    });

    it('renews earlier by the clock-skew allowance (tokens.clockSkew) for APIs whose clocks run ahead', async () => {
      config = validateOptions({ ...configOptions(), tokens: { clockSkew: 5 } });
      const skewed = new TokenManager(config, idp, new Sessions(config, backend, report), report);
      const id = await login();
      await letTokenExpire(id);
      auth0.answer(tokens('AT-2', { expires_in: 600 }));
      expect(await accessToken(id, API, { tokenManager: skewed })).toMatchObject({ expiresAt: now + 599 * SECOND, refreshAt: now + (599 - 60 - 5) * SECOND });
    });

    it('says that Auth0 was slow, not that the token is too short, when a token arrives due for renewal because its answer took long', async () => {
      const id = await login();
      await letTokenExpire(id);
      // A minute's token whose answer takes 55 s: past its refresh point (52 s after the request) on arrival.
      auth0.answer((request) => {
        now += 55 * SECOND;
        return tokens('AT-2', { expires_in: 60 })(request);
      });
      expect((await accessToken(id)).token).toBe('AT-2');
      expect(logs.filter((l) => l.level === 'warn')).toEqual([
        expect.objectContaining({ message: expect.stringContaining('took longer to answer'), details: expect.objectContaining({ audience: API, lifetimeSeconds: 60 }) }),
      ]);
    });

    it('uses a token too short for its refresh margin once, in every process, and warns once, instead of exchanging again and again', async () => {
      const id = await login();
      const other = new TokenManager(config, idp, new Sessions(config, backend, report), report);
      const hold = deferred();
      // 2 s, less a second of rounding, less 0.2 s of margin and 1 s of skew allowance: due for renewal on arrival.
      const shortLived = (token: string): Answer => async (request) => {
        await hold.promise;
        return tokens(token, { expires_in: 2 })(request);
      };
      auth0.answer(shortLived('AT-2'), shortLived('AT-3'));
      await letTokenExpire(id);

      const here = Array.from({ length: 10 }, () => accessToken(id));
      await expect.poll(() => auth0.requests.length).toBe(1);
      const there = Array.from({ length: 10 }, () => accessToken(id, API, { tokenManager: other }));
      hold.resolve();
      expect((await Promise.all([...here, ...there])).map((t) => t.token)).toEqual(Array(20).fill('AT-2'));
      expect(auth0.requests).toHaveLength(1);

      // The next call finds it due and renews it: the price of a lifetime this short, said once in the log.
      expect((await accessToken(id)).token).toBe('AT-3');
      expect(logs.filter((l) => l.level === 'warn')).toEqual([
        expect.objectContaining({ message: expect.stringContaining('too short'), details: expect.objectContaining({ audience: API, lifetimeSeconds: 2, clockSkewSeconds: 1 }) }),
      ]);
    });

    it('refreshes once when twenty requests arrive with an expiring token', async () => {
      const id = await login();
      const hold = deferred();
      auth0.answer(async () => {
        await hold.promise;
        return tokens('AT-2')({ form: new URLSearchParams(), signal: undefined });
      });
      await letTokenExpire(id);

      const calls = Array.from({ length: 20 }, () => accessToken(id));
      await expect.poll(() => auth0.requests.length).toBe(1);
      hold.resolve();

      expect((await Promise.all(calls)).map((t) => t.token)).toEqual(Array(20).fill('AT-2'));
      expect(auth0.requests).toHaveLength(1);
    });

    it('exchanges once when two BFF processes sharing the session store both find the token expiring', async () => {
      const id = await login();
      const other = new TokenManager(config, idp, new Sessions(config, backend, report), report);
      const hold = deferred();
      auth0.answer(async () => {
        await hold.promise;
        return tokens('AT-2')({ form: new URLSearchParams(), signal: undefined });
      });
      await letTokenExpire(id);

      const first = accessToken(id);
      await expect.poll(() => auth0.requests.length).toBe(1);
      const second = accessToken(id, API, { tokenManager: other });
      hold.resolve();

      expect((await first).token).toBe('AT-2');
      expect((await second).token).toBe('AT-2');
      expect(auth0.requests).toHaveLength(1);
    });

    it('hands a process waiting for another\'s exchange the token as soon as it is stored, not at its next read', async () => {
      // A deadline and reads on a timer an hour away: only the store's word can bring the waiter its token in time.
      idp.close();
      await backend.close();
      await start({ exchangeDeadline: HOUR, attemptTimeout: ATTEMPT_TIMEOUT_MS });
      const id = await login();
      const { first, second } = await waitBehindAnExchange(id, { pollMs: HOUR, watchedPollMs: HOUR }, tokens('AT-2'));

      expect((await first).token).toBe('AT-2');
      expect((await second).token).toBe('AT-2');
      expect(auth0.requests).toHaveLength(1);
    });

    it('exchanges for a second API of the session soon after the first API\'s exchange lets go of the lock, which the store does not report', async () => {
      // One lock per session: a call for another API waits for it. The store reports the first API's token being
      // stored, not the lock being let go of (here 50 ms later, a holder that lags); the waiter's timer reads
      // and deadline are an hour away, so only its reads after that change can bring it its turn.
      idp.close();
      await backend.close();
      await start({ exchangeDeadline: HOUR, attemptTimeout: ATTEMPT_TIMEOUT_MS });
      const id = await login({ accessTokens: { [API]: issued(AT_1), [OTHER_API]: issued('AT-other-1') } });
      await letTokenExpire(id, OTHER_API);
      const release = backend.releaseLock.bind(backend);
      backend.releaseLock = async (name, owner) => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        return release(name, owner);
      };
      const { first, second } = await waitBehindAnExchange(id, { pollMs: 10, watchedPollMs: HOUR }, tokens('AT-2'), [tokens('AT-other-2')], OTHER_API);

      expect((await first).token).toBe('AT-2');
      expect((await second).token).toBe('AT-other-2');
      expect(auth0.requests.map((r) => r.form.get('audience'))).toEqual([null, OTHER_API]);
    });

    it('takes over, at its next read, from a process that gave up its exchange without storing a token', async () => {
      const id = await login();
      const { first, second } = await waitBehindAnExchange(id, { pollMs: 10, watchedPollMs: 10 }, oauthError(400, 'invalid_request'), [tokens('AT-2')]);

      expect((await failure(first)).code).toBe('configuration_error');
      expect((await second).token).toBe('AT-2');
      expect(auth0.requests).toHaveLength(2);
    });

    it('takes back a lock it asked for when the store answered too late, so the next call can exchange', async () => {
      const id = await login();
      await letTokenExpire(id);
      // The store takes the lock but its answer comes after the BFF gave up on it (a Redis latency spike).
      const acquire = backend.acquireLock.bind(backend);
      let late = true;
      backend.acquireLock = async (name, owner, ttlMs) => {
        const taken = await acquire(name, owner, ttlMs);
        if (!late) return taken;
        late = false;
        throw new BffError(ErrorCode.SESSION_STORE_UNAVAILABLE, 'The session store did not answer in time; try again shortly.');
      };
      expect((await failure(accessToken(id))).code).toBe('session_store_unavailable');

      auth0.answer(tokens('AT-2'));
      expect((await accessToken(id)).token).toBe('AT-2');
      expect(auth0.requests).toHaveLength(1);
    });

    it('exchanges anew for a token the upstream rejected, even when it joins an exchange that found that very token', async () => {
      const id = await login({ accessTokens: { [API]: issued(AT_1, 60) } });
      await letTokenExpire(id);
      const expiring = await backend.readView(id, API);
      // Another process has meanwhile stored a fresh token, and the upstream refused it to a request holding it.
      await backend.storeTokens(id, { audience: API, accessToken: issued('AT-FRESH'), idleExpiresAt: now + IDLE_TIMEOUT });
      const fresh = await backend.readView(id, API);
      auth0.answer(tokens('AT-2'));

      // A request with the older view starts an exchange, which finds the fresh token stored and takes it.
      const renewing = manager.accessToken({ id, view: expiring! }, { audience: API });
      const forced = manager.accessToken({ id, view: fresh! }, { audience: API }, { force: true, rejected: 'AT-FRESH' });

      expect((await renewing).token).toBe('AT-FRESH');
      expect((await forced).token).toBe('AT-2');
      expect(auth0.requests).toHaveLength(1);
    });

    describe('an upstream that rejects the token a forced renewal gave', () => {
      /** Forces a renewal here for the stored AT_1, as an upstream's 401 does: AT-2 is stored, marked as forced. */
      async function forcedOnce(id: string): Promise<void> {
        auth0.answer(tokens('AT-2'));
        expect((await accessToken(id, API, { force: true, rejected: AT_1 })).token).toBe('AT-2');
        expect(auth0.requests).toHaveLength(1);
      }

      it('gets no second forced renewal for it from another process, whose concurrent calls take it back after one look at the store', async () => {
        const id = await login();
        await forcedOnce(id);
        // Another process, which logs its debug lines.
        const verbose = validateOptions({ ...configOptions(), logLevel: 'debug' });
        const verboseReport = new Reporter(events, verbose.logger);
        const other = new TokenManager(verbose, idp, new Sessions(verbose, backend, verboseReport), verboseReport);
        expect(other.mayForce('AT-2')).toBe(true);
        let locks = 0;
        const acquire = backend.acquireLock.bind(backend);
        backend.acquireLock = (...args) => (locks++, acquire(...args));
        const answers = await Promise.all(Array.from({ length: 5 }, () => accessToken(id, API, { force: true, rejected: 'AT-2', tokenManager: other })));
        expect(answers.map((a) => a.token)).toEqual(Array(5).fill('AT-2'));
        expect(auth0.requests).toHaveLength(1);
        expect(locks).toBe(1);
        // That process now knows it too: the next rejection is not even retried.
        expect(other.mayForce('AT-2')).toBe(false);
        expect(logs.filter((l) => l.message.startsWith('No token exchange: the API refused the token a forced renewal just gave'))).toHaveLength(1);
      });

      it('hands a process waiting behind another\'s take-back the marked token as soon as that one lets go of the lock, which the store does not report', async () => {
        // A deadline and watched reads an hour away: only reads at `pollMs` can bring the waiter its answer in time.
        idp.close();
        await backend.close();
        await start({ exchangeDeadline: HOUR, attemptTimeout: ATTEMPT_TIMEOUT_MS });
        const id = await login();
        await forcedOnce(id);
        // A third process's call for the refused AT-2 holds the lock: it takes AT-2 back and stores nothing.
        expect(await backend.acquireLock(id, 'taking-back', HOUR, API)).toBe(true);
        const other = new TokenManager(config, idp, new Sessions(config, backend, report), report, { pollMs: 10, watchedPollMs: HOUR });
        let reads = 0;
        const read = backend.readView.bind(backend);
        backend.readView = (...args) => (reads++, read(...args));
        const waiting = accessToken(id, API, { force: true, rejected: 'AT-2', tokenManager: other });
        // The call's own read, then the waiter's first, which finds only the token the upstream refused.
        await expect.poll(() => reads).toBeGreaterThanOrEqual(2);
        await backend.releaseLock(id, 'taking-back');

        expect((await waiting).token).toBe('AT-2');
        expect(auth0.requests).toHaveLength(1);
        expect(other.mayForce('AT-2')).toBe(false);
      });

      it('spares it in another process only for the rest of the interval the mark gives, and marks nothing a normal renewal gave', async () => {
        const id = await login();
        await forcedOnce(id);
        const other = new TokenManager(config, idp, new Sessions(config, backend, report), report);
        now += 55_000;
        expect((await accessToken(id, API, { force: true, rejected: 'AT-2', tokenManager: other })).token).toBe('AT-2');
        expect(other.mayForce('AT-2')).toBe(false);
        now += 5_000;
        expect(other.mayForce('AT-2')).toBe(true);
        // A forced call for an older token that finds the marked one takes it, known as marked from then on.
        const third = new TokenManager(config, idp, new Sessions(config, backend, report), report);
        now -= 5_000;
        expect((await accessToken(id, API, { force: true, rejected: AT_1, tokenManager: third })).token).toBe('AT-2');
        expect(third.mayForce('AT-2')).toBe(false);
        now += 5_000;
        // A forced call that finds a token a normal renewal stored meanwhile takes it, unmarked.
        await backend.storeTokens(id, { audience: API, accessToken: issued('AT-NORMAL'), idleExpiresAt: now + IDLE_TIMEOUT });
        expect((await accessToken(id, API, { force: true, rejected: 'AT-2', tokenManager: other })).token).toBe('AT-NORMAL');
        expect(other.mayForce('AT-NORMAL')).toBe(true);
        expect(auth0.requests).toHaveLength(1);
      });

      it('does not trust a mark from further in the future than the clock-skew allowance (another host\'s clock)', async () => {
        const id = await login();
        await backend.storeTokens(id, { audience: API, accessToken: issued('AT-AHEAD'), idleExpiresAt: now + IDLE_TIMEOUT, forcedAt: now + 10 * MINUTE });
        auth0.answer(tokens('AT-2'));
        expect((await accessToken(id, API, { force: true, rejected: 'AT-AHEAD' })).token).toBe('AT-2');
        expect(auth0.requests).toHaveLength(1);
      });

      it('renews it by force again once the interval has passed, in any process', async () => {
        const id = await login();
        await forcedOnce(id);
        expect(manager.mayForce('AT-2')).toBe(false);
        now += 60_000;
        expect(manager.mayForce('AT-2')).toBe(true);
        const other = new TokenManager(config, idp, new Sessions(config, backend, report), report);
        auth0.answer(tokens('AT-3'));
        expect((await accessToken(id, API, { force: true, rejected: 'AT-2', tokenManager: other })).token).toBe('AT-3');
        expect(auth0.requests).toHaveLength(2);
      });

      it('renews it when it is due for renewal, instead of handing out a token past its refresh point', async () => {
        const id = await login();
        auth0.answer(tokens('AT-2', { expires_in: 30 }));
        expect((await accessToken(id, API, { force: true, rejected: AT_1 })).token).toBe('AT-2');
        // A 30 s token is due 3 s before it expires: past that point, well within the interval.
        now += 28_000;
        const other = new TokenManager(config, idp, new Sessions(config, backend, report), report);
        auth0.answer(tokens('AT-3'));
        expect((await accessToken(id, API, { force: true, rejected: 'AT-2', tokenManager: other })).token).toBe('AT-3');
        expect(auth0.requests).toHaveLength(2);
      });
    });

    it('moves the idle expiry forward on an exchange (as Auth0 does), never past the absolute expiry', async () => {
      const id = await login({ idleExpiresAt: now + 2 * DAY, absoluteExpiresAt: now + 3 * DAY + 2 * HOUR });
      auth0.answer(tokens('AT-2'), tokens('AT-3'));
      await letTokenExpire(id);
      await accessToken(id);
      expect((await backend.readView(id, API))?.idleExpiresAt).toBe(now + IDLE_TIMEOUT);

      now += 2 * DAY;
      await letTokenExpire(id);
      await accessToken(id);
      expect((await backend.readView(id, API))?.idleExpiresAt).toBe((await backend.readRecord(id))?.absoluteExpiresAt);
    });
  });

  describe('what the exchange sends', () => {
    it('sends grant_type=refresh_token with the ORT and no audience for the login audience', async () => {
      const id = await login();
      auth0.answer(tokens('AT-2'));
      await letTokenExpire(id);
      await accessToken(id);

      const [request] = auth0.requests;
      expect(request?.form.get('grant_type')).toBe('refresh_token');
      expect(request?.form.get('refresh_token')).toBe(ORT);
      expect(request?.form.get('client_id')).toBe(CLIENT_ID);
      expect(request?.form.has('audience')).toBe(false);
      expect(request?.form.has('scope')).toBe(false);
    });

    it('asks for another API\'s token with its audience (Multi-Resource Refresh Token), keeping the login audience\'s token', async () => {
      const id = await login();
      auth0.answer(tokens('AT-other-1', { scope: 'read:other' }));

      const other = await accessToken(id, OTHER_API, { scope: 'read:other' });

      expect(other.token).toBe('AT-other-1');
      expect(auth0.requests[0]?.form.get('audience')).toBe(OTHER_API);
      expect(auth0.requests[0]?.form.get('scope')).toBe('read:other');
      expect(auth0.requests[0]?.form.get('refresh_token')).toBe(ORT);
      const record = await backend.readRecord(id);
      expect(record?.accessTokens[API]?.token).toBe(AT_1);
      expect(record?.accessTokens[OTHER_API]?.token).toBe('AT-other-1');
      expect((await accessToken(id)).token).toBe(AT_1);
      expect(auth0.requests).toHaveLength(1);
    });
  });

  describe('the refresh token', () => {
    it('keeps the ORT when Auth0 answers without a refresh token, and exchanges it again next time', async () => {
      const id = await login();
      auth0.answer(tokens('AT-2'), tokens('AT-3'));
      await letTokenExpire(id);
      await accessToken(id);
      expect((await backend.readRecord(id))?.refreshToken).toBe(ORT);

      await letTokenExpire(id);
      expect((await accessToken(id)).token).toBe('AT-3');
      expect(auth0.requests.map((r) => r.form.get('refresh_token'))).toEqual([ORT, ORT]);
    });

    it('replaces a rotated refresh token and uses the new one for the next exchange', async () => {
      const id = await login();
      auth0.answer(tokens('AT-2', { refresh_token: 'RT-rotated-2' }), tokens('AT-3'));
      await letTokenExpire(id);
      await accessToken(id);
      expect((await backend.readRecord(id))?.refreshToken).toBe('RT-rotated-2');

      await letTokenExpire(id);
      await accessToken(id);
      expect(auth0.requests.map((r) => r.form.get('refresh_token'))).toEqual([ORT, 'RT-rotated-2']);
    });

    it('stores a new ID token and its claims when the exchange returns one', async () => {
      const idToken = await (await idTokenSigner())({ sid: 'auth0-sid-1', name: 'Alice Renamed' });
      const id = await login();
      auth0.answer(tokens('AT-2', { id_token: idToken }));
      await letTokenExpire(id);
      await accessToken(id);

      const record = await backend.readRecord(id);
      expect(record?.idToken).toBe(idToken);
      expect(record?.claims).toMatchObject({ sub: 'auth0|alice', sid: 'auth0-sid-1', name: 'Alice Renamed' });
    });

    it('moves the absolute lifetime earlier when an exchange\'s ID token names an earlier session_expiry, never later', async () => {
      const sign = await idTokenSigner();
      const idToken = (sessionExpiry: number) => sign({ sid: 'auth0-sid-1', session_expiry: sessionExpiry });
      const id = await login();
      const loggedIn = (await backend.readRecord(id))!.absoluteExpiresAt;
      const later = Math.floor(loggedIn / 1000) + 3600;
      const earlier = Math.floor(now / 1000) + 2 * 3600;
      auth0.answer(tokens('AT-2', { id_token: await idToken(later) }), tokens('AT-3', { id_token: await idToken(earlier) }));

      await letTokenExpire(id);
      await accessToken(id);
      expect((await backend.readRecord(id))?.absoluteExpiresAt).toBe(loggedIn);

      await letTokenExpire(id);
      await accessToken(id);
      const record = await backend.readRecord(id);
      expect(record?.absoluteExpiresAt).toBe(earlier * 1000);
      expect(record?.idleExpiresAt).toBeLessThanOrEqual(earlier * 1000);
    });

    it('ends a session that has no refresh token once its access token expires', async () => {
      const id = await login({ refreshToken: undefined });
      await letTokenExpire(id);
      expect((await failure(accessToken(id))).code).toBe('session_ended');
      expect(await backend.readRecord(id)).toBeUndefined();
      expect(auth0.requests).toHaveLength(0);
      expect(logs.some((l) => l.level === 'warn' && /Allow Online Access/.test(l.message))).toBe(true);
    });
  });

  describe('when Auth0 says the session is over', () => {
    it.each([
      ['403 invalid_grant', oauthError(403, 'invalid_grant')],
      ['403 access_denied (an Action revoked the session)', oauthError(403, 'access_denied')],
      ['400 invalid_grant', oauthError(400, 'invalid_grant')],
    ])('ends the BFF session and its Auth0 session\'s other BFF sessions on %s', async (_name, answer) => {
      const id = await login();
      const sibling = await login();
      const unrelated = await login({ sid: 'auth0-sid-2' });
      auth0.answer(answer);
      await letTokenExpire(id);

      const error = await failure(accessToken(id));

      expect(error).toMatchObject({ code: 'session_ended', status: 401 });
      expect(await backend.readRecord(id)).toBeUndefined();
      expect(await backend.readRecord(sibling)).toBeUndefined();
      expect(await backend.readRecord(unrelated)).toBeDefined();
      expect(eventsNamed('refresh_failed')).toEqual([expect.objectContaining({ kind: 'terminal', sub: 'auth0|alice', audience: API })]);
      expect(eventsNamed('logout')).toEqual([expect.objectContaining({ reason: 'session_ended', sub: 'auth0|alice', sid: 'auth0-sid-1', sessions: 2 })]);
      expect(auth0.requests).toHaveLength(1);
    });
  });

  describe('when the BFF itself is misconfigured', () => {
    it.each([
      ['401 invalid_client', oauthError(401, 'invalid_client')],
      ['401 access_denied "Unauthorized"', oauthError(401, 'access_denied')],
      ['403 unauthorized_client', oauthError(403, 'unauthorized_client')],
    ])('answers configuration_error on %s, keeps the session, and logs an error without a token', async (_name, answer) => {
      const id = await login();
      auth0.answer(answer);
      await letTokenExpire(id);

      const error = await failure(accessToken(id));

      expect(error).toMatchObject({ code: 'configuration_error', status: 500 });
      expect(await backend.readRecord(id)).toMatchObject({ refreshToken: ORT, accessTokens: { [API]: { token: AT_1 } } });
      expect(eventsNamed('logout')).toEqual([]);
      expect(eventsNamed('refresh_failed')).toEqual([expect.objectContaining({ kind: 'configuration' })]);
      const errors = logs.filter((l) => l.level === 'error');
      expect(errors).toHaveLength(1);
      expect(JSON.stringify(errors)).not.toContain(ORT);
      expect(JSON.stringify(errors)).not.toContain(AT_1);
      expect(JSON.stringify(errors)).not.toContain(CLIENT_SECRET);
      // Retrying cannot fix a configuration: Auth0 is asked once.
      expect(auth0.requests).toHaveLength(1);
    });

    it('answers configuration_error on 401 invalid_client with a WWW-Authenticate challenge (RFC 6749 5.2), without retrying', async () => {
      const id = await login();
      auth0.answer(oauthError(401, 'invalid_client', { 'www-authenticate': 'Basic realm="tenant.example"' }));
      auth0.otherwise = oauthError(401, 'invalid_client', { 'www-authenticate': 'Basic realm="tenant.example"' });
      await letTokenExpire(id);

      const error = await failure(accessToken(id));

      expect(error).toMatchObject({ code: 'configuration_error', status: 500 });
      expect(await backend.readRecord(id)).toBeDefined();
      expect(auth0.requests).toHaveLength(1);
    });
  });

  describe('when Auth0 fails transiently', () => {
    it('succeeds after one retry when Auth0 answers 503 and then 200', async () => {
      const id = await login();
      auth0.answer(oauthError(503, 'temporarily_unavailable'), tokens('AT-2'));
      await letTokenExpire(id);
      expect((await accessToken(id)).token).toBe('AT-2');
      expect(auth0.requests).toHaveLength(2);
      expect(eventsNamed('refresh_failed')).toEqual([expect.objectContaining({ kind: 'transient', status: 503 })]);
      expect(eventsNamed('logout')).toEqual([]);
    });

    it('succeeds after a 502 with an HTML body and then 200', async () => {
      const id = await login();
      auth0.answer(() => new Response('<html>Bad Gateway</html>', { status: 502, headers: { 'content-type': 'text/html' } }), tokens('AT-2'));
      await letTokenExpire(id);
      expect((await accessToken(id)).token).toBe('AT-2');
      expect(auth0.requests).toHaveLength(2);
    });

    it('retries at once when a 429 says Retry-After: 0', async () => {
      const id = await login();
      auth0.answer(oauthError(429, 'too_many_requests', { 'retry-after': '0' }), tokens('AT-2'));
      await letTokenExpire(id);
      expect((await accessToken(id)).token).toBe('AT-2');
      expect(auth0.requests).toHaveLength(2);
    });

    it.each([
      ['a 429 with Retry-After: 0', oauthError(429, 'too_many_requests', { 'retry-after': '0' })],
      ['a 503 with a Retry-After date already past', () => oauthError(503, 'temporarily_unavailable', { 'retry-after': new Date(Date.now() - 2_000).toUTCString() })({} as TokenRequest)],
    ])('still backs off when every answer is %s: a bounded number of requests to a rate-limited Auth0', async (_name, answer) => {
      const id = await login();
      auth0.otherwise = answer;
      await letTokenExpire(id);
      expect(await failure(accessToken(id))).toMatchObject({ code: 'token_service_unavailable', status: 503 });
      expect(auth0.requests.length).toBeGreaterThanOrEqual(2);
      expect(auth0.requests.length).toBeLessThanOrEqual(15);
    });

    it('answers token_service_unavailable within the deadline while the issuer metadata is still loading, not after the discovery\'s own timeout', async () => {
      const id = await login();
      await letTokenExpire(id);
      // A BFF started while Auth0 is slow: its discovery request hangs, for up to the (long) attempt timeout.
      const hanging = ((input: string | URL | Request, init?: RequestInit) => (String(input).includes('/.well-known/')
        ? never({ form: new URLSearchParams(), signal: init?.signal ?? undefined })
        : auth0.fetch(input, init))) as typeof fetch;
      const slowStart = validateOptions({ ...configOptions(), fetch: hanging, tokens: { exchangeDeadline: 500, attemptTimeout: 20_000 } });
      const freshIdp = new IdpClient(slowStart);
      try {
        const started = performance.now();
        const error = await failure(accessToken(id, API, { tokenManager: new TokenManager(slowStart, freshIdp, sessions, report) }));
        expect(error).toMatchObject({ code: 'token_service_unavailable', status: 503 });
        expect(performance.now() - started).toBeLessThan(10_000);
        expect(await backend.readRecord(id)).toMatchObject({ refreshToken: ORT });
      } finally {
        freshIdp.close();
      }
    });

    it('answers token_service_unavailable with Retry-After 30 at once when a 429 asks for 30 s, and keeps the session', async () => {
      const id = await login();
      auth0.answer(oauthError(429, 'too_many_requests', { 'retry-after': '30' }));
      await letTokenExpire(id);

      const error = await failure(accessToken(id));

      expect(error).toMatchObject({ code: 'token_service_unavailable', status: 503, retryAfter: 30 });
      expect(auth0.requests).toHaveLength(1);
      expect(await backend.readRecord(id)).toMatchObject({ refreshToken: ORT });
      expect(eventsNamed('logout')).toEqual([]);
    }, 5_000);

    it('answers token_service_unavailable within the deadline after a bounded number of attempts when Auth0 keeps failing, and keeps the session', async () => {
      const id = await login();
      auth0.otherwise = oauthError(503, 'temporarily_unavailable');
      await letTokenExpire(id);

      const started = performance.now();
      const error = await failure(accessToken(id));
      const elapsed = performance.now() - started;

      expect(error).toMatchObject({ code: 'token_service_unavailable', status: 503 });
      expect(error.retryAfter).toBeGreaterThanOrEqual(1);
      expect(elapsed).toBeLessThan(DEADLINE_MS + 500);
      expect(auth0.requests.length).toBeGreaterThanOrEqual(2);
      expect(auth0.requests.length).toBeLessThanOrEqual(15);
      expect(await backend.readRecord(id)).toMatchObject({ refreshToken: ORT });
      expect(eventsNamed('logout')).toEqual([]);

      // Once Auth0 recovers, the next request gets a token: nothing was left locked.
      auth0.otherwise = tokens('AT-2');
      expect((await accessToken(id)).token).toBe('AT-2');
    });

    it('answers token_service_unavailable within the deadline when Auth0 never answers', async () => {
      const id = await login();
      auth0.otherwise = never;
      await letTokenExpire(id);

      const started = performance.now();
      const error = await failure(accessToken(id));
      const elapsed = performance.now() - started;

      expect(error.code).toBe('token_service_unavailable');
      expect(elapsed).toBeLessThan(DEADLINE_MS + 500);
      // Each attempt was given up after its own timeout, so more than one was made.
      expect(auth0.requests.length).toBeGreaterThanOrEqual(2);
      expect(auth0.requests.map((r) => r.signal?.aborted)).toEqual(auth0.requests.map(() => true));
      expect(eventsNamed('refresh_failed')[0]).toMatchObject({ kind: 'transient', error: 'timeout' });
      for (const event of eventsNamed('refresh_failed')) expect(event.kind).toBe('transient');
      expect(await backend.readRecord(id)).toMatchObject({ refreshToken: ORT });
    });

    it.each<[string, Answer]>([
      // 200 and JSON headers, then a body that never ends (only a real fetch would abort it with the signal).
      ['whose answer stops after its headers', () => new Response(new ReadableStream({ pull: () => new Promise(() => {}) }), { status: 200, headers: { 'content-type': 'application/json' } })],
      ['when the configured fetch ignores its abort signal', () => new Promise<Response>(() => {})],
    ])('gives up each attempt %s, within the deadline, and keeps the session', async (_name, stalled) => {
      const id = await login();
      auth0.otherwise = stalled;
      await letTokenExpire(id);

      const started = performance.now();
      const error = await failure(accessToken(id));

      expect(error.code).toBe('token_service_unavailable');
      expect(performance.now() - started).toBeLessThan(DEADLINE_MS + 500);
      expect(auth0.requests.length).toBeGreaterThanOrEqual(2);
      expect(eventsNamed('refresh_failed')[0]).toMatchObject({ kind: 'transient', error: 'timeout' });
      expect(await backend.readRecord(id)).toMatchObject({ refreshToken: ORT });
    });

    it('bounds each attempt without turning on async hooks, which would slow every promise of the app from then on', async () => {
      // The detector itself: an async hook with an init callback turns promise hooks on, and off again.
      expect(await promiseHooksOn()).toBe(false);
      const probe = createHook({ init() {} }).enable();
      expect(await promiseHooksOn()).toBe(true);
      probe.disable();
      expect(await promiseHooksOn()).toBe(false);

      const id = await login();
      auth0.answer(never, tokens('AT-2'));
      await letTokenExpire(id);
      expect((await accessToken(id)).token).toBe('AT-2');

      // The first attempt was given up on its own timeout, so each attempt had its limit.
      expect(auth0.requests[0]?.signal?.aborted).toBe(true);
      expect(await promiseHooksOn()).toBe(false);
    });

    it('lets go of an answered attempt at once: its timeout never fires afterwards', async () => {
      const id = await login();
      auth0.answer(tokens('AT-2'));
      await letTokenExpire(id);
      expect((await accessToken(id)).token).toBe('AT-2');
      const { signal } = auth0.requests[0] as TokenRequest;

      // An attempt timeout that outlived its request would abort this signal (and hold the request until then).
      await new Promise((resolve) => setTimeout(resolve, ATTEMPT_TIMEOUT_MS * 2));
      expect(signal?.aborted).toBe(false);
    });

    it('makes a last attempt with the time left when less than a whole attempt timeout remains before the deadline', async () => {
      // The first attempt uses half the deadline and asks to retry at once; the time left (~500 ms) is less
      // than the attempt timeout (600 ms), so the second attempt gets the (fractional) rest of the deadline.
      idp.close();
      await backend.close();
      await start({ exchangeDeadline: 1_000, attemptTimeout: 600 });
      const id = await login();
      auth0.answer(async () => {
        await new Promise((resolve) => setTimeout(resolve, 500));
        return json(503, { error: 'temporarily_unavailable' }, { 'retry-after': '0' });
      }, tokens('AT-2'));
      await letTokenExpire(id);

      expect((await accessToken(id)).token).toBe('AT-2');
      expect(auth0.requests).toHaveLength(2);
      expect(eventsNamed('refresh_failed')).toEqual([expect.objectContaining({ kind: 'transient', status: 503 })]);
    });

    it('gives up an attempt when the deadline comes, even when its own timeout is longer', async () => {
      idp.close();
      await backend.close();
      await start({ exchangeDeadline: 1_000, attemptTimeout: 10_000 });
      const id = await login();
      auth0.otherwise = never;
      await letTokenExpire(id);

      const started = performance.now();
      const error = await failure(accessToken(id));

      expect(error.code).toBe('token_service_unavailable');
      // Far below the attempt timeout: the request was aborted at the deadline, not left to run for 10 s.
      expect(performance.now() - started).toBeLessThan(5_000);
      expect(auth0.requests.map((r) => r.signal?.aborted)).toEqual([true]);
    });

    it('reaches Auth0 with an attempt timeout that is not a whole number of milliseconds', async () => {
      idp.close();
      await backend.close();
      await start({ exchangeDeadline: 1_000, attemptTimeout: 250.5 });
      const id = await login();
      auth0.answer(tokens('AT-2'));
      await letTokenExpire(id);

      expect((await accessToken(id)).token).toBe('AT-2');
      expect(auth0.requests).toHaveLength(1);
    });

    it('retries a refused connection and succeeds once Auth0 answers', async () => {
      const id = await login();
      auth0.answer(connectionRefused, tokens('AT-2'));
      await letTokenExpire(id);
      expect((await accessToken(id)).token).toBe('AT-2');
      expect(auth0.requests).toHaveLength(2);
    });

    it('says in the refresh event how long the exchange took with its retries, not the last request alone', async () => {
      const id = await login();
      let firstAt = 0;
      let lastAt = 0;
      auth0.answer(async () => {
        firstAt = performance.now();
        await new Promise((resolve) => setTimeout(resolve, 50));
        return json(503, { error: 'server_error' });
      }, (request) => {
        lastAt = performance.now();
        return tokens('AT-2')(request);
      });
      await letTokenExpire(id);
      expect((await accessToken(id)).token).toBe('AT-2');
      const [refreshed] = eventsNamed('refresh');
      expect(refreshed?.durationMs).toBeGreaterThanOrEqual(Math.floor(lastAt - firstAt));
    });

    it('answers token_service_unavailable after retrying when the connection keeps failing, and keeps the session', async () => {
      const id = await login();
      auth0.otherwise = connectionRefused;
      await letTokenExpire(id);
      expect((await failure(accessToken(id))).code).toBe('token_service_unavailable');
      expect(auth0.requests.length).toBeGreaterThanOrEqual(2);
      for (const event of eventsNamed('refresh_failed')) expect(event).toMatchObject({ kind: 'transient', error: 'network_error' });
      expect(await backend.readRecord(id)).toMatchObject({ refreshToken: ORT, accessTokens: { [API]: { token: AT_1 } } });
    });

    it.each([
      ['a body that is not JSON', () => new Response('<html>ok</html>', { status: 200, headers: { 'content-type': 'application/json' } })],
      ['JSON without an access token', () => json(200, { token_type: 'Bearer', expires_in: 3600 })],
    ])('treats a 200 answer with %s as transient: token_service_unavailable, session kept', async (_name, answer: Answer) => {
      const id = await login();
      auth0.otherwise = answer;
      await letTokenExpire(id);
      expect((await failure(accessToken(id))).code).toBe('token_service_unavailable');
      expect(auth0.requests.length).toBeGreaterThanOrEqual(2);
      expect(eventsNamed('refresh_failed')[0]).toMatchObject({ kind: 'transient', error: 'invalid_response' });
      expect(await backend.readRecord(id)).toMatchObject({ refreshToken: ORT });
      expect(eventsNamed('logout')).toEqual([]);
    });
  });

  it('never puts the ORT, a refresh token, an access token or the client secret into a log line, an event or an error', async () => {
    const errors: unknown[] = [];
    const attempt = async (promise: Promise<unknown>) => {
      try {
        await promise;
      } catch (error) {
        errors.push(error);
      }
    };
    const id = await login();
    // A rotation, a renewal, a transient failure, a configuration error, then the end of the Auth0 session.
    auth0.answer(tokens('AT-secret-2', { refresh_token: 'RT-secret-rotated' }));
    await letTokenExpire(id);
    await attempt(accessToken(id));
    auth0.answer(oauthError(503, 'temporarily_unavailable'), tokens('AT-secret-3'));
    await letTokenExpire(id);
    await attempt(accessToken(id));
    auth0.answer(oauthError(401, 'invalid_client'));
    await attempt(accessToken(id, OTHER_API));
    auth0.answer(oauthError(403, 'invalid_grant'));
    await letTokenExpire(id);
    await attempt(accessToken(id));

    expect(eventsNamed('refresh')).toHaveLength(2);
    expect(eventsNamed('logout')).toHaveLength(1);
    expect(errors.map((e) => (e as BffError).code)).toEqual(['configuration_error', 'session_ended']);
    const everything = JSON.stringify({
      logs,
      emitted,
      errors: errors.map((e) => ({ ...(e as object), message: (e as Error).message, stack: (e as Error).stack, cause: String((e as Error).cause) })),
    });
    for (const secret of [ORT, 'RT-secret-rotated', AT_1, 'AT-secret-2', 'AT-secret-3', CLIENT_SECRET, id]) {
      expect(everything).not.toContain(secret);
    }
  });

  it('does not bring back a session that ended while its exchange was in flight', async () => {
    const id = await login();
    const hold = deferred();
    auth0.answer(async () => {
      await hold.promise;
      return tokens('AT-late', { refresh_token: 'RT-late' })({ form: new URLSearchParams(), signal: undefined });
    });
    await letTokenExpire(id);

    const call = accessToken(id);
    await expect.poll(() => auth0.requests.length).toBe(1);
    await sessions.endAll({ id, sub: 'auth0|alice', sid: 'auth0-sid-1' }, 'user');
    hold.resolve();

    expect((await failure(call)).code).toBe('session_ended');
    expect(await backend.readRecord(id)).toBeUndefined();
    expect(await backend.readView(id, API)).toBeUndefined();
    expect(eventsNamed('refresh')).toEqual([]);
  });
});

describe('a token past its refresh point, while its renewal fails for the moment', () => {
  const timing = { refreshMargin: (lifetime: number) => Math.min(60, lifetime * 0.1), clockSkewMs: 1_000 };
  const entry = (lifetimeSeconds: number) => accessTokenEntry({ accessToken: 'AT', expiresIn: lifetimeSeconds } as never, 0, timing);

  it('serves calls until half its refresh margin is left, the clock-skew allowance kept whole', () => {
    // 60 s: expires at 59 s (exp's rounding), refreshed from 52 s (6 s margin, 1 s skew); serves until 55 s.
    const token = entry(60);
    expect(token.refreshAt).toBe(52_000);
    expect(servesPastRefresh(token, 54_999, 1_000)).toBe(true);
    expect(servesPastRefresh(token, 55_000, 1_000)).toBe(false);
    // An hour: refreshed from 3,538 s, serves until 3,568 s: 30 s of the margin kept for the call's way.
    expect(servesPastRefresh(entry(3_600), 3_567_999, 1_000)).toBe(true);
    expect(servesPastRefresh(entry(3_600), 3_568_000, 1_000)).toBe(false);
  });

  it('keeps at least a second of a short-lived token for the call\'s way: tokens of a few seconds are not served past their refresh point', () => {
    for (const lifetime of [3, 10]) expect(servesPastRefresh(entry(lifetime), entry(lifetime).refreshAt, 1_000)).toBe(false);
    // 20 s: expires at 19 s, refreshed from 16 s (2 s margin), served until a second before its end less the skew.
    expect(servesPastRefresh(entry(20), 16_999, 1_000)).toBe(true);
    expect(servesPastRefresh(entry(20), 17_000, 1_000)).toBe(false);
  });
});
