import { createPrivateKey } from 'node:crypto';
import { BffConfigError } from '../errors.js';
import type { Log } from '../events/logger.js';
import type { TelemetryOptions } from '../telemetry/providers.js';
import { readLogger, readTelemetry } from './observability.js';
import type { BffOptions, RedisClient, TokenPolicy } from './options.js';
import { readDPoPOption, type DPoPConfig } from '../dpop/options.js';
import { shownMember } from '../dpop/key.js';
import { parseEncryptionKeys } from '../session/encryption.js';
import { csrfMode } from '../http/csrf.js';

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
    /** GET, HEAD and OPTIONS pass without the anti-forgery header (`csrf: 'unsafe-methods'`). */
    readonly safeMethodsWithoutCsrf: boolean;
    readonly connections: number;
  }>;
  readonly websocket: { readonly allowedOrigins: readonly string[]; readonly pingIntervalMs: number; readonly pingUpstream: boolean };
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
/** Node's longest timer: a longer delay fires at once (with a TimeoutOverflowWarning), so it is refused. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** What each option object may hold: a misspelt key (`api`, `idleTimeoutSeconds`) is refused, not ignored. */
const KNOWN_KEYS = {
  options: ['issuer', 'domain', 'clientId', 'clientSecret', 'clientAuthMethod', 'clientAssertionKey', 'audience', 'baseURL', 'scope', 'routes', 'redis', 'redisPrefix', 'redisCommandTimeout', 'session', 'apis', 'websocket', 'csrf', 'allowedReturnTo', 'userClaims', 'logout', 'tokens', 'dpop', 'loginParameters', 'backchannelAlgorithms', 'logger', 'logLevel', 'telemetry', 'clock', 'fetch'],
  session: ['secrets', 'cookieName', 'cookie', 'idleTimeout', 'absoluteTimeout', 'external', 'encryptionKeys'],
  'session.cookie': ['sameSite', 'secure', 'domain'],
  api: ['mount', 'upstream', 'audience', 'scope', 'token', 'timeout', 'bodyTimeout', 'eventStreamTimeout', 'websocket', 'csrf', 'connections'],
  websocket: ['allowedOrigins', 'pingInterval', 'pingUpstream'],
  csrf: ['header', 'value'],
  logout: ['idpLogout', 'returnTo', 'idTokenHint'],
  tokens: ['refreshMargin', 'clockSkew', 'exchangeDeadline', 'attemptTimeout'],
  dpop: ['key', 'previousKeys'],
  telemetry: ['tracerProvider', 'meterProvider'],
} as const;
/** Parameters the login sets itself: passed on from the browser, they would be overwritten, or worse. */
const PROTOCOL_PARAMETERS = new Set(['client_id', 'redirect_uri', 'response_type', 'response_mode', 'scope', 'state', 'nonce', 'code_challenge', 'code_challenge_method', 'request', 'request_uri']);
const TOKEN_POLICIES: readonly TokenPolicy[] = ['user', 'user-or-none', 'client', 'user-or-client', 'none'];
const USES_USER_TOKEN = new Set<TokenPolicy>(['user', 'user-or-none', 'user-or-client']);

