/**
 * The few read-only Auth0 Management API endpoints a setup checker needs (the doctor reads them), answered from
 * the emulator's own configuration, in Auth0's shapes:
 * - `GET /api/v2/resource-servers` (with `identifiers` filters), `GET /api/v2/resource-servers/{id or audience}`;
 * - `GET /api/v2/clients/{client_id}`;
 * each with `fields` and `include_fields`, behind a bearer token with `read:resource_servers` / `read:clients`.
 * Errors are Auth0's: `{ statusCode, error, message, errorCode }` (401 no or unknown token, 403
 * `insufficient_scope`, 404 `inexistent_client` / `inexistent_resource_server`).
 */
import { createHash, randomBytes } from 'node:crypto';

import { sendJson, type Context, type Middleware } from './koa-helpers.js';
import type { LocalAuth0Api, LocalAuth0Client, ResolvedOptions } from './options.js';
import type { ManagementScope } from './types.js';

const KNOWN_SCOPES: readonly ManagementScope[] = ['read:clients', 'read:client_keys', 'read:resource_servers'];
/** The scopes of the configured token and of an issued one by default. */
export const MANAGEMENT_SCOPES: readonly ManagementScope[] = ['read:clients', 'read:resource_servers'];

const PREFIX = '/api/v2/';

/** The bearer tokens the Management API accepts, with their scopes: the configured one and those issued since. */
export class ManagementTokens {
  readonly #scopes = new Map<string, ReadonlySet<ManagementScope>>();

  constructor(configured: string | undefined) {
    if (configured !== undefined) this.#scopes.set(configured, new Set(MANAGEMENT_SCOPES));
  }

  /** A new opaque token with `scopes` (default: all of them). */
  issue(scopes: readonly ManagementScope[] = MANAGEMENT_SCOPES): string {
    if (!Array.isArray(scopes) || scopes.some((scope) => !KNOWN_SCOPES.includes(scope))) {
      throw new TypeError(`"scopes" must be an array of ${KNOWN_SCOPES.join(', ')}`);
    }
    const token = randomBytes(32).toString('base64url');
    this.#scopes.set(token, new Set(scopes));
    return token;
  }

  scopesOf(token: string): ReadonlySet<ManagementScope> | undefined {
    return this.#scopes.get(token);
  }
}

/** Auth0's resource server ids are opaque; this one is stable for an audience. */
function resourceServerId(audience: string): string {
  return createHash('sha256').update(audience).digest('hex').slice(0, 24);
}

function resourceServerBody(api: Readonly<Required<LocalAuth0Api>>, options: ResolvedOptions): Record<string, unknown> {
  return {
    id: resourceServerId(api.audience),
    name: api.name,
    identifier: api.audience,
    is_system: false,
    signing_alg: 'RS256',
    token_lifetime: options.accessTokenTtl,
    allow_offline_access: api.allowOfflineAccess,
    allow_online_access: api.allowOnlineAccess,
    allow_online_access_with_ephemeral_sessions: api.allowOnlineAccessWithEphemeralSessions,
    skip_consent_for_verifiable_first_party_clients: true,
    scopes: api.scopes.map((value) => ({ value, description: value })),
  };
}

/** An application as Auth0 shows it; its secret only to a token with `read:client_keys`, as on Auth0. */
function clientBody(client: Readonly<LocalAuth0Client>, withSecret: boolean, apis: ReadonlyArray<Readonly<Required<LocalAuth0Api>>>): Record<string, unknown> {
  const initiators = client.backchannelLogoutInitiators ?? 'all';
  return {
    client_id: client.clientId,
    name: client.name ?? client.clientId,
    ...(withSecret && client.clientSecret !== undefined ? { client_secret: client.clientSecret } : {}),
    app_type: client.tokenEndpointAuthMethod === 'none' ? 'spa' : 'regular_web',
    is_first_party: true,
    oidc_conformant: true,
    callbacks: [...client.redirectUris],
    allowed_logout_urls: [...(client.postLogoutRedirectUris ?? [])],
    grant_types: [...(client.grantTypes ?? [])],
    token_endpoint_auth_method: client.tokenEndpointAuthMethod,
    // The policies in effect: the configured ones, else every API that allows online access (the emulator's
    // default), each with the API's scopes (the emulator checks only the audience).
    refresh_token: {
      rotation_type: client.refreshTokenRotation === true ? 'rotating' : 'non-rotating',
      expiration_type: 'non-expiring',
      policies: (client.refreshTokenPolicies?.map((policy) => policy.audience) ?? apis.filter((api) => api.allowOnlineAccess).map((api) => api.audience))
        .map((audience) => ({ audience, scope: [...(apis.find((api) => api.audience === audience)?.scopes ?? [])] })),
    },
    // An application without a back-channel logout URI has no oidc_logout settings, as on a new Auth0 application.
    ...(client.backchannelLogoutUri === undefined
      ? {}
      : {
          oidc_logout: {
            backchannel_logout_urls: [client.backchannelLogoutUri],
            backchannel_logout_initiators:
              initiators === 'all' ? { mode: 'all' } : { mode: 'custom', selected_initiators: [...initiators] },
          },
        }),
  };
}

