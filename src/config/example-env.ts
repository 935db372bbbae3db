/**
 * The example's environment contract (PORT, BASE_URL, ISSUER_URL, CLIENT_ID, ...), read from a given set of
 * variables into a typed configuration, and turned into the options of `createBff`. The example (`npm start`) and
 * the doctor (`npx express-ort-bff doctor`) share it, so that the doctor checks exactly what the example would run;
 * it lives in src/ because the doctor ships in the package. Neither the library nor this module reads
 * `process.env`: the two entry points pass it in.
 *
 * Without ISSUER_URL (or AUTH0_DOMAIN) the example runs in demo mode: a local Auth0 emulator stands in for the
 * tenant, so that nothing has to be set up to try it.
 */
import { randomBytes } from 'node:crypto';
import type { LogLevel } from '../events/logger.js';
import { DPoPKeyError, readDPoPKey } from '../dpop/key.js';
import type { BffOptions } from './options.js';

/** Settings of both modes. */
interface CommonConfig {
  /** Port to listen on; 0 picks a free one. */
  readonly port: number;
  /** The public URL of the BFF (an origin). Undefined: `http://localhost:<the port listened on>`. */
  readonly baseURL: string | undefined;
  /** The API behind `/api`. Undefined: the bundled example API, started in-process. */
  readonly upstreamApiUrl: string | undefined;
  /** Undefined: sessions in memory (one process only). */
  readonly redisUrl: string | undefined;
  /** Prefix of the BFF's Redis keys. Undefined: the library's default, `bff:`. */
  readonly redisPrefix: string | undefined;
  readonly sessionSecret: string;
  readonly audience: string;
  /** The least severe level logged (LOG_LEVEL): `debug` tells what the BFF is doing. Default `info`. */
  readonly logLevel: LogLevel;
  /** OpenTelemetry: OTLP traces, Prometheus metrics; both off unless set. */
  readonly telemetry: TelemetryConfig;
  /** DPOP_PRIVATE_KEY: the private JWK that binds access tokens (DPoP). Undefined: Bearer tokens. */
  readonly dpopKey: JsonWebKey | undefined;
  /** Things worth telling the person who started the example (ignored variables, a generated secret). */
  readonly notices: readonly string[];
}

/** OpenTelemetry for the example (example/telemetry.ts starts it). */
export interface TelemetryConfig {
  /** OTEL_EXPORTER_OTLP_ENDPOINT: the collector's base URL (OTLP over HTTP); spans go to `<endpoint>/v1/traces`. */
  readonly otlpEndpoint: string | undefined;
  /** METRICS_PORT: the port of the Prometheus scrape endpoint, `/metrics`. */
  readonly metricsPort: number | undefined;
  /** OTEL_SERVICE_NAME: the `service.name` of what is recorded. */
  readonly serviceName: string;
}

/** Demo mode: the local Auth0 emulator is the identity provider. */
export interface DemoConfig extends CommonConfig {
  readonly mode: 'demo';
}

/** A real Auth0 tenant (or any issuer that speaks its protocol, such as an emulator started elsewhere). */
export interface Auth0Config extends CommonConfig {
  readonly mode: 'auth0';
  /** Normalised issuer URL, e.g. `https://TENANT.us.auth0.com/`. */
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
}

export type ExampleConfig = DemoConfig | Auth0Config;

