/**
 * Options of the local Auth0 emulator: the public types, and their validation into one frozen, normalised
 * object that no other module of the emulator has to re-check.
 */

/** What ended an Auth0 session, as Auth0 names it for OIDC Back-Channel Logout Initiators. */
export type BackchannelLogoutInitiator =
  | 'rp-logout'
  | 'idp-logout'
  | 'password-changed'
  | 'session-expired'
  | 'session-revoked'
  | 'account-deleted'
  | 'email-identifier-changed';

export const BACKCHANNEL_LOGOUT_INITIATORS: readonly BackchannelLogoutInitiator[] = [
  'rp-logout',
  'idp-logout',
  'password-changed',
  'session-expired',
  'session-revoked',
  'account-deleted',
  'email-identifier-changed',
];

/** The grants an application may use at the token endpoint (Auth0 "Grant Types"). */
export type LocalAuth0GrantType = 'authorization_code' | 'refresh_token' | 'client_credentials';
const GRANT_TYPES: readonly LocalAuth0GrantType[] = ['authorization_code', 'refresh_token', 'client_credentials'];

/** An application registered in the emulated tenant (Auth0 "Application"). */
export interface LocalAuth0Client {
  /** The application's Client ID. */
  clientId: string;
  /** Shown by the Management API. Default: the client id. */
  name?: string;
  /** Makes the client confidential; `client_secret_basic` and `client_secret_post` are both accepted, like Auth0. */
  clientSecret?: string;
  /** Auth0 "Allowed Callback URLs": where `/authorize` may send the browser back with a code. */
  redirectUris: string[];
  /** Auth0 "Allowed Logout URLs". */
  postLogoutRedirectUris?: string[];
  /** Auth0 "Back-Channel Logout URI". Unlike Auth0, plain http and loopback addresses are allowed. */
  backchannelLogoutUri?: string;
  /**
   * Auth0 "Back-Channel Logout Initiators": `'all'` (default), or the session ends that send a logout token
   * (`rp-logout` and `idp-logout` always do, as on Auth0).
   */
  backchannelLogoutInitiators?: 'all' | BackchannelLogoutInitiator[];
  /**
   * Auth0 "Grant Types". Default `authorization_code` and `refresh_token`, and `client_credentials` for an
   * application with `clientGrants`. Without `refresh_token` no refresh token is issued and a refresh is refused
   * with `unauthorized_client`, as on Auth0; without `client_credentials`, a client-credentials grant is refused
   * with `unauthorized_client` too.
   */
  grantTypes?: LocalAuth0GrantType[];
  /** Defaults to `client_secret_basic` with a secret, `none` without one. */
  tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';
  /** Public keys of the client, for `private_key_jwt`. */
  jwks?: {
    /** Public JWKs, each with its `kid`. */
    keys: object[];
  };
  /** Rotation of classic (offline_access) refresh tokens. Online Refresh Tokens never rotate. Default false. */
  refreshTokenRotation?: boolean;
  /**
   * Auth0's refresh token policies (Multi-Resource Refresh Token): the other APIs an exchange may ask a token for
   * with `audience`. An exchange for an API not listed is answered as Auth0 answers it: without an error, with a
   * token for the login's audience. (Auth0's policies also list scopes; the emulator checks only the audience.)
   * Default: every API that allows online access.
   */
  refreshTokenPolicies?: Array<{
    /** An API the application may get tokens for with a refresh token. */
    audience: string;
  }>;
  /**
   * Auth0 client grants: the APIs this application may get its own tokens for with the client-credentials grant,
   * and the permissions it may have there (Dashboard: the API's Machine to Machine Applications tab). Default none:
   * like Auth0, a confidential application has the grant type but is authorised for no API.
   */
  clientGrants?: LocalAuth0ClientGrant[];
}