/** Reads every option once, applies the defaults, and throws a `BffConfigError` naming the first bad one. */
export function validateOptions(options: BffOptions): BffConfig {
  if (options === null || typeof options !== 'object') throw new BffConfigError('options', 'must be an object');
  onlyKnownKeys(options, KNOWN_KEYS.options, '');

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
  // The BFF puts a session's id in braces, a Redis Cluster hash tag, so that a session's keys share one slot and its
  // scripts can touch them together. A brace before it takes the tag's place: every key in one slot (`{bff}:`), or
  // a session's keys in different slots (`bff{`), which a cluster refuses (CROSSSLOT) and a single Redis does not.
  if (/[{}]/.test(redisPrefix)) throw new BffConfigError('redisPrefix', 'must not contain "{" or "}": the BFF tags its keys for Redis Cluster itself');

  const s = objectOption(options.session, 'session', KNOWN_KEYS.session) ?? {};
  const cookie = objectOption(s.cookie, 'session.cookie', KNOWN_KEYS['session.cookie']) ?? {};
  const external = booleanOption(s.external, 'session.external', false);
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
  const sameSite = cookie.sameSite ?? 'lax';
  if (sameSite !== 'lax' && sameSite !== 'strict') {
    throw new BffConfigError('session.cookie.sameSite', 'must be "lax" or "strict" (the login redirect from Auth0 needs a cookie that is not "none"-only)');
  }
  const cookieSecure = booleanOption(cookie.secure, 'session.cookie.secure', secure);
  if (cookieName.startsWith('__Host-') && (!cookieSecure || cookie.domain !== undefined)) {
    // The default name on https is __Host-: then the domain is what the user set, and what to change is said.
    if (s.cookieName === undefined && cookieSecure) {
      throw new BffConfigError('session.cookie.domain', 'needs a session.cookieName without the __Host- prefix of the default name on https (for example "__Secure-bff"): a browser refuses a __Host- cookie with a domain');
    }
    throw new BffConfigError('session.cookieName', 'starts with __Host-, which needs a Secure cookie (an https baseURL) and no cookie domain');
  }
  const domain = readCookieDomain(cookie.domain, baseURL);
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
  const apis = (options.apis ?? []).map((given, i) => {
    const api = objectOption(given, `apis[${i}]`, KNOWN_KEYS.api) ?? ({} as Partial<typeof given>);
    const mount = pathOption(api.mount, `apis[${i}].mount`);
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
    const csrf = csrfMode(api.csrf, `apis[${i}].csrf`);
    const connections = api.connections ?? 128;
    if (!Number.isInteger(connections) || connections < 1 || connections > 65_535) {
      throw new BffConfigError(`apis[${i}].connections`, 'must be a whole number from 1 to 65535');
    }
    return Object.freeze({
      mount: mount.replace(/\/+$/, ''),
      upstream: upstreamUrl(api.upstream, `apis[${i}].upstream`),
      audience: audienceForApis(i, api.audience, token),
      scope: api.scope === undefined ? undefined : nonEmptyString(api.scope, `apis[${i}].scope`, 'a space-separated scope list'),
      timeoutMs,
      // Before bodyTimeout existed, `timeout` bounded the gaps between body chunks too: never cut sooner than that.
      bodyTimeoutMs: Math.ceil(nonNegativeNumber(api.bodyTimeout ?? Math.min(MAX_TIMER_MS, Math.max(300_000, timeoutMs)), `apis[${i}].bodyTimeout`)),
      eventStreamTimeoutMs: Math.ceil(nonNegativeNumber(api.eventStreamTimeout ?? 0, `apis[${i}].eventStreamTimeout`)),
      websocket: api.websocket ?? token === 'user',
      token,
      safeMethodsWithoutCsrf: csrf === 'unsafe-methods',
      connections,
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
  // The proxy answers its mounts before the routes are looked at: a route under a mount would never be reached.
  for (const [i, api] of apis.entries()) {
    for (const [name, path] of Object.entries(routes)) {
      if (path === undefined || (path !== api.mount && !path.startsWith(`${api.mount}/`))) continue;
      throw new BffConfigError(`apis[${i}].mount`, `"${api.mount}" would take over the ${name} route ${path}: mount the API elsewhere, or move the route (routes.${name})`);
    }
  }

  const csrf = objectOption(options.csrf, 'csrf', KNOWN_KEYS.csrf) ?? {};
  const csrfHeader = csrf.header ?? 'X-CSRF';
  if (typeof csrfHeader !== 'string' || !/^[A-Za-z0-9-]+$/.test(csrfHeader)) throw new BffConfigError('csrf.header', 'must be a header name such as "X-CSRF"');
  const csrfValue = nonEmptyString(csrf.value ?? '1', 'csrf.value', 'the value the SPA sends, e.g. "1"');

  if (options.websocket !== undefined && (options.websocket === null || typeof options.websocket !== 'object')) {
    throw new BffConfigError('websocket', 'must be an object such as { allowedOrigins: ["https://app.example.com"] }');
  }
  onlyKnownKeys(options.websocket, KNOWN_KEYS.websocket, 'websocket');
  const allowedOrigins = readOrigins(options.websocket?.allowedOrigins, baseURL);
  const pingIntervalMs = nonNegativeNumber(options.websocket?.pingInterval ?? 30_000, 'websocket.pingInterval', 'never');
  // Shorter than a round trip, every quiet browser would be taken for gone (and each tunnel would run a busy timer).
  if (pingIntervalMs > 0 && pingIntervalMs < 100) throw new BffConfigError('websocket.pingInterval', 'must be 0 (never) or at least 100 milliseconds');
  const pingUpstream = options.websocket?.pingUpstream ?? true;
  if (typeof pingUpstream !== 'boolean') throw new BffConfigError('websocket.pingUpstream', 'must be true or false');

  if (options.allowedReturnTo !== undefined && !Array.isArray(options.allowedReturnTo)) {
    throw new BffConfigError('allowedReturnTo', 'must be an array of path prefixes, e.g. ["/app"]');
  }
  const allowedReturnTo = (options.allowedReturnTo ?? ['/']).map((p, i) => pathOption(p, `allowedReturnTo[${i}]`));
  if (options.userClaims !== undefined && (!Array.isArray(options.userClaims) || options.userClaims.some((c) => typeof c !== 'string'))) {
    throw new BffConfigError('userClaims', 'must be an array of claim names, e.g. ["name", "email"]');
  }
  const logout = objectOption(options.logout, 'logout', KNOWN_KEYS.logout) ?? {};
  const logoutReturnTo = pathOption(logout.returnTo ?? '/', 'logout.returnTo');

  const tokens = objectOption(options.tokens, 'tokens', KNOWN_KEYS.tokens) ?? {};
  const refreshMargin = readRefreshMargin(tokens.refreshMargin);
  const clockSkew = tokens.clockSkew ?? 1;
  if (typeof clockSkew !== 'number' || !Number.isFinite(clockSkew) || clockSkew < 0) {
    throw new BffConfigError('tokens.clockSkew', 'must be a number of seconds, 0 or more (how far an API\'s clock may run ahead of the BFF\'s)');
  }
  const exchangeDeadlineMs = Math.ceil(positiveNumber(tokens.exchangeDeadline ?? 5_000, 'tokens.exchangeDeadline', 'milliseconds'));
  const attemptTimeoutMs = Math.ceil(positiveNumber(tokens.attemptTimeout ?? 2_500, 'tokens.attemptTimeout', 'milliseconds'));

  const userScopes = readScopes(options.scope);
  const scope = ['openid', 'online_access', ...userScopes.filter((x) => x !== 'openid' && x !== 'online_access')].join(' ');

  const logger = readLogger(options.logger, options.logLevel);
  if (options.telemetry !== null && typeof options.telemetry === 'object') onlyKnownKeys(options.telemetry, KNOWN_KEYS.telemetry, 'telemetry');
  const telemetry = readTelemetry(options.telemetry);
  if (options.dpop !== null && typeof options.dpop === 'object' && !Array.isArray(options.dpop)) onlyKnownKeys(options.dpop, KNOWN_KEYS.dpop, 'dpop');
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
      domain,
      idleTimeoutMs: idleTimeout * 1000,
      absoluteTimeoutMs: absoluteTimeout * 1000,
      external,
      encryptionKeys: parseEncryptionKeys(s.encryptionKeys, 'session.encryptionKeys'),
    },
    apis,
    csrf: { header: csrfHeader.toLowerCase(), value: csrfValue },
    websocket: { allowedOrigins, pingIntervalMs, pingUpstream },
    allowedReturnTo,
    userClaims: options.userClaims === undefined ? undefined : [...options.userClaims],
    logout: {
      idpLogout: booleanOption(logout.idpLogout, 'logout.idpLogout', true),
      returnTo: logoutReturnTo,
      idTokenHint: booleanOption(logout.idTokenHint, 'logout.idTokenHint', false),
    },
    tokens: { refreshMargin, clockSkewMs: Math.round(clockSkew * 1000), exchangeDeadlineMs, attemptTimeoutMs },
    dpop: readDPoPOption(options.dpop),
    loginParameters: readLoginParameters(options.loginParameters),
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
    const url = /^[A-Za-z0-9.-]+(:\d+)?$/.test(domain) ? parsedUrl(`https://${domain}/`) : undefined;
    if (url === undefined) throw new BffConfigError('domain', 'must be a host name such as "TENANT.us.auth0.com", without a scheme or path');
    return url;
  }
  if (options.issuer === undefined) throw new BffConfigError('issuer', 'is required: the Auth0 issuer URL, e.g. "https://TENANT.us.auth0.com/" (or give domain)');
  const url = httpUrl(options.issuer, 'issuer');
  if (url.search || url.hash) throw new BffConfigError('issuer', 'must not have a query or fragment: the issuer is a URL such as "https://TENANT.us.auth0.com/"');
  return url;
}

function readClientAuth(options: BffOptions): BffConfig['clientAuth'] {
  const method = options.clientAuthMethod ?? (options.clientAssertionKey !== undefined ? 'private_key_jwt' : 'client_secret_post');
  if (method === 'private_key_jwt') {
    const key = options.clientAssertionKey;
    if (key === undefined || key === null || typeof key !== 'object') {
      throw new BffConfigError('clientAssertionKey', 'is required for private_key_jwt: a private CryptoKey or a private JWK object');
    }
    checkAssertionKey(key);
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
  const url = parsedUrl(value);
  if (url === undefined) throw new BffConfigError(option, `must be an absolute http(s) URL, got "${value}"`);
  if (url.protocol === 'http:' && !LOOPBACK.has(url.hostname)) {
    throw new BffConfigError(option, 'must use https (plain http is accepted only for 127.0.0.1, localhost and [::1])');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new BffConfigError(option, 'must be an http(s) URL');
  if (url.username || url.password) throw new BffConfigError(option, 'must not contain credentials');
  return url;
}

function parsedUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

/** An API's base URL: the request's path and query are added to it, so it has none of its own query. */
function upstreamUrl(value: unknown, option: string): URL {
  const url = httpUrl(value, option);
  if (url.search || url.hash) {
    throw new BffConfigError(option, 'must not have a query or fragment (the browser\'s query is what the API gets); put fixed parameters in the API\'s path or headers');
  }
  return url;
}

/**
 * The cookie's Domain: a host name that is baseURL's or a parent of it. Browsers drop a cookie set for another
 * domain, and the serializer throws on one that is not a host name: both would only show at the first login.
 */
function readCookieDomain(value: unknown, baseURL: URL): string | undefined {
  if (value === undefined) return undefined;
  const option = 'session.cookie.domain';
  const host = typeof value === 'string' ? value.replace(/^\./, '').toLowerCase() : '';
  if (!/^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(host)) {
    throw new BffConfigError(option, 'must be a host name such as "example.com", without a scheme, port or path');
  }
  const own = baseURL.hostname.toLowerCase();
  if (own !== host && !own.endsWith(`.${host}`)) {
    throw new BffConfigError(option, `must be baseURL's host (${own}) or a domain it is under: browsers drop a cookie set for another domain`);
  }
  return value as string;
}

/** An option object: undefined, or a plain object holding only the keys it knows. */
function objectOption<T>(value: T | undefined, option: string, known: readonly string[]): Partial<T> | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new BffConfigError(option, 'must be an object');
  onlyKnownKeys(value, known, option);
  return value;
}

function onlyKnownKeys(value: object | undefined, known: readonly string[], option: string): void {
  if (value === undefined) return;
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new BffConfigError(option === '' ? key : `${option}.${key}`, `is not an option${option === '' ? '' : ` of ${option}`}; known: ${known.join(', ')}`);
    }
  }
}

/** true or false: a string such as "false" (read from an environment variable) is refused, not taken as true. */
function booleanOption(value: unknown, option: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new BffConfigError(option, `must be true or false (got ${JSON.stringify(value)})`);
  return value;
}

const defaultRefreshMargin = (lifetime: number): number => Math.min(60, lifetime * 0.1);

/**
 * The app's refresh margin, tried at startup on a few token lifetimes: one that returns nothing (a forgotten
 * `return`), NaN or a negative number would leave no margin at all, and no clock-skew allowance either, so it is
 * refused. Should it still misbehave for another lifetime later, that token gets the default margin.
 */
function readRefreshMargin(value: unknown): (lifetimeSeconds: number) => number {
  const option = 'tokens.refreshMargin';
  if (value === undefined) return defaultRefreshMargin;
  if (typeof value !== 'function') throw new BffConfigError(option, 'must be a function (lifetimeSeconds) => seconds');
  const margin = value as (lifetimeSeconds: number) => unknown;
  const usable = (seconds: unknown): seconds is number => typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0;
  for (const lifetime of [10, 60, 300, 3_600, 86_400]) {
    let seconds: unknown;
    try {
      seconds = margin(lifetime);
    } catch (error) {
      throw new BffConfigError(option, `threw for a token lifetime of ${lifetime} seconds: ${(error as Error)?.message ?? String(error)}`);
    }
    if (!usable(seconds)) {
      throw new BffConfigError(option, `must return a number of seconds, 0 or more; for a token lifetime of ${lifetime} seconds it returned ${String(seconds)}`);
    }
  }
  return (lifetime) => {
    try {
      const seconds = margin(lifetime);
      if (usable(seconds)) return seconds;
    } catch {
      // Falls back below.
    }
    return defaultRefreshMargin(lifetime);
  };
}

/** Which query parameters of /auth/login go on to Auth0: names, and none that the login sets itself. */
function readLoginParameters(value: unknown): string[] {
  if (value === undefined) return ['prompt', 'screen_hint', 'organization', 'login_hint'];
  const option = 'loginParameters';
  if (!Array.isArray(value) || value.some((name) => typeof name !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(name))) {
    throw new BffConfigError(option, 'must be an array of parameter names, e.g. ["prompt", "screen_hint"]');
  }
  const reserved = value.find((name: string) => PROTOCOL_PARAMETERS.has(name));
  if (reserved !== undefined) throw new BffConfigError(option, `must not contain "${reserved}": the login sets it itself`);
  return [...value];
}

/**
 * A private_key_jwt key that can sign: a private JWK (its `alg`, RS256 when it has none, fitting its key type) or a
 * private CryptoKey that may sign. Anything else would fail at the first request to Auth0, where it reads as
 * Auth0 being unreachable.
 */
function checkAssertionKey(key: object): void {
  const option = 'clientAssertionKey';
  if (typeof CryptoKey !== 'undefined' && key instanceof CryptoKey) {
    if (key.type !== 'private' || !key.usages.includes('sign')) throw new BffConfigError(option, 'must be a private CryptoKey that may sign (usages ["sign"])');
    return;
  }
  const jwk = key as { kty?: unknown; alg?: unknown; crv?: unknown };
  try {
    createPrivateKey({ key: key as import('node:crypto').JsonWebKey, format: 'jwk' });
  } catch {
    throw new BffConfigError(option, 'must be a private JWK (with its private member "d") or a private CryptoKey');
  }
  const alg = jwk.alg ?? (jwk.kty === 'RSA' ? 'RS256' : undefined);
  const fits = ASSERTION_ALGORITHMS[`${String(jwk.kty)} ${String(jwk.crv ?? '')}`.trim()];
  if (fits === undefined) throw new BffConfigError(option, 'must be an RSA, EC (P-256, P-384, P-521) or Ed25519 key');
  if (alg === undefined) throw new BffConfigError(option, `needs "alg" (${fits.join(' or ')}) for its key type`);
  if (typeof alg !== 'string' || !fits.includes(alg)) throw new BffConfigError(option, `has "alg": ${shownMember(alg)}, which its key type does not sign with; use ${fits.join(' or ')}`);
}

/** The JWS algorithms a client assertion key of each type (and curve) signs with. */
const ASSERTION_ALGORITHMS: Record<string, readonly string[] | undefined> = {
  RSA: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'],
  'EC P-256': ['ES256'],
  'EC P-384': ['ES384'],
  'EC P-521': ['ES512'],
  'OKP Ed25519': ['EdDSA', 'Ed25519'],
};

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

function positiveNumber(value: unknown, option: string, unit: 'seconds' | 'milliseconds'): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new BffConfigError(option, `must be a positive number of ${unit}`);
  if (unit === 'milliseconds' && value > MAX_TIMER_MS) throw new BffConfigError(option, `must be at most ${MAX_TIMER_MS} milliseconds (about 24.8 days), Node's longest timer`);
  return value;
}

function nonNegativeNumber(value: unknown, option: string, zero: 'no limit' | 'never' = 'no limit'): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new BffConfigError(option, `must be a number of milliseconds, 0 or more (0: ${zero})`);
  if (value > MAX_TIMER_MS) throw new BffConfigError(option, `must be at most ${MAX_TIMER_MS} milliseconds (about 24.8 days), Node's longest timer; 0 means ${zero}`);
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
