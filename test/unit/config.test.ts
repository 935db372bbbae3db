import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { validateOptions } from '../../src/config/validate.js';
import { BffConfigError } from '../../src/errors.js';
import { readDPoPKey } from '../../src/dpop/key.js';
import type { BffOptions } from '../../src/config/options.js';

const SECRET = 'a-session-secret-of-at-least-32-characters';
const base: BffOptions = {
  issuer: 'https://tenant.us.auth0.com/',
  clientId: 'client',
  clientSecret: 'secret',
  audience: 'https://api.example.com',
  baseURL: 'https://app.example.com',
  session: { secrets: [SECRET] },
};

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PRIVATE_JWK = rsa.privateKey.export({ format: 'jwk' });
const PUBLIC_JWK = rsa.publicKey.export({ format: 'jwk' });
const EC_PRIVATE_JWK = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });

const ecKey = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
const publicOnly = ({ d: _d, ...rest }: Record<string, unknown>) => rest;

function errorOf(options: Partial<BffOptions> & Record<string, unknown>): BffConfigError {
  try {
    validateOptions({ ...base, ...options } as BffOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(BffConfigError);
    return error as BffConfigError;
  }
  throw new Error('expected the options to be refused');
}

describe('configuration', () => {
  it('accepts a complete configuration and applies the defaults', () => {
    const config = validateOptions(base);
    expect(config.scope).toBe('openid online_access profile email');
    expect(config.session.cookieName).toBe('__Host-bff');
    expect(config.session.secure).toBe(true);
    expect(config.routes).toMatchObject({ login: '/auth/login', callback: '/auth/callback', user: '/auth/user', logout: '/auth/logout', backchannelLogout: '/auth/backchannel-logout', healthz: '/healthz' });
    expect(config.csrf).toEqual({ header: 'x-csrf', value: '1' });
    expect(config.tokens.refreshMargin(3600)).toBe(60);
    expect(config.tokens.refreshMargin(10)).toBe(1);
    expect(config.tokens.clockSkewMs).toBe(1_000);
    expect(Object.isFrozen(config) && Object.isFrozen(config.session)).toBe(true);
  });

  it('refuses a redisPrefix with a brace, which would take the place of the hash tag that keeps a session in one cluster slot', () => {
    for (const redisPrefix of ['{bff}:', 'bff{', 'app}:']) expect(errorOf({ redisPrefix }).message).toMatch(/redisPrefix.*"\{" or "\}"/);
    expect(validateOptions({ ...base, redisPrefix: 'tenant-a:bff:' }).redisPrefix).toBe('tenant-a:bff:');
  });

  it('reads dpop.previousKeys as keys of their own, naming the one that is wrong, and leaves out dpop.key and repeats', () => {
    expect(errorOf({ dpop: { key: EC_PRIVATE_JWK, previousKeys: EC_PRIVATE_JWK as never } }).message).toMatch(/^dpop\.previousKeys must be an array/);
    expect(errorOf({ dpop: { key: EC_PRIVATE_JWK, previousKeys: [ecKey(), publicOnly(ecKey())] as never } }).message).toMatch(/^dpop\.previousKeys\[1\] is a public key/);
    const old = ecKey();
    const config = validateOptions({ ...base, dpop: { key: EC_PRIVATE_JWK as never, previousKeys: [old, EC_PRIVATE_JWK, old] as never } });
    expect(config.dpop?.previousKeys.map((k) => k.thumbprint)).toEqual([readDPoPKey(old).thumbprint]);
    expect(validateOptions({ ...base, dpop: { key: EC_PRIVATE_JWK as never } }).dpop?.previousKeys).toEqual([]);
  });

  it('turns a domain into an https issuer', () => {
    const { domain: _d, issuer: _i, ...rest } = { ...base, domain: undefined };
    expect(validateOptions({ ...rest, domain: 'tenant.eu.auth0.com' }).issuer.href).toBe('https://tenant.eu.auth0.com/');
  });

  it('uses a plain cookie name without the __Host- prefix on http', () => {
    const config = validateOptions({ ...base, baseURL: 'http://localhost:3000', issuer: 'http://127.0.0.1:4000/' });
    expect(config.session.cookieName).toBe('bff');
    expect(config.session.secure).toBe(false);
  });

  it.each([
    [{ issuer: undefined }, 'issuer'],
    [{ issuer: 'http://tenant.auth0.com/' }, 'issuer'],
    [{ issuer: 'not a url' }, 'issuer'],
    [{ domain: 'tenant.auth0.com' }, 'issuer'],
    [{ clientId: '' }, 'clientId'],
    [{ clientSecret: undefined }, 'clientSecret'],
    [{ clientAuthMethod: 'magic' }, 'clientAuthMethod'],
    [{ clientAuthMethod: 'private_key_jwt' }, 'clientAssertionKey'],
    [{ baseURL: 'https://app.example.com/app' }, 'baseURL'],
    [{ baseURL: 'http://app.example.com' }, 'baseURL'],
    [{ scope: 'openid offline_access' }, 'scope'],
    [{ session: {} }, 'session.secrets'],
    [{ session: { secrets: ['short'] } }, 'session.secrets'],
    [{ session: { secrets: [SECRET], idleTimeout: -1 } }, 'session.idleTimeout'],
    [{ session: { secrets: [SECRET], absoluteTimeout: 0 } }, 'session.absoluteTimeout'],
    [{ session: { secrets: [SECRET], cookie: { sameSite: 'none' } } }, 'session.cookie.sameSite'],
    [{ session: { secrets: [SECRET], cookieName: 'bad name' } }, 'session.cookieName'],
    // The default name on https is __Host-: the domain is what conflicts with it, and the message says what to set.
    [{ session: { secrets: [SECRET], cookie: { domain: 'example.com' } } }, 'session.cookie.domain'],
    [{ session: { secrets: [SECRET], cookieName: '__Host-app', cookie: { domain: 'example.com' } } }, 'session.cookieName'],
    [{ session: { secrets: [SECRET], encryptionKeys: ['too-short'] } }, 'session.encryptionKeys[0]'],
    [{ backchannelAlgorithms: ['none'] }, 'backchannelAlgorithms'],
    [{ backchannelAlgorithms: ['HS256'] }, 'backchannelAlgorithms'],
    [{ backchannelAlgorithms: ['rs256'] }, 'backchannelAlgorithms'],
    [{ backchannelAlgorithms: [] }, 'backchannelAlgorithms'],
    [{ routes: { login: 'auth/login' } }, 'routes.login'],
    [{ routes: { signin: '/x' } }, 'routes.signin'],
    [{ apis: [{ mount: '/', upstream: 'http://127.0.0.1:1' }] }, 'apis[0].mount'],
    [{ apis: [{ mount: '/api', upstream: 'ftp://x' }] }, 'apis[0].upstream'],
    [{ audience: undefined, apis: [{ mount: '/api', upstream: 'http://127.0.0.1:1' }] }, 'apis[0].audience'],
    [{ apis: [{ mount: '/api', upstream: 'http://127.0.0.1:1' }, { mount: '/api', upstream: 'http://127.0.0.1:2' }] }, 'apis[1].mount'],
    [{ apis: [{ mount: '/a', upstream: 'http://127.0.0.1:1', scope: 'read' }, { mount: '/b', upstream: 'http://127.0.0.1:2', scope: 'write' }] }, 'apis[1].scope'],
    [{ apis: [{ mount: '/api', upstream: 'http://127.0.0.1:1', token: 'anonymous' }] }, 'apis[0].token'],
    [{ apis: [{ mount: '/api', upstream: 'http://127.0.0.1:1', token: 'user-or-none', websocket: true }] }, 'apis[0].websocket'],
    [{ audience: undefined, apis: [{ mount: '/api', upstream: 'http://127.0.0.1:1', token: 'client' }] }, 'apis[0].audience'],
    [{ apis: [{ mount: '/a', upstream: 'http://127.0.0.1:1', scope: 'read' }, { mount: '/b', upstream: 'http://127.0.0.1:2', scope: 'write', token: 'user-or-client' }] }, 'apis[1].scope'],
    [{ csrf: { header: 'bad header' } }, 'csrf.header'],
    [{ allowedReturnTo: ['//evil'] }, 'allowedReturnTo[0]'],
    [{ redis: {} }, 'redis'],
    [{ tokens: { exchangeDeadline: 0 } }, 'tokens.exchangeDeadline'],
    [{ tokens: { clockSkew: -1 } }, 'tokens.clockSkew'],
    [{ tokens: { clockSkew: '5' } }, 'tokens.clockSkew'],
    [{ logger: {} }, 'logger'],
    [{ apis: [{ mount: '/api', upstream: 'http://127.0.0.1:1', bodyTimeout: -1 }] }, 'apis[0].bodyTimeout'],
    [{ apis: [{ mount: '/api', upstream: 'http://127.0.0.1:1', eventStreamTimeout: '60s' }] }, 'apis[0].eventStreamTimeout'],
    [{ apis: [{ mount: '/api', upstream: 'http://127.0.0.1:1', websocket: 'yes' }] }, 'apis[0].websocket'],
    [{ apis: [{ mount: '/api', upstream: 'http://127.0.0.1:1', csrf: 'never' }] }, 'apis[0].csrf'],
    [{ apis: [{ mount: '/api', upstream: 'http://127.0.0.1:1', connections: 0 }] }, 'apis[0].connections'],
    [{ apis: [{ mount: '/api', upstream: 'http://127.0.0.1:1', connections: 1.5 }] }, 'apis[0].connections'],
    [{ websocket: true }, 'websocket'],
    [{ websocket: { allowedOrigins: [] } }, 'websocket.allowedOrigins'],
    [{ websocket: { allowedOrigins: 'https://app.example.com' } }, 'websocket.allowedOrigins'],
    [{ websocket: { allowedOrigins: ['https://app.example.com', 'https://app.example.com/path'] } }, 'websocket.allowedOrigins[1]'],
    [{ websocket: { allowedOrigins: ['https://app.example.com/'] } }, 'websocket.allowedOrigins[0]'],
    [{ websocket: { allowedOrigins: ['http://app.example.com'] } }, 'websocket.allowedOrigins[0]'],
    [{ websocket: { allowedOrigins: ['*'] } }, 'websocket.allowedOrigins[0]'],
    [{ websocket: { pingInterval: -1 } }, 'websocket.pingInterval'],
    [{ websocket: { pingInterval: '30s' } }, 'websocket.pingInterval'],
    [{ websocket: { pingInterval: 5 } }, 'websocket.pingInterval'],
    [{ websocket: { pingUpstream: 'no' } }, 'websocket.pingUpstream'],
    [{ logLevel: 'verbose' }, 'logLevel'],
    [{ telemetry: true }, 'telemetry'],
    [{ telemetry: { tracerProvider: {} } }, 'telemetry.tracerProvider'],
    [{ telemetry: { meterProvider: 'prometheus' } }, 'telemetry.meterProvider'],
    // A misspelt option is refused, not ignored, at every level.
    [{ api: [{ mount: '/api', upstream: 'http://127.0.0.1:1' }] }, 'api'],
    [{ session: { secrets: [SECRET], idleTimeoutSeconds: 600 } }, 'session.idleTimeoutSeconds'],
    [{ session: { secrets: [SECRET], cookie: { samesite: 'strict' } } }, 'session.cookie.samesite'],
    [{ apis: [{ mount: '/api', upstream: 'http://127.0.0.1:1', timeoutMs: 1_000 }] }, 'apis[0].timeoutMs'],
    [{ tokens: { clockskew: 5 } }, 'tokens.clockskew'],
    [{ logout: { returnto: '/bye' } }, 'logout.returnto'],
    [{ csrf: { name: 'X-CSRF' } }, 'csrf.name'],
    [{ websocket: { origins: ['https://app.example.com'] } }, 'websocket.origins'],
    [{ telemetry: { tracer: {} } }, 'telemetry.tracer'],
    [{ dpop: { privateKey: {} } }, 'dpop.privateKey'],
    [{ session: 'secret' }, 'session'],
    [{ tokens: [] }, 'tokens'],
    // Wrong types get a message naming the option, not a TypeError from inside.
    [{ allowedReturnTo: '/app' }, 'allowedReturnTo'],
    [{ loginParameters: 5 }, 'loginParameters'],
    [{ loginParameters: 'prompt' }, 'loginParameters'],
    [{ loginParameters: ['prompt', 'redirect_uri'] }, 'loginParameters'],
    [{ issuer: undefined, domain: 'tenant.us.auth0.com:99999' }, 'domain'],
    [{ issuer: 'https://tenant.us.auth0.com/?x=1' }, 'issuer'],
    // Booleans read from the environment arrive as strings: "false" is not taken as true.
    [{ logout: { idpLogout: 'false' } }, 'logout.idpLogout'],
    [{ logout: { idTokenHint: 'true' } }, 'logout.idTokenHint'],
    [{ session: { secrets: [SECRET], cookieName: 'sid', cookie: { secure: 'false' } } }, 'session.cookie.secure'],
    [{ session: { secrets: [SECRET], external: 'true' } }, 'session.external'],
    // A mount over one of the BFF's routes would answer it instead (the proxy is looked at first).
    [{ apis: [{ mount: '/auth', upstream: 'http://127.0.0.1:1' }] }, 'apis[0].mount'],
    [{ apis: [{ mount: '/healthz/', upstream: 'http://127.0.0.1:1' }] }, 'apis[0].mount'],
    [{ routes: { login: '/api/login' }, apis: [{ mount: '/api', upstream: 'http://127.0.0.1:1' }] }, 'apis[0].mount'],
    [{ routes: { sessions: true }, apis: [{ mount: '/auth/sessions', upstream: 'http://127.0.0.1:1' }] }, 'apis[0].mount'],
    // The proxy sends the browser's query, never one of the upstream's own: a query there would be lost.
    [{ apis: [{ mount: '/api', upstream: 'https://api.example.com/v1?api-version=2' }] }, 'apis[0].upstream'],
    [{ apis: [{ mount: '/api', upstream: 'https://api.example.com/v1#x' }] }, 'apis[0].upstream'],
    // A cookie domain the browser would drop, or the cookie serializer refuse at the first login.
    [{ session: { secrets: [SECRET], cookieName: 'sid', cookie: { domain: 'https://app.example.com' } } }, 'session.cookie.domain'],
    [{ session: { secrets: [SECRET], cookieName: 'sid', cookie: { domain: 5 } } }, 'session.cookie.domain'],
    [{ session: { secrets: [SECRET], cookieName: 'sid', cookie: { domain: 'example.org' } } }, 'session.cookie.domain'],
    [{ session: { secrets: [SECRET], cookieName: 'sid', cookie: { domain: 'pp.example.com' } } }, 'session.cookie.domain'],
    // Past Node's longest timer, a timeout fires at once.
    [{ apis: [{ mount: '/api', upstream: 'http://127.0.0.1:1', timeout: 2 ** 31 }] }, 'apis[0].timeout'],
    [{ apis: [{ mount: '/api', upstream: 'http://127.0.0.1:1', bodyTimeout: 2 ** 31 }] }, 'apis[0].bodyTimeout'],
    [{ tokens: { attemptTimeout: 2 ** 31 } }, 'tokens.attemptTimeout'],
    [{ redisCommandTimeout: 2 ** 31 }, 'redisCommandTimeout'],
    // A margin that gives no number (a forgotten `return`) would leave none, and no clock-skew allowance either.
    [{ tokens: { refreshMargin: () => undefined } }, 'tokens.refreshMargin'],
    [{ tokens: { refreshMargin: (lifetime: number) => lifetime - 100 } }, 'tokens.refreshMargin'],
    [{ tokens: { refreshMargin: () => { throw new Error('no'); } } }, 'tokens.refreshMargin'],
    // A client assertion key that cannot sign fails only at discovery, where it reads as Auth0 being down.
    [{ clientAssertionKey: {} }, 'clientAssertionKey'],
    [{ clientAssertionKey: PUBLIC_JWK }, 'clientAssertionKey'],
    [{ clientAssertionKey: { ...PRIVATE_JWK, alg: 'ES256' } }, 'clientAssertionKey'],
    [{ clientAssertionKey: EC_PRIVATE_JWK }, 'clientAssertionKey'],
  ])('refuses %j, naming %s', (options, option) => {
    const error = errorOf(options as Record<string, unknown>);
    expect(error.option).toBe(option);
    expect(error.message.startsWith(option)).toBe(true);
    expect(error.message.length).toBeGreaterThan(option.length + 10);
  });

  it('bounds the wait for an answer and the silences within a body apart, compatibly with configs that set only timeout', () => {
    const apis = validateOptions({
      ...base,
      apis: [
        { mount: '/a', upstream: 'http://127.0.0.1:1' },
        { mount: '/b', upstream: 'http://127.0.0.1:1', timeout: 600_000 },
        { mount: '/c', upstream: 'http://127.0.0.1:1', timeout: 5_000, bodyTimeout: 0, eventStreamTimeout: 90_000, websocket: false },
      ],
    }).apis;
    expect(apis.map(({ timeoutMs, bodyTimeoutMs, eventStreamTimeoutMs, websocket }) => ({ timeoutMs, bodyTimeoutMs, eventStreamTimeoutMs, websocket }))).toEqual([
      { timeoutMs: 30_000, bodyTimeoutMs: 300_000, eventStreamTimeoutMs: 0, websocket: true },
      // A config that relied on a long `timeout` for slow bodies is never cut sooner than before.
      { timeoutMs: 600_000, bodyTimeoutMs: 600_000, eventStreamTimeoutMs: 0, websocket: true },
      { timeoutMs: 5_000, bodyTimeoutMs: 0, eventStreamTimeoutMs: 90_000, websocket: false },
    ]);
  });

  it('lets WebSocket handshakes come from baseURL\'s origin, or from the origins listed', () => {
    expect(validateOptions(base).websocket.allowedOrigins).toEqual(['https://app.example.com']);
    expect(validateOptions(base).websocket).toMatchObject({ pingIntervalMs: 30_000, pingUpstream: true });
    expect(validateOptions({ ...base, websocket: { pingUpstream: false } }).websocket.pingUpstream).toBe(false);
    expect(validateOptions({ ...base, websocket: { allowedOrigins: ['https://App.Example.com:443', 'http://localhost:5173'] } }).websocket.allowedOrigins)
      .toEqual(['https://app.example.com', 'http://localhost:5173']);
  });

  it('gives every API the `user` token policy unless it names another, and WebSockets only with `user`', () => {
    const config = validateOptions({ ...base, apis: [{ mount: '/api', upstream: 'http://127.0.0.1:1' }, { mount: '/app', upstream: 'http://127.0.0.1:1', token: 'client' }] });
    expect(config.apis.map((api) => [api.mount, api.token, api.websocket])).toEqual([['/api', 'user', true], ['/app', 'client', false]]);
  });

  it('needs no audience for an API called without a token', () => {
    const config = validateOptions({ ...base, audience: undefined, apis: [{ mount: '/plain', upstream: 'http://127.0.0.1:1', token: 'none' }] });
    expect(config.apis[0]).toMatchObject({ token: 'none', audience: '' });
  });

  it('lets an API with the application\'s token ask for other scopes than a user API of the same audience', () => {
    const config = validateOptions({ ...base, apis: [
      { mount: '/a', upstream: 'http://127.0.0.1:1', scope: 'read' },
      { mount: '/b', upstream: 'http://127.0.0.1:2', scope: 'read:all', token: 'client' },
    ] });
    expect(config.apis.map((api) => api.scope)).toEqual(['read', 'read:all']);
  });

  it('takes a cookie domain that baseURL\'s host is, or is under', () => {
    const domainOf = (domain: string) => validateOptions({ ...base, session: { secrets: [SECRET], cookieName: 'sid', cookie: { domain } } }).session.domain;
    expect(domainOf('example.com')).toBe('example.com');
    expect(domainOf('.Example.com')).toBe('.Example.com');
    expect(domainOf('app.example.com')).toBe('app.example.com');
  });

  it('takes private client assertion keys whose alg fits them, RS256 for an RSA key that names none', () => {
    const { alg: _alg, ...rsaWithoutAlg } = PRIVATE_JWK;
    for (const key of [rsaWithoutAlg, { ...PRIVATE_JWK, alg: 'PS256' }, { ...EC_PRIVATE_JWK, alg: 'ES256' }]) {
      expect(validateOptions({ ...base, clientSecret: undefined, clientAssertionKey: key as never }).clientAuth.method).toBe('private_key_jwt');
    }
  });

  it('refuses a client assertion key whose alg holds its private d, without quoting it', () => {
    const error = errorOf({ clientSecret: undefined, clientAssertionKey: { ...PRIVATE_JWK, alg: PRIVATE_JWK.d } as never });
    expect(error.option).toBe('clientAssertionKey');
    expect(error.message).toMatch(/"alg": \(a \d+-character value\), which its key type does not sign with/);
    expect(error.message).not.toContain(PRIVATE_JWK.d!.slice(0, 12));
  });

  it('gives a token the default margin should the app\'s margin misbehave for its lifetime after startup', () => {
    const margin = (lifetime: number) => (lifetime === 1234 ? Number.NaN : 5);
    const config = validateOptions({ ...base, tokens: { refreshMargin: margin } });
    expect(config.tokens.refreshMargin(3600)).toBe(5);
    expect(config.tokens.refreshMargin(1234)).toBe(60);
  });

  it('never freezes the objects the app passed in', () => {
    const logger = { warn() {}, error() {} };
    validateOptions({ ...base, logger });
    expect(Object.isFrozen(logger)).toBe(false);
  });
});