/** Every problem found in the environment, at once, each naming its variable. */
export class ExampleConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`The example's environment is not valid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ExampleConfigError';
  }
}

export const DEFAULT_PORT = 3000;
export const DEMO_AUDIENCE = 'https://api.example.test';
const MIN_SECRET_LENGTH = 32;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Environment variables, as `process.env` holds them. */
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Reads the example's settings from `env`.
 * @throws ExampleConfigError listing every invalid or missing variable.
 *
 * @example
 * ```ts
 * const config = readConfig({ PORT: '8080' }); // demo mode on port 8080
 * ```
 */
export function readConfig(env: Env): ExampleConfig {
  const problems: string[] = [];
  const notices: string[] = [];
  const get = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value ? value : undefined;
  };

  const port = readPort(get('PORT'), problems);
  const baseURL = readBaseURL(get('BASE_URL'), problems);
  const upstreamApiUrl = readUpstreamUrl(get('UPSTREAM_API_URL'), problems);
  const redisUrl = readRedisUrl(get('REDIS_URL'), problems);
  const redisPrefix = get('REDIS_PREFIX');
  // createBff refuses it too, but under its option's name: said here under the variable's.
  if (redisPrefix !== undefined && /[{}]/.test(redisPrefix)) {
    problems.push(`REDIS_PREFIX must not contain "{" or "}": the BFF tags its keys for Redis Cluster itself (got "${redact(redisPrefix)}")`);
  }
  const issuer = readIssuer(get('ISSUER_URL'), get('AUTH0_DOMAIN'), problems);
  const logLevel = readLogLevel(get('LOG_LEVEL'), problems);
  const telemetry: TelemetryConfig = Object.freeze({
    otlpEndpoint: readOtlpEndpoint(get('OTEL_EXPORTER_OTLP_ENDPOINT'), problems),
    metricsPort: readMetricsPort(get('METRICS_PORT'), problems),
    serviceName: get('OTEL_SERVICE_NAME') ?? 'express-ort-bff-example',
  });
  const dpopKey = readDPoPPrivateKey(get('DPOP_PRIVATE_KEY'), problems);
  // Any string: Auth0 recommends a URL as an API identifier, but takes others ("my-api", "urn:orders").
  const audience = get('AUDIENCE');

  if (get('ISSUER_URL') === undefined && get('AUTH0_DOMAIN') === undefined) {
    for (const name of ['CLIENT_ID', 'CLIENT_SECRET']) {
      if (get(name) !== undefined) notices.push(`${name} is ignored in demo mode (set ISSUER_URL or AUTH0_DOMAIN to use your Auth0 tenant).`);
    }
    let sessionSecret = get('SESSION_SECRET');
    if (sessionSecret === undefined) {
      sessionSecret = randomBytes(32).toString('base64url');
      notices.push('SESSION_SECRET is not set: generated one for this run (sessions do not survive a restart).');
    } else {
      checkSecret(sessionSecret, problems);
    }
    if (problems.length > 0) throw new ExampleConfigError(problems);
    return Object.freeze({
      mode: 'demo' as const,
      port, baseURL, upstreamApiUrl, redisUrl, redisPrefix, sessionSecret, logLevel, telemetry, dpopKey,
      audience: audience ?? DEMO_AUDIENCE,
      notices: Object.freeze(notices),
    });
  }

  // Named after the variable the user set.
  const tenant = get('ISSUER_URL') !== undefined ? 'ISSUER_URL' : 'AUTH0_DOMAIN';
  const clientId = get('CLIENT_ID');
  if (clientId === undefined) problems.push(`CLIENT_ID is required with ${tenant}: the Client ID of your Auth0 Regular Web Application`);
  const clientSecret = get('CLIENT_SECRET');
  if (clientSecret === undefined) problems.push(`CLIENT_SECRET is required with ${tenant}: the Client Secret of your Auth0 Regular Web Application`);
  if (audience === undefined) problems.push(`AUDIENCE is required with ${tenant}: the identifier of your Auth0 API (with "Allow Online Access" on)`);
  const sessionSecret = get('SESSION_SECRET');
  if (sessionSecret === undefined) {
    problems.push(`SESSION_SECRET is required with ${tenant}: a random string of ${MIN_SECRET_LENGTH}+ characters, the same on every instance (e.g. \`openssl rand -base64 32\`)`);
  } else {
    checkSecret(sessionSecret, problems);
  }
  if (problems.length > 0) throw new ExampleConfigError(problems);
  return Object.freeze({
    mode: 'auth0' as const,
    issuer: issuer as string,
    clientId: clientId as string,
    clientSecret: clientSecret as string,
    audience: audience as string,
    port, baseURL, upstreamApiUrl, redisUrl, redisPrefix, logLevel, telemetry, dpopKey,
    sessionSecret: sessionSecret as string,
    notices: Object.freeze(notices),
  });
}

/** How the example's BFF reaches its identity provider: the tenant of an Auth0Config, or the demo's emulator. */
export interface IdpSettings {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly clientAuthMethod: ClientAuthMethod;
}

