import { BffConfigError } from '../errors.js';
import type { Log } from '../events/logger.js';
import type { TelemetryOptions } from '../telemetry/providers.js';
import { readLogger, readTelemetry } from './observability.js';
import type { BffOptions, RedisClient, TokenPolicy } from './options.js';
import { readDPoPOption, type DPoPConfig } from '../dpop/options.js';
import { parseEncryptionKeys } from '../session/encryption.js';

/** The validated, frozen configuration. No module but this one reads raw options. */
export interface BffConfig {
  readonly issuer: URL;
  readonly clientId: string;
  readonly clientAuth:
    | { readonly method: 'client_secret_post' | 'client_secret_basic'; readonly secret: string }
    | { readonly method: 'private_key_jwt'; readonly key: CryptoKey | JsonWebKey };
  readonly audience: string | undefined;
  readonly baseURL: URL;
  readonly scope: string;
  readonly routes: Readonly<Record<'login' | 'callback' | 'user' | 'logout' | 'backchannelLogout' | 'healthz' | 'sessions', string | undefined>>;
  readonly redis: RedisClient | undefined;
  readonly redisPrefix: string;
  readonly redisCommandTimeoutMs: number;
  readonly session: {
    readonly secrets: readonly string[];
    readonly cookieName: string;
    readonly sameSite: 'lax' | 'strict';
    readonly secure: boolean;
    readonly domain: string | undefined;
    readonly idleTimeoutMs: number;
    readonly absoluteTimeoutMs: number;
    readonly external: boolean;
    readonly encryptionKeys: readonly Buffer[];
  };
  readonly apis: ReadonlyArray<{
    readonly mount: string;
    readonly upstream: URL;
    /** '' for an API whose policy is `none` and that names no audience (it never gets a token). */
    readonly audience: string;
    readonly scope: string | undefined;
    /** The wait for the response headers. */
    readonly timeoutMs: number;
    /** The longest silence between two body chunks; 0: none. */
    readonly bodyTimeoutMs: number;
    /** The same for event streams; 0: none. */
    readonly eventStreamTimeoutMs: number;
    readonly websocket: boolean;
    readonly token: TokenPolicy;
  }>;
  readonly websocket: { readonly allowedOrigins: readonly string[] };
  readonly csrf: { readonly header: string; readonly value: string };
  readonly allowedReturnTo: readonly string[];
  readonly userClaims: readonly string[] | undefined;
  readonly logout: { readonly idpLogout: boolean; readonly returnTo: string; readonly idTokenHint: boolean };
  readonly tokens: {
    readonly refreshMargin: (lifetimeSeconds: number) => number;
    readonly clockSkewMs: number;
    readonly exchangeDeadlineMs: number;
    readonly attemptTimeoutMs: number;
  };
  /** Sender-constrained tokens: the DPoP key, read once. Undefined: Bearer tokens. */
  readonly dpop: DPoPConfig | undefined;
  readonly loginParameters: readonly string[];
  readonly backchannelAlgorithms: readonly string[];
  /** The app's logger, wrapped once: level-filtered, called in its own argument order. */
  readonly logger: Log;
  readonly telemetry: TelemetryOptions | false;
  readonly clock: () => number;
  readonly fetch: typeof fetch;
}

const DAY = 24 * 60 * 60;
const DEFAULT_ROUTES = {
  login: '/auth/login',
  callback: '/auth/callback',
  user: '/auth/user',
  logout: '/auth/logout',
  backchannelLogout: '/auth/backchannel-logout',
  healthz: '/healthz',
} as const;
/** Routes that are off unless asked for (`true` gives this path). */
const OPTIONAL_ROUTES = {
  sessions: '/auth/sessions',
} as const;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);
const TOKEN_POLICIES: readonly TokenPolicy[] = ['user', 'user-or-none', 'client', 'user-or-client', 'none'];
const USES_USER_TOKEN = new Set<TokenPolicy>(['user', 'user-or-none', 'user-or-client']);

