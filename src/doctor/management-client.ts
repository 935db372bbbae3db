/**
 * Reads the two things the tenant checks need from the Auth0 Management API, with a token the user supplies:
 * the APIs (resource servers) of the BFF's audiences, and its application (client). Read-only; the client is
 * asked for the fields the checks use, so that its secret is never even sent here.
 */
import { findingsOf, type Finding } from './finding.js';
import { describeFailure, getJsonRetrying, type DoctorHttp, type JsonAnswer } from './http.js';

const { ok, warn, fail } = findingsOf('tenant');

const CLIENT_FIELDS = [
  'client_id', 'name', 'app_type', 'callbacks', 'allowed_logout_urls', 'grant_types', 'oidc_logout', 'token_endpoint_auth_method',
  'require_proof_of_possession',
];
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

export type Json = Record<string, unknown>;

/** What the Management API told, and one finding on whether it could be asked at all. */
export interface TenantData {
  readonly access: Finding;
  /** The resource servers of the audiences asked for; undefined when they could not be read. */
  readonly resourceServers?: readonly Json[];
  /** The application; null when the tenant has none with that client id, undefined when it could not be read. */
  readonly client?: Json | null;
}

type CallResult = JsonAnswer | { readonly error: string };

/**
 * Where the Management API is: on the domain that issued the token, when it is a JWT (Auth0: a token got through
 * a custom domain must be used with the Management API of that domain, one got through the tenant's own domain
 * with that one), else on the BFF's issuer. The token is only decoded, never trusted: the API checks it.
 */
export function managementApiBase(issuer: URL, token: string): URL {
  const parts = token.split('.');
  try {
    const claims = parts.length === 3 ? (JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { iss?: unknown }) : undefined;
    if (typeof claims?.iss === 'string' && URL.canParse(claims.iss)) {
      const url = new URL(claims.iss);
      if (url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.has(url.hostname))) return new URL('api/v2/', url.origin);
    }
  } catch {
    // Not a JWT after all: an opaque token is used with the issuer's Management API.
  }
  return new URL('api/v2/', issuer.href.replace(/\/?$/, '/'));
}

async function call(url: URL, token: string, http: DoctorHttp): Promise<CallResult> {
  try {
    return await getJsonRetrying(url, { authorization: `Bearer ${token}` }, http);
  } catch (error) {
    return { error: describeFailure(error) };
  }
}

/** Why a call was refused, as the Management API says it (`{ statusCode, error, message }`). */
function refusal(result: JsonAnswer): string {
  const message = (result.body as { message?: unknown } | undefined)?.message;
  const times = result.attempts > 1 ? `, ${result.attempts} times` : '';
  return typeof message === 'string' ? `${result.status} ${message}${times}` : `HTTP ${result.status}${times}`;
}

/** A rate limit (429) or a fault of Auth0 (5xx): like no answer, it tells nothing about the token. */
function passing(result: JsonAnswer): boolean {
  return result.status === 429 || result.status >= 500;
}

function unavailability(result: CallResult): string {
  if ('error' in result) return `could not be reached (${result.error})`;
  return `${result.status === 429 ? 'is rate-limited' : 'is unavailable'} (it answered ${refusal(result)})`;
}

/** Reads the resource servers of `audiences` and the application `clientId`. */
export async function readTenant(issuer: URL, token: string, clientId: string, audiences: readonly string[], http: DoctorHttp): Promise<TenantData> {
  const base = managementApiBase(issuer, token);
  const serversUrl = new URL('resource-servers', base);
  for (const audience of audiences) serversUrl.searchParams.append('identifiers', audience);
  const clientUrl = new URL(`clients/${encodeURIComponent(clientId)}`, base);
  clientUrl.search = new URLSearchParams({ fields: CLIENT_FIELDS.join(','), include_fields: 'true' }).toString();

  const [servers, client] = await Promise.all([call(serversUrl, token, http), call(clientUrl, token, http)]);
  const data: { resourceServers?: readonly Json[]; client?: Json | null } = {};
  const problems: string[] = [];
  const missingScopes: string[] = [];
  const unavailable: string[] = [];
  for (const [result, scope] of [[servers, 'read:resource_servers'], [client, 'read:clients']] as const) {
    if ('error' in result || passing(result)) unavailable.push(unavailability(result));
    else if (result.status === 403) missingScopes.push(scope);
    else if (result.status === 401) problems.push(`refused the token (${refusal(result)})`);
    else if (result.status !== 200 && !(result === client && result.status === 404)) problems.push(`answered ${refusal(result)}`);
  }
  if (!('error' in servers) && servers.status === 200 && Array.isArray(servers.body)) {
    // Filtered here too: an API that ignored the filter must not make another API pass for this one.
    data.resourceServers = (servers.body as Json[]).filter((server) => audiences.includes(server?.identifier as string));
  }
  if (!('error' in client) && client.status === 200 && client.body !== null && typeof client.body === 'object') data.client = client.body as Json;
  if (!('error' in client) && client.status === 404) data.client = null;

  const where = `The Management API at ${base.href}`;
  if (problems.length > 0) {
    return {
      ...data,
      access: fail('management.access', `${where} ${[...new Set(problems)].join('; ')}`, {
        fix: 'Give AUTH0_MANAGEMENT_TOKEN a current token of this tenant\'s Management API with read:clients and read:resource_servers (Dashboard > Applications > APIs > Auth0 Management API > API Explorer; such a token expires).',
      }),
    };
  }
  if (missingScopes.length > 0) {
    return {
      ...data,
      access: fail('management.access', `${where} needs ${missingScopes.join(' and ')}, which the token lacks`, {
        fix: `Get a token with ${missingScopes.join(' and ')} (Dashboard > Applications > APIs > Auth0 Management API > Machine to Machine Applications: grant the scope to the application the token is for).`,
      }),
    };
  }
  if (unavailable.length > 0) {
    // Not the token's fault: the checks that need what could not be read are listed as not checked.
    return {
      ...data,
      access: warn('management.access', `${where} ${[...new Set(unavailable)].join('; ')}: the settings it did not give were not checked`, {
        detail: 'A rate limit (429), a fault of Auth0 (5xx) or no answer says nothing about the token or the settings.',
        fix: 'Run the doctor again in a minute. If it persists, check status.auth0.com, and whether other scripts of the tenant use up its Management API rate limit.',
      }),
    };
  }
  return { ...data, access: ok('management.access', `${where} accepts the token (read:resource_servers, read:clients)`) };
}