/** One API an application is authorised for with client credentials. */
export interface LocalAuth0ClientGrant {
  /** The API's identifier; it must be one of `apis`. */
  audience: string;
  /** The permissions granted, a subset of the API's `scopes`. Default none. */
  scopes?: string[];
}

/** A database-connection user. Any further property becomes a claim of the ID token and `/userinfo`. */
export interface LocalAuth0User {
  /** The user's id. Default `auth0|<username>`. */
  sub?: string;
  /** What the login form asks for. */
  username: string;
  /** What the login form checks. */
  password: string;
  /** The `email` claim. */
  email?: string;
  /** The `name` claim. */
  name?: string;
  [claim: string]: unknown;
}

/** An API (Auth0 "resource server"), identified by its `audience`. */
export interface LocalAuth0Api {
  /** The API identifier. Must be an absolute URI (`https://api.example.com`, `urn:my-api`). */
  audience: string;
  /** Shown by the Management API. Default: the audience. */
  name?: string;
  /** Auth0 "Allow Online Access" (ORTs). Default true. */
  allowOnlineAccess?: boolean;
  /**
   * Auth0 `allow_online_access_with_ephemeral_sessions`. Default false. With it, as on Auth0, an ORT is issued
   * but refused with `invalid_grant` at its first exchange.
   */
  allowOnlineAccessWithEphemeralSessions?: boolean;
  /** Auth0 "Allow Offline Access" (classic refresh tokens). Default true. */
  allowOfflineAccess?: boolean;
  /** Permissions (scopes) of the API besides the OpenID ones, e.g. `read:messages`. Default none. */
  scopes?: string[];
}

/** Options of {@link startLocalAuth0}. */
export interface LocalAuth0Options {
  /** 0 or undefined: a random free port. */
  port?: number;
  /** Default `127.0.0.1`. */
  host?: string;
  /** Default `http://127.0.0.1:<port>/` (with the trailing slash, like Auth0's `https://TENANT/`). Its path must be `/`. */
  issuerUrl?: string;
  /** The applications of the tenant: at least one. */
  clients: LocalAuth0Client[];
  /** The users who can log in (a database connection). */
  users: LocalAuth0User[];
  /** Known audiences. An `/authorize` request for any other audience fails like Auth0 ("Service not found"). */
  apis?: LocalAuth0Api[];
  /** Access token lifetime, seconds. Default 60. */
  accessTokenTtl?: number;
  /** ID token lifetime, seconds. Default 3600. */
  idTokenTtl?: number;
  /** Auth0 session idle lifetime, seconds. Default 3 days. */
  idleTimeout?: number;
  /** Auth0 session absolute lifetime, seconds. Default 7 days. */
  absoluteTimeout?: number;
  /** Epoch milliseconds for the session idle/absolute checks (default `Date.now`): tests move it forward. */
  clock?: () => number;
  /** Where unexpected server errors and failed back-channel deliveries are reported. Default: silent. */
  logger?: {
    /** Receives one line per problem. */
    warn(msg: string): void;
  };
  /**
   * A bearer token the Management API endpoints accept, with the scopes `read:clients` and
   * `read:resource_servers`. Default: none; `admin.issueManagementToken()` issues tokens at any time.
   */
  managementApiToken?: string;
  /**
   * DPoP (RFC 9449) at the token endpoint. A token request with a proof always gets an access token bound to its
   * key (`token_type` DPoP, `cnf.jkt`), as an Auth0 API with DPoP allowed does. With `requireNonce` (default
   * false), as Auth0 may, a proof without the current server nonce is refused with `use_dpop_nonce` and a
   * `DPoP-Nonce` header.
   */
  dpop?: {
    /** Refuse a proof without the current server nonce, as Auth0 may. Default false. */
    requireNonce?: boolean;
  };
}