/** Reads every option once, applies the defaults, and throws a `BffConfigError` naming the first bad one. */
export function validateOptions(options: BffOptions): BffConfig {
  if (options === null || typeof options !== 'object') throw new BffConfigError('options', 'must be an object');

  const issuer = readIssuer(options);
  const clientId = nonEmptyString(options.clientId, 'clientId', 'the Auth0 application\'s Client ID');
  const clientAuth = readClientAuth(options);
  const audience = options.audience === undefined ? undefined : nonEmptyString(options.audience, 'audience', 'an Auth0 API identifier');
  const baseURL = readBaseURL(options.baseURL);
  const secure = baseURL.protocol === 'https:';

  const routes = readRoutes(options.routes);
  if (options.redis !== undefined && (options.redis === null || typeof (options.redis as { sendCommand?: unknown }).sendCommand !== 'function')) {
    throw new BffConfigError('redis', 'must be a node-redis v6 client (createClient(), createCluster() or createSentinel() from "redis"), or be left out for in-memory sessions');
  }
  const redisPrefix = options.redisPrefix ?? 'bff:';
  if (typeof redisPrefix !== 'string') throw new BffConfigError('redisPrefix', 'must be a string, e.g. "bff:"');

  const s = options.session ?? {};
  const external = s.external === true;
  const secrets = typeof s.secrets === 'string' ? [s.secrets] : (s.secrets ?? []);
  if (!Array.isArray(secrets) || secrets.some((x) => typeof x !== 'string' || x.length < 32)) {
    throw new BffConfigError('session.secrets', 'must be a string or an array of strings of at least 32 characters (the first signs, all verify)');
  }
  if (!external && secrets.length === 0) {
    throw new BffConfigError('session.secrets', 'is required (at least one random string of 32+ characters), unless session.external is true');
  }
  const cookieName = s.cookieName ?? (secure ? '__Host-bff' : 'bff');
  if (typeof cookieName !== 'string' || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(cookieName)) {
    throw new BffConfigError('session.cookieName', 'must be a cookie token (letters, digits, and !#$%&\'*+-.^_`|~)');
  }
  const sameSite = s.cookie?.sameSite ?? 'lax';
  if (sameSite !== 'lax' && sameSite !== 'strict') {
    throw new BffConfigError('session.cookie.sameSite', 'must be "lax" or "strict" (the login redirect from Auth0 needs a cookie that is not "none"-only)');
  }
  const cookieSecure = s.cookie?.secure ?? secure;
  if (cookieName.startsWith('__Host-') && (!cookieSecure || s.cookie?.domain !== undefined)) {
    throw new BffConfigError('session.cookieName', 'starts with __Host-, which needs a Secure cookie (an https baseURL) and no cookie domain');
  }
  const idleTimeout = positiveNumber(s.idleTimeout ?? 3 * DAY, 'session.idleTimeout', 'seconds');
  const absoluteTimeout = positiveNumber(s.absoluteTimeout ?? 7 * DAY, 'session.absoluteTimeout', 'seconds');

  const audienceForApis = (i: number, a: string | undefined, token: TokenPolicy): string => {
    const value = a ?? audience;
    if (value === undefined) {
      if (token === 'none') return '';
      throw new BffConfigError(`apis[${i}].audience`, 'is needed when the BFF has no default audience');
    }
    return nonEmptyString(value, `apis[${i}].audience`, 'an Auth0 API identifier');
  };
  if (options.apis !== undefined && !Array.isArray(options.apis)) throw new BffConfigError('apis', 'must be an array of { mount, upstream }');
  const apis = (options.apis ?? []).map((api, i) => {
    const mount = pathOption(api?.mount, `apis[${i}].mount`);
    if (mount === '/') throw new BffConfigError(`apis[${i}].mount`, 'must not be "/" (the auth routes live there); use e.g. "/api"');
    const timeoutMs = Math.ceil(positiveNumber(api.timeout ?? 30_000, `apis[${i}].timeout`, 'milliseconds'));
    if (api.websocket !== undefined && typeof api.websocket !== 'boolean') throw new BffConfigError(`apis[${i}].websocket`, 'must be true or false');
    const token = api.token ?? 'user';
    if (!TOKEN_POLICIES.includes(token)) throw new BffConfigError(`apis[${i}].token`, `must be one of ${TOKEN_POLICIES.map((p) => `"${p}"`).join(', ')}`);
    // A WebSocket through the BFF lives and ends with the user's session, with the user's token: other policies
    // would send that token where the API is set to get another, or none.
    if (api.websocket === true && token !== 'user') {
      throw new BffConfigError(`apis[${i}].websocket`, `must not be true with the token policy "${token}": WebSockets are forwarded only for APIs with the "user" policy`);
    }
    return Object.freeze({
      mount: mount.replace(/\/+$/, ''),
      upstream: httpUrl(api.upstream, `apis[${i}].upstream`),
      audience: audienceForApis(i, api.audience, token),
      scope: api.scope === undefined ? undefined : nonEmptyString(api.scope, `apis[${i}].scope`, 'a space-separated scope list'),
      timeoutMs,
      // Before bodyTimeout existed, `timeout` bounded the gaps between body chunks too: never cut sooner than that.
      bodyTimeoutMs: Math.ceil(nonNegativeNumber(api.bodyTimeout ?? Math.max(300_000, timeoutMs), `apis[${i}].bodyTimeout`)),
      eventStreamTimeoutMs: Math.ceil(nonNegativeNumber(api.eventStreamTimeout ?? 0, `apis[${i}].eventStreamTimeout`)),
      websocket: api.websocket ?? token === 'user',
      token,
    });
  });
  const mounts = new Set<string>();
  const scopeByAudience = new Map<string, string | undefined>();
  for (const [i, api] of apis.entries()) {
    if (mounts.has(api.mount)) throw new BffConfigError(`apis[${i}].mount`, `"${api.mount}" is used twice`);
    mounts.add(api.mount);
    // One user access token is kept per audience: two APIs of one audience must ask for the same scopes.
    // (The application's own tokens are kept per audience and scope.)
    if (!USES_USER_TOKEN.has(api.token)) continue;
    if (scopeByAudience.has(api.audience) && scopeByAudience.get(api.audience) !== api.scope) {
      throw new BffConfigError(`apis[${i}].scope`, `differs from another API with the audience "${api.audience}"; give both the same scope`);
    }
    scopeByAudience.set(api.audience, api.scope);
  }

  const csrfHeader = options.csrf?.header ?? 'X-CSRF';
  if (typeof csrfHeader !== 'string' || !/^[A-Za-z0-9-]+$/.test(csrfHeader)) throw new BffConfigError('csrf.header', 'must be a header name such as "X-CSRF"');
  const csrfValue = nonEmptyString(options.csrf?.value ?? '1', 'csrf.value', 'the value the SPA sends, e.g. "1"');

  if (options.websocket !== undefined && (options.websocket === null || typeof options.websocket !== 'object')) {
    throw new BffConfigError('websocket', 'must be an object such as { allowedOrigins: ["https://app.example.com"] }');
  }
  const allowedOrigins = readOrigins(options.websocket?.allowedOrigins, baseURL);

  const allowedReturnTo = (options.allowedReturnTo ?? ['/']).map((p, i) => pathOption(p, `allowedReturnTo[${i}]`));
  if (options.userClaims !== undefined && (!Array.isArray(options.userClaims) || options.userClaims.some((c) => typeof c !== 'string'))) {
    throw new BffConfigError('userClaims', 'must be an array of claim names, e.g. ["name", "email"]');
  }
  const logoutReturnTo = pathOption(options.logout?.returnTo ?? '/', 'logout.returnTo');

  const refreshMargin = options.tokens?.refreshMargin ?? ((lifetime: number) => Math.min(60, lifetime * 0.1));
  if (typeof refreshMargin !== 'function') throw new BffConfigError('tokens.refreshMargin', 'must be a function (lifetimeSeconds) => seconds');
  const clockSkew = options.tokens?.clockSkew ?? 1;
  if (typeof clockSkew !== 'number' || !Number.isFinite(clockSkew) || clockSkew < 0) {
    throw new BffConfigError('tokens.clockSkew', 'must be a number of seconds, 0 or more (how far an API\'s clock may run ahead of the BFF\'s)');
  }
  const exchangeDeadlineMs = Math.ceil(positiveNumber(options.tokens?.exchangeDeadline ?? 5_000, 'tokens.exchangeDeadline', 'milliseconds'));
  const attemptTimeoutMs = Math.ceil(positiveNumber(options.tokens?.attemptTimeout ?? 2_500, 'tokens.attemptTimeout', 'milliseconds'));

  const userScopes = readScopes(options.scope);
  const scope = ['openid', 'online_access', ...userScopes.filter((x) => x !== 'openid' && x !== 'online_access')].join(' ');

  const logger = readLogger(options.logger, options.logLevel);
  const telemetry = readTelemetry(options.telemetry);
  const clock = options.clock ?? Date.now;
  if (typeof clock !== 'function') throw new BffConfigError('clock', 'must be a function returning milliseconds since the epoch');
  const fetchImpl = options.fetch ?? globalThis.fetch;
  if (typeof fetchImpl !== 'function') throw new BffConfigError('fetch', 'must be a fetch function');

  return freezeConfig({
    issuer,
    clientId,
    clientAuth,
    audience,
    baseURL,
    scope,
    routes,
    redis: options.redis,
    redisPrefix,
    redisCommandTimeoutMs: Math.ceil(positiveNumber(options.redisCommandTimeout ?? 2_000, 'redisCommandTimeout', 'milliseconds')),
    session: {
      secrets: [...secrets],
      cookieName,
      sameSite,
      secure: cookieSecure,
      domain: s.cookie?.domain,
      idleTimeoutMs: idleTimeout * 1000,
      absoluteTimeoutMs: absoluteTimeout * 1000,
      external,
      encryptionKeys: parseEncryptionKeys(s.encryptionKeys, 'session.encryptionKeys'),
    },
    apis,
    csrf: { header: csrfHeader.toLowerCase(), value: csrfValue },
    websocket: { allowedOrigins },
    allowedReturnTo,
    userClaims: options.userClaims === undefined ? undefined : [...options.userClaims],
    logout: { idpLogout: options.logout?.idpLogout ?? true, returnTo: logoutReturnTo, idTokenHint: options.logout?.idTokenHint === true },
    tokens: { refreshMargin, clockSkewMs: Math.round(clockSkew * 1000), exchangeDeadlineMs, attemptTimeoutMs },
    dpop: readDPoPOption(options.dpop),
    loginParameters: [...(options.loginParameters ?? ['prompt', 'screen_hint', 'organization', 'login_hint'])],
    backchannelAlgorithms: readBackchannelAlgorithms(options.backchannelAlgorithms),
    logger,
    telemetry,
    clock,
    fetch: fetchImpl,
  });
}