type ClientAuthMethod = NonNullable<BffOptions['clientAuthMethod']>;

/** The BFF's public URL: BASE_URL, else `http://localhost:<port>`. */
export function baseUrlOf(config: ExampleConfig, port: number = config.port): string {
  return config.baseURL ?? `http://localhost:${port}`;
}

/**
 * The `createBff` options that follow from the environment; the example adds what it starts itself (the API
 * behind `/api`, the Redis client, its logger).
 */
export function exampleBffOptions(config: ExampleConfig, idp: IdpSettings, baseURL: string): BffOptions {
  return {
    issuer: idp.issuer,
    clientId: idp.clientId,
    clientSecret: idp.clientSecret,
    clientAuthMethod: idp.clientAuthMethod,
    audience: config.audience,
    baseURL,
    session: { secrets: [config.sessionSecret] },
    ...(config.redisPrefix === undefined ? {} : { redisPrefix: config.redisPrefix }),
    logLevel: config.logLevel,
    ...(config.dpopKey === undefined ? {} : { dpop: { key: config.dpopKey } }),
  };
}

/**
 * How the BFF authenticates to the token endpoint: client_secret_post when the issuer supports it (Auth0's default
 * for Regular Web Applications, and the assumption when the metadata could not be read), else client_secret_basic
 * (OpenID Connect Discovery's default when the list is absent).
 */
export function chooseClientAuthMethod(metadata: Record<string, unknown> | undefined): ClientAuthMethod {
  if (metadata === undefined) return 'client_secret_post';
  const supported = metadata.token_endpoint_auth_methods_supported;
  if (Array.isArray(supported) && supported.includes('client_secret_post')) return 'client_secret_post';
  return 'client_secret_basic';
}

function readPort(value: string | undefined, problems: string[]): number {
  if (value === undefined) return DEFAULT_PORT;
  const port = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(port >= 0 && port <= 65535)) {
    problems.push(`PORT must be a port number between 0 and 65535 (got "${value}")`);
    return DEFAULT_PORT;
  }
  return port;
}

const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

function readLogLevel(value: string | undefined, problems: string[]): LogLevel {
  if (value === undefined) return 'info';
  const level = value.toLowerCase() as LogLevel;
  if (LOG_LEVELS.includes(level)) return level;
  problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got "${value}")`);
  return 'info';
}

function readMetricsPort(value: string | undefined, problems: string[]): number | undefined {
  if (value === undefined) return undefined;
  const port = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (port >= 1 && port <= 65535) return port;
  problems.push(`METRICS_PORT must be a port number between 1 and 65535 (got "${value}")`);
  return undefined;
}

/** Plain http is fine here, unlike for the issuer: a collector (often a sidecar) receives no token or secret. */
function readOtlpEndpoint(value: string | undefined, problems: string[]): string | undefined {
  if (value === undefined) return undefined;
  if (!URL.canParse(value) || !['http:', 'https:'].includes(new URL(value).protocol)) {
    problems.push(`OTEL_EXPORTER_OTLP_ENDPOINT must be the collector's http(s) URL, such as "http://127.0.0.1:4318" (got "${redact(value)}")`);
    return undefined;
  }
  return value;
}

function readBaseURL(value: string | undefined, problems: string[]): string | undefined {
  const url = readHttpUrl(value, 'BASE_URL', problems);
  if (url === undefined) return undefined;
  const parsed = new URL(url);
  if (parsed.pathname !== '/' || parsed.search || parsed.hash) {
    problems.push(`BASE_URL must be an origin such as "https://app.example.com", without a path (got "${redact(value!)}")`);
    return undefined;
  }
  return parsed.origin;
}