/** The validated options, with every default applied. */
export interface ResolvedOptions {
  readonly port: number;
  readonly host: string;
  readonly issuerUrl: string | undefined;
  readonly clients: ReadonlyMap<string, Readonly<LocalAuth0Client>>;
  readonly users: readonly Readonly<LocalAuth0User & { sub: string }>[];
  readonly apis: ReadonlyMap<string, Readonly<Required<LocalAuth0Api>>>;
  readonly accessTokenTtl: number;
  readonly idTokenTtl: number;
  readonly idleTimeout: number;
  readonly absoluteTimeout: number;
  readonly clock: () => number;
  readonly logger: { warn(msg: string): void };
  readonly managementApiToken: string | undefined;
  readonly dpopRequireNonce: boolean;
}

const DAY = 24 * 60 * 60;
const AUTH_METHODS = new Set(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']);

function nonEmptyString(value: unknown, path: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new TypeError(`"${path}" must be a non-empty string`);
  }
  return value;
}

function absoluteUrl(value: unknown, path: string): string {
  const text = nonEmptyString(value, path);
  if (!URL.canParse(text)) throw new TypeError(`"${path}" must be an absolute URL, got "${text}"`);
  return text;
}

function positiveInteger(value: unknown, path: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new TypeError(`"${path}" must be a positive integer (seconds)`);
  }
  return value;
}

function urlList(value: unknown, path: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new TypeError(`"${path}" must be an array of absolute URLs`);
  return value.map((url, i) => absoluteUrl(url, `${path}[${i}]`));
}

function resolveClient(input: LocalAuth0Client, path: string, apis: ReadonlyMap<string, Required<LocalAuth0Api>>): LocalAuth0Client {
  if (typeof input !== 'object' || input === null) throw new TypeError(`"${path}" must be an object`);
  const clientId = nonEmptyString(input.clientId, `${path}.clientId`);
  if (input.clientSecret !== undefined) nonEmptyString(input.clientSecret, `${path}.clientSecret`);
  const redirectUris = urlList(input.redirectUris, `${path}.redirectUris`);
  if (redirectUris.length === 0) throw new TypeError(`"${path}.redirectUris" must list at least one URL`);
  const method =
    input.tokenEndpointAuthMethod ?? (input.clientSecret !== undefined ? 'client_secret_basic' : 'none');
  if (!AUTH_METHODS.has(method)) {
    throw new TypeError(`"${path}.tokenEndpointAuthMethod" must be one of ${[...AUTH_METHODS].join(', ')}`);
  }
  if (method.startsWith('client_secret') && input.clientSecret === undefined) {
    throw new TypeError(`"${path}.clientSecret" is required for ${method}`);
  }
  if (method === 'private_key_jwt' && !Array.isArray(input.jwks?.keys)) {
    throw new TypeError(`"${path}.jwks" must be { keys: [...] } for private_key_jwt`);
  }
  if (input.refreshTokenRotation !== undefined && typeof input.refreshTokenRotation !== 'boolean') {
    throw new TypeError(`"${path}.refreshTokenRotation" must be a boolean`);
  }
  const policies = input.refreshTokenPolicies;
  if (policies !== undefined && (!Array.isArray(policies) || policies.some((p) => typeof p?.audience !== 'string' || p.audience.length === 0))) {
    throw new TypeError(`"${path}.refreshTokenPolicies" must be an array of { audience } objects`);
  }
  if (input.name !== undefined) nonEmptyString(input.name, `${path}.name`);
  if (input.clientGrants !== undefined && !Array.isArray(input.clientGrants)) {
    throw new TypeError(`"${path}.clientGrants" must be an array of { audience, scopes? }`);
  }
  const clientGrants = (input.clientGrants ?? []).map((grant, i) => resolveClientGrant(grant, `${path}.clientGrants[${i}]`, apis));
  if (clientGrants.length > 0 && method === 'none') {
    throw new TypeError(`"${path}.clientGrants" needs a confidential client: a public one cannot use client credentials`);
  }
  // Auth0 turns the client-credentials grant on for confidential applications; here it is on by default for those
  // that have a client grant (an application authorised for no API could not use it anyway).
  const grantTypes = input.grantTypes ?? ['authorization_code', 'refresh_token', ...(clientGrants.length > 0 ? ['client_credentials' as const] : [])];
  if (!Array.isArray(grantTypes) || grantTypes.length === 0 || grantTypes.some((g) => !GRANT_TYPES.includes(g))) {
    throw new TypeError(`"${path}.grantTypes" must be a non-empty array of ${GRANT_TYPES.map((g) => `"${g}"`).join(', ')}`);
  }
  if (grantTypes.includes('client_credentials') && method === 'none') {
    throw new TypeError(`"${path}.grantTypes" may include "client_credentials" only for a confidential client`);
  }
  const initiators = input.backchannelLogoutInitiators ?? 'all';
  if (initiators !== 'all' && (!Array.isArray(initiators) || initiators.some((i) => !BACKCHANNEL_LOGOUT_INITIATORS.includes(i)))) {
    throw new TypeError(`"${path}.backchannelLogoutInitiators" must be "all" or an array of ${BACKCHANNEL_LOGOUT_INITIATORS.join(', ')}`);
  }
  return {
    ...input,
    clientId,
    name: input.name ?? clientId,
    grantTypes: [...new Set(grantTypes)],
    backchannelLogoutInitiators: initiators === 'all' ? 'all' : [...new Set(initiators)],
    redirectUris,
    postLogoutRedirectUris: urlList(input.postLogoutRedirectUris, `${path}.postLogoutRedirectUris`),
    ...(input.backchannelLogoutUri !== undefined
      ? { backchannelLogoutUri: absoluteUrl(input.backchannelLogoutUri, `${path}.backchannelLogoutUri`) }
      : {}),
    tokenEndpointAuthMethod: method,
    refreshTokenRotation: input.refreshTokenRotation ?? false,
    clientGrants,
  };
}