function readIssuer(options: BffOptions): URL {
  if (options.issuer !== undefined && options.domain !== undefined) {
    throw new BffConfigError('issuer', 'and domain are both set: give one (issuer "https://TENANT.us.auth0.com/" or domain "TENANT.us.auth0.com")');
  }
  if (options.domain !== undefined) {
    const domain = nonEmptyString(options.domain, 'domain', 'a host name such as "TENANT.us.auth0.com"');
    if (!/^[A-Za-z0-9.-]+(:\d+)?$/.test(domain)) throw new BffConfigError('domain', 'must be a host name such as "TENANT.us.auth0.com", without a scheme or path');
    return new URL(`https://${domain}/`);
  }
  if (options.issuer === undefined) throw new BffConfigError('issuer', 'is required: the Auth0 issuer URL, e.g. "https://TENANT.us.auth0.com/" (or give domain)');
  const url = httpUrl(options.issuer, 'issuer');
  return url;
}

function readClientAuth(options: BffOptions): BffConfig['clientAuth'] {
  const method = options.clientAuthMethod ?? (options.clientAssertionKey !== undefined ? 'private_key_jwt' : 'client_secret_post');
  if (method === 'private_key_jwt') {
    const key = options.clientAssertionKey;
    if (key === undefined || key === null || typeof key !== 'object') {
      throw new BffConfigError('clientAssertionKey', 'is required for private_key_jwt: a private CryptoKey or a private JWK object');
    }
    return { method, key };
  }
  if (method !== 'client_secret_post' && method !== 'client_secret_basic') {
    throw new BffConfigError('clientAuthMethod', 'must be "client_secret_post", "client_secret_basic" or "private_key_jwt"');
  }
  const secret = nonEmptyString(options.clientSecret, 'clientSecret', `the Auth0 application's Client Secret (needed for ${method})`);
  return { method, secret };
}