function sendError(ctx: Context, statusCode: number, message: string, errorCode?: string): void {
  const error = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found' }[statusCode] ?? 'Error';
  sendJson(ctx, statusCode, { statusCode, error, message, ...(errorCode ? { errorCode } : {}) });
}

/** Applies Auth0's `fields` (comma-separated) and `include_fields` (default true) query parameters. */
function selectFields(body: Record<string, unknown>, query: URLSearchParams): Record<string, unknown> {
  const fields = query.get('fields')?.split(',').map((field) => field.trim()).filter(Boolean);
  if (!fields || fields.length === 0) return body;
  const include = query.get('include_fields') !== 'false';
  return Object.fromEntries(Object.entries(body).filter(([name]) => fields.includes(name) === include));
}

/** A path segment, URL-decoded; a malformed one matches nothing (and so gets a 404, not a 500). */
function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return '';
  }
}

/** The Management API routes, as `provider.use` middleware. */
export function managementApiRoutes(options: ResolvedOptions, tokens: ManagementTokens): Middleware {
  const apis = () => [...options.apis.values()];

  /** The request's bearer token's scopes if it has `scope`; if not, answers 401 or 403 and returns undefined. */
  function authorize(ctx: Context, scope: ManagementScope): ReadonlySet<ManagementScope> | undefined {
    const header = ctx.get('authorization');
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) {
      sendError(ctx, 401, 'Missing authentication');
      return undefined;
    }
    const scopes = tokens.scopesOf(match[1]!);
    if (!scopes) {
      sendError(ctx, 401, 'Invalid token');
      return undefined;
    }
    if (!scopes.has(scope)) {
      sendError(ctx, 403, `Insufficient scope, expected any of: ${scope}`, 'insufficient_scope');
      return undefined;
    }
    return scopes;
  }

  return async function auth0ManagementApi(ctx, next) {
    if (!ctx.path.startsWith(PREFIX)) return next();
    const path = ctx.path.slice(PREFIX.length);
    const query = new URLSearchParams(ctx.querystring);
    if (ctx.method !== 'GET') {
      sendError(ctx, 404, 'Not Found');
      return undefined;
    }

    if (path === 'resource-servers') {
      if (!authorize(ctx, 'read:resource_servers')) return undefined;
      const identifiers = query.getAll('identifiers');
      const list = apis()
        .filter((api) => identifiers.length === 0 || identifiers.includes(api.audience))
        .map((api) => selectFields(resourceServerBody(api, options), query));
      sendJson(ctx, 200, query.get('include_totals') === 'true' ? { resource_servers: list, start: 0, limit: list.length, total: list.length } : list);
      return undefined;
    }

    const resourceServer = /^resource-servers\/([^/]+)$/.exec(path);
    if (resourceServer) {
      if (!authorize(ctx, 'read:resource_servers')) return undefined;
      // Auth0 takes the resource server's id or its audience (URL-encoded).
      const wanted = decoded(resourceServer[1]!);
      const api = apis().find((candidate) => candidate.audience === wanted || resourceServerId(candidate.audience) === wanted);
      if (!api) sendError(ctx, 404, 'The resource server does not exist', 'inexistent_resource_server');
      else sendJson(ctx, 200, selectFields(resourceServerBody(api, options), query));
      return undefined;
    }

    const client = /^clients\/([^/]+)$/.exec(path);
    if (client) {
      const scopes = authorize(ctx, 'read:clients');
      if (!scopes) return undefined;
      const found = options.clients.get(decoded(client[1]!));
      if (!found) sendError(ctx, 404, 'The client does not exist', 'inexistent_client');
      else sendJson(ctx, 200, selectFields(clientBody(found, scopes.has('read:client_keys'), apis()), query));
      return undefined;
    }

    sendError(ctx, 404, 'Not Found');
    return undefined;
  };
}
