import { describe, expect, it } from 'vitest';
import { validateOptions } from '../../src/config/validate.js';
import { BffConfigError } from '../../src/errors.js';
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
    [{ session: { secrets: [SECRET], cookie: { domain: 'example.com' } } }, 'session.cookieName'],
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
    [{ websocket: true }, 'websocket'],
    [{ websocket: { allowedOrigins: [] } }, 'websocket.allowedOrigins'],
    [{ websocket: { allowedOrigins: 'https://app.example.com' } }, 'websocket.allowedOrigins'],
    [{ websocket: { allowedOrigins: ['https://app.example.com', 'https://app.example.com/path'] } }, 'websocket.allowedOrigins[1]'],
    [{ websocket: { allowedOrigins: ['https://app.example.com/'] } }, 'websocket.allowedOrigins[0]'],
    [{ websocket: { allowedOrigins: ['http://app.example.com'] } }, 'websocket.allowedOrigins[0]'],
    [{ websocket: { allowedOrigins: ['*'] } }, 'websocket.allowedOrigins[0]'],
    [{ logLevel: 'verbose' }, 'logLevel'],
    [{ telemetry: true }, 'telemetry'],
    [{ telemetry: { tracerProvider: {} } }, 'telemetry.tracerProvider'],
    [{ telemetry: { meterProvider: 'prometheus' } }, 'telemetry.meterProvider'],
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

  it('never freezes the objects the app passed in', () => {
    const logger = { warn() {}, error() {} };
    validateOptions({ ...base, logger });
    expect(Object.isFrozen(logger)).toBe(false);
  });
});