function readBaseURL(value: unknown): URL {
  const url = httpUrl(value, 'baseURL');
  if (url.pathname !== '/' || url.search || url.hash) {
    throw new BffConfigError('baseURL', 'must be an origin such as "https://app.example.com", without a path, query or fragment');
  }
  return url;
}

function readRoutes(routes: BffOptions['routes']): BffConfig['routes'] {
  const result: Record<string, string | undefined> = {};
  for (const [name, fallback] of Object.entries(DEFAULT_ROUTES)) {
    const value = (routes as Record<string, unknown> | undefined)?.[name];
    result[name] = value === false ? undefined : pathOption(value ?? fallback, `routes.${name}`);
  }
  for (const [name, path] of Object.entries(OPTIONAL_ROUTES)) {
    const value = (routes as Record<string, unknown> | undefined)?.[name];
    result[name] = value === undefined || value === false ? undefined : pathOption(value === true ? path : value, `routes.${name}`);
  }
  for (const name of Object.keys(routes ?? {})) {
    if (!(name in DEFAULT_ROUTES) && !(name in OPTIONAL_ROUTES)) {
      throw new BffConfigError(`routes.${name}`, `is not a route; known: ${[...Object.keys(DEFAULT_ROUTES), ...Object.keys(OPTIONAL_ROUTES)].join(', ')}`);
    }
  }
  return result as BffConfig['routes'];
}