function resolveClientGrant(input: LocalAuth0ClientGrant, path: string, apis: ReadonlyMap<string, Required<LocalAuth0Api>>): LocalAuth0ClientGrant {
  if (typeof input !== 'object' || input === null) throw new TypeError(`"${path}" must be an object`);
  const api = apis.get(nonEmptyString(input.audience, `${path}.audience`));
  if (api === undefined) throw new TypeError(`"${path}.audience" must be the audience of one of "apis"`);
  const scopes = input.scopes ?? [];
  if (!Array.isArray(scopes) || scopes.some((scope) => typeof scope !== 'string' || !api.scopes.includes(scope))) {
    throw new TypeError(`"${path}.scopes" must be an array of the API's scopes (${api.scopes.join(' ') || 'it has none'})`);
  }
  return Object.freeze({ audience: api.audience, scopes: Object.freeze([...scopes]) as string[] });
}

function resolveApi(input: LocalAuth0Api, path: string): Required<LocalAuth0Api> {
  if (typeof input !== 'object' || input === null) throw new TypeError(`"${path}" must be an object`);
  const audience = absoluteUrl(input.audience, `${path}.audience`);
  if (input.name !== undefined) nonEmptyString(input.name, `${path}.name`);
  for (const flag of ['allowOnlineAccess', 'allowOfflineAccess', 'allowOnlineAccessWithEphemeralSessions'] as const) {
    if (input[flag] !== undefined && typeof input[flag] !== 'boolean') {
      throw new TypeError(`"${path}.${flag}" must be a boolean`);
    }
  }
  const scopes = input.scopes ?? [];
  if (!Array.isArray(scopes) || scopes.some((s) => typeof s !== 'string' || !/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s))) {
    throw new TypeError(`"${path}.scopes" must be an array of scope tokens`);
  }
  return {
    audience,
    name: input.name ?? audience,
    allowOnlineAccess: input.allowOnlineAccess ?? true,
    allowOnlineAccessWithEphemeralSessions: input.allowOnlineAccessWithEphemeralSessions ?? false,
    allowOfflineAccess: input.allowOfflineAccess ?? true,
    scopes: [...scopes],
  };
}