function readIssuer(issuerUrl: string | undefined, domain: string | undefined, problems: string[]): string | undefined {
  if (issuerUrl !== undefined && domain !== undefined) {
    problems.push('ISSUER_URL and AUTH0_DOMAIN are both set: give one of them');
    return undefined;
  }
  if (domain !== undefined) {
    if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(domain) || !URL.canParse(`https://${domain}/`)) {
      problems.push(`AUTH0_DOMAIN must be a host name such as "TENANT.us.auth0.com", without a scheme or path (got "${redact(domain)}")`);
      return undefined;
    }
    return `https://${domain}/`;
  }
  const url = readHttpUrl(issuerUrl, 'ISSUER_URL', problems);
  if (url === undefined) return undefined;
  const parsed = new URL(url);
  if (parsed.search || parsed.hash || parsed.pathname.includes('/.well-known/')) {
    problems.push(`ISSUER_URL must be the issuer itself, such as "https://TENANT.us.auth0.com/", without a query, fragment or /.well-known/ path (got "${redact(issuerUrl!)}")`);
    return undefined;
  }
  // Auth0's issuer ends with a slash ("https://TENANT.us.auth0.com/"), and tokens carry it exactly so.
  return url.endsWith('/') ? url : `${url}/`;
}

/**
 * An absolute http(s) URL without credentials; plain http only on loopback, where no one can listen in. Credentials
 * are looked for first, so that no other message is about a URL that holds them; no message quotes them.
 */
function readHttpUrl(value: string | undefined, name: string, problems: string[]): string | undefined {
  if (value === undefined) return undefined;
  if (!URL.canParse(value)) {
    problems.push(`${name} must be an absolute URL such as "https://example.com" (got "${redact(value)}")`);
    return undefined;
  }
  const url = new URL(value);
  if (url.username || url.password) {
    problems.push(`${name} must not contain credentials (got "${redact(value)}")`);
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    problems.push(`${name} must be an http(s) URL (got "${redact(value)}")`);
    return undefined;
  }
  if (url.protocol === 'http:' && !LOOPBACK.has(url.hostname)) {
    problems.push(`${name} must use https: plain http is accepted only for 127.0.0.1, localhost and [::1] (got "${redact(value)}")`);
    return undefined;
  }
  return url.href;
}

/** The example API's base URL: the browser's query is what it gets, so it has none of its own. */
function readUpstreamUrl(value: string | undefined, problems: string[]): string | undefined {
  const url = readHttpUrl(value, 'UPSTREAM_API_URL', problems);
  if (url === undefined) return undefined;
  const parsed = new URL(url);
  if (parsed.search || parsed.hash) {
    problems.push(`UPSTREAM_API_URL must not have a query or fragment (the browser's query is what the API gets) (got "${redact(value!)}")`);
    return undefined;
  }
  return url;
}

function readRedisUrl(value: string | undefined, problems: string[]): string | undefined {
  if (value === undefined) return undefined;
  if (!URL.canParse(value) || !['redis:', 'rediss:'].includes(new URL(value).protocol)) {
    problems.push(`REDIS_URL must be a redis:// or rediss:// URL such as "redis://127.0.0.1:6379" (got "${redact(value)}")`);
    return undefined;
  }
  return value;
}

/** A private JWK as JSON. The value is a secret: no message quotes it. */
function readDPoPPrivateKey(value: string | undefined, problems: string[]): JsonWebKey | undefined {
  if (value === undefined) return undefined;
  let jwk: unknown;
  try {
    jwk = JSON.parse(value);
  } catch {
    problems.push('DPOP_PRIVATE_KEY must be a private JWK as JSON, e.g. {"kty":"EC","crv":"P-256","x":"...","y":"...","d":"..."} (it is not valid JSON)');
    return undefined;
  }
  try {
    readDPoPKey(jwk);
  } catch (error) {
    if (!(error instanceof DPoPKeyError)) throw error;
    problems.push(`DPOP_PRIVATE_KEY ${error.message}`);
    return undefined;
  }
  return jwk as JsonWebKey;
}

function checkSecret(secret: string, problems: string[]): void {
  // The library signs the session cookie with it: a short secret could be guessed offline.
  if (secret.length < MIN_SECRET_LENGTH) {
    problems.push(`SESSION_SECRET must be at least ${MIN_SECRET_LENGTH} characters long (it has ${secret.length})`);
  }
}

/**
 * A URL as a message may quote it: a URL may carry a user name and password (`scheme://user:pass@host`), which are
 * never printed. Everything up to the last `@` goes, not just to the first: a password may hold an `@` or a `/`
 * (unencoded, the URL does not even parse), and no part of it may show.
 */
function redact(value: string): string {
  return value.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)?[^]*@/, '$1***@');
}