/** Origins as browsers send them in `Origin` (scheme, host, port only when not the default). */
function readOrigins(value: unknown, baseURL: URL): string[] {
  if (value === undefined) return [baseURL.origin];
  if (!Array.isArray(value) || value.length === 0) {
    throw new BffConfigError('websocket.allowedOrigins', 'must be a non-empty array of origins such as ["https://app.example.com"]');
  }
  return value.map((origin, i) => {
    const option = `websocket.allowedOrigins[${i}]`;
    const url = httpUrl(origin, option);
    if (url.pathname !== '/' || url.search || url.hash || (typeof origin === 'string' && origin.endsWith('/'))) {
      throw new BffConfigError(option, `must be an origin such as "https://app.example.com", without a path or trailing slash (got "${String(origin)}")`);
    }
    return url.origin;
  });
}

function readScopes(scope: unknown): string[] {
  if (scope === undefined) return ['profile', 'email'];
  const list = typeof scope === 'string' ? scope.split(/\s+/).filter(Boolean) : scope;
  if (!Array.isArray(list) || list.some((x) => typeof x !== 'string' || !/^[\x21\x23-\x5B\x5D-\x7E]+$/.test(x))) {
    throw new BffConfigError('scope', 'must be a space-separated string or an array of scope names');
  }
  if (list.includes('offline_access')) {
    throw new BffConfigError('scope', 'must not contain "offline_access": the BFF uses online_access (Online Refresh Tokens), and Auth0 refuses both together');
  }
  return list;
}

function httpUrl(value: unknown, option: string): URL {
  if (typeof value !== 'string' || value.length === 0) throw new BffConfigError(option, 'must be an absolute http(s) URL');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new BffConfigError(option, `must be an absolute http(s) URL, got "${value}"`);
  }
  if (url.protocol === 'http:' && !LOOPBACK.has(url.hostname)) {
    throw new BffConfigError(option, 'must use https (plain http is accepted only for 127.0.0.1, localhost and [::1])');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new BffConfigError(option, 'must be an http(s) URL');
  if (url.username || url.password) throw new BffConfigError(option, 'must not contain credentials');
  return url;
}

function pathOption(value: unknown, option: string): string {
  if (typeof value !== 'string' || !value.startsWith('/') || value.startsWith('//') || /[\s\\?#]/.test(value)) {
    throw new BffConfigError(option, 'must be a path starting with a single "/", without query or fragment');
  }
  return value;
}

function nonEmptyString(value: unknown, option: string, what: string): string {
  if (typeof value !== 'string' || value.trim().length === 0) throw new BffConfigError(option, `must be a non-empty string: ${what}`);
  return value;
}

function positiveNumber(value: unknown, option: string, unit: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new BffConfigError(option, `must be a positive number of ${unit}`);
  return value;
}

function nonNegativeNumber(value: unknown, option: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new BffConfigError(option, 'must be a number of milliseconds, 0 or more (0: no limit)');
  return value;
}

/** Freezes the structures built here, never the app's own objects (logger, redis client, keys). */
function freezeConfig(config: BffConfig): BffConfig {
  for (const part of [config.session, config.routes, config.csrf, config.logout, config.tokens, config.clientAuth, config.websocket, config.logger, config.telemetry]) Object.freeze(part);
  for (const list of [config.websocket.allowedOrigins, config.session.secrets, config.session.encryptionKeys, config.apis, config.allowedReturnTo, config.loginParameters, config.backchannelAlgorithms]) Object.freeze(list);
  if (config.userClaims) Object.freeze(config.userClaims);
  return Object.freeze(config);
}

/**
 * The algorithms a logout token may be signed with: asymmetric ones only, checked against the issuer's published
 * keys. `none` would accept any token, and an HMAC one a token signed with the client secret.
 */
const ASYMMETRIC_ALGORITHMS = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']);

function readBackchannelAlgorithms(value: unknown): string[] {
  if (value === undefined) return ['RS256', 'RS384', 'RS512', 'PS256', 'ES256'];
  if (!Array.isArray(value) || value.length === 0 || !value.every((alg) => typeof alg === 'string' && ASYMMETRIC_ALGORITHMS.has(alg))) {
    throw new BffConfigError('backchannelAlgorithms', `must be a non-empty array of asymmetric JWS algorithms (${[...ASYMMETRIC_ALGORITHMS].join(', ')})`);
  }
  return [...value];
}