/**
 * Checks every option once and applies the defaults.
 * @throws TypeError naming the option path, e.g. `"clients[0].redirectUris" must list at least one URL`.
 */
export function resolveOptions(options: LocalAuth0Options): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('"options" must be an object');
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TypeError('"port" must be an integer between 0 and 65535');
  }
  const host = options.host === undefined ? '127.0.0.1' : nonEmptyString(options.host, 'host');
  let issuerUrl: string | undefined;
  if (options.issuerUrl !== undefined) {
    issuerUrl = absoluteUrl(options.issuerUrl, 'issuerUrl');
    // The login form and the logout route are served from the root: a path prefix would break them.
    if (new URL(issuerUrl).pathname !== '/') throw new TypeError('"issuerUrl" must have the path "/"');
  }

  // Before the clients: their client grants name APIs.
  const apis = new Map<string, Required<LocalAuth0Api>>();
  (options.apis ?? []).forEach((input, i) => {
    const api = resolveApi(input, `apis[${i}]`);
    apis.set(api.audience, Object.freeze(api));
  });

  if (!Array.isArray(options.clients) || options.clients.length === 0) {
    throw new TypeError('"clients" must be a non-empty array');
  }
  const clients = new Map<string, LocalAuth0Client>();
  options.clients.forEach((input, i) => {
    const client = resolveClient(input, `clients[${i}]`, apis);
    if (clients.has(client.clientId)) throw new TypeError(`"clients[${i}].clientId" is a duplicate: ${client.clientId}`);
    clients.set(client.clientId, Object.freeze(client));
  });

  if (!Array.isArray(options.users)) throw new TypeError('"users" must be an array');
  const seen = new Set<string>();
  const users = options.users.map((input, i) => {
    if (typeof input !== 'object' || input === null) throw new TypeError(`"users[${i}]" must be an object`);
    const username = nonEmptyString(input.username, `users[${i}].username`);
    nonEmptyString(input.password, `users[${i}].password`);
    const sub = input.sub === undefined ? `auth0|${username}` : nonEmptyString(input.sub, `users[${i}].sub`);
    if (seen.has(username) || seen.has(`sub:${sub}`)) throw new TypeError(`"users[${i}]" duplicates a username or sub`);
    seen.add(username).add(`sub:${sub}`);
    return Object.freeze({ ...input, username, sub });
  });


  const clock = options.clock ?? Date.now;
  if (typeof clock !== 'function') throw new TypeError('"clock" must be a function returning epoch milliseconds');
  const logger = options.logger ?? { warn() {} };
  if (typeof logger.warn !== 'function') throw new TypeError('"logger.warn" must be a function');

  const managementApiToken =
    options.managementApiToken === undefined ? undefined : nonEmptyString(options.managementApiToken, 'managementApiToken');

  if (options.dpop !== undefined && (typeof options.dpop !== 'object' || options.dpop === null)) throw new TypeError('"dpop" must be an object');
  const dpopRequireNonce = options.dpop?.requireNonce ?? false;
  if (typeof dpopRequireNonce !== 'boolean') throw new TypeError('"dpop.requireNonce" must be a boolean');

  const idleTimeout = positiveInteger(options.idleTimeout, 'idleTimeout', 3 * DAY);
  const absoluteTimeout = positiveInteger(options.absoluteTimeout, 'absoluteTimeout', 7 * DAY);

  return Object.freeze({
    port,
    host,
    issuerUrl,
    clients,
    users,
    apis,
    accessTokenTtl: positiveInteger(options.accessTokenTtl, 'accessTokenTtl', 60),
    idTokenTtl: positiveInteger(options.idTokenTtl, 'idTokenTtl', 3600),
    idleTimeout,
    absoluteTimeout,
    clock,
    logger,
    managementApiToken,
    dpopRequireNonce,
  });
}
