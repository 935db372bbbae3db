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
  'require_proof_of_possession', 'refresh_token',
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
  /** Why nothing was read, when `access` says it for every check ("the token is another tenant's"). */
  readonly unread?: string;
}

type CallResult = JsonAnswer | { readonly error: string };

/** What a token says of itself, decoded, never trusted (the Management API checks it): who issued it, with which key. */
function claimsOf(token: string): { iss?: URL; kid?: string } {
  const parts = token.split('.');
  if (parts.length !== 3) return {};
  const decode = (part: string) => {
    try {
      return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
    } catch {
      // Not a JWT after all.
      return undefined;
    }
  };
  const header = decode(parts[0]!) as { kid?: unknown } | undefined;
  const claims = decode(parts[1]!) as { iss?: unknown } | undefined;
  const kid = typeof header?.kid === 'string' ? header.kid : undefined;
  if (typeof claims?.iss !== 'string' || !URL.canParse(claims.iss)) return kid === undefined ? {} : { kid };
  const iss = new URL(claims.iss);
  if (iss.protocol !== 'https:' && !(iss.protocol === 'http:' && LOOPBACK.has(iss.hostname))) return kid === undefined ? {} : { kid };
  return { iss, ...(kid === undefined ? {} : { kid }) };
}

/**
 * Where the Management API is: on the domain that issued the token, when it is a JWT (Auth0: a token got through
 * a custom domain must be used with the Management API of that domain, one got through the tenant's own domain
 * with that one), else on the BFF's issuer. The token is only decoded, never trusted: the API checks it.
 */
export function managementApiBase(issuer: URL, token: string): URL {
  const { iss } = claimsOf(token);
  if (iss) return new URL('api/v2/', iss.origin);
  // An opaque token is used with the issuer's Management API.
  return new URL('api/v2/', issuer.href.replace(/\/?$/, '/'));
}

/**
 * Whether the token is of the BFF's tenant. A token issued by another domain than the BFF's issuer may still be:
 * a tenant answers on its own domain and on its custom domains, and signs on all of them with the same keys (the
 * JWKS of each lists them). So such a token counts as the tenant's only when its `kid` is one of the keys of the
 * issuer's `jwks_uri`; else its Management API is another tenant's, whose answers say nothing about this BFF.
 */
async function tenantOfToken(issuer: URL, token: string, jwksUri: string | undefined, http: DoctorHttp): Promise<
  { readonly whose: 'this' } | { readonly whose: 'other'; readonly issuedBy: string } | { readonly whose: 'unknown'; readonly issuedBy: string; readonly why: string }
> {
  const { iss, kid } = claimsOf(token);
  if (iss === undefined || iss.origin === issuer.origin) return { whose: 'this' };
  const issuedBy = `${iss.origin}/`;
  if (jwksUri === undefined || !URL.canParse(jwksUri)) return { whose: 'unknown', issuedBy, why: 'the discovery document gives no jwks_uri' };
  const keys = await call(new URL(jwksUri), undefined, http);
  const list = 'error' in keys ? undefined : (keys.body as { keys?: unknown } | undefined)?.keys;
  if ('error' in keys || keys.status !== 200 || !Array.isArray(list)) {
    return { whose: 'unknown', issuedBy, why: `the issuer's keys at ${jwksUri} ${'error' in keys ? `could not be read (${keys.error})` : `could not be read (it answered ${refusal(keys)})`}` };
  }
  return kid !== undefined && list.some((key) => (key as { kid?: unknown } | null)?.kid === kid) ? { whose: 'this' } : { whose: 'other', issuedBy };
}

async function call(url: URL, token: string | undefined, http: DoctorHttp): Promise<CallResult> {
  try {
    return await getJsonRetrying(url, token === undefined ? {} : { authorization: `Bearer ${token}` }, http);
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

const isObject = (body: unknown): body is Json => body !== null && typeof body === 'object' && !Array.isArray(body);

/**
 * Auth0's own answer for an application that does not exist: JSON, `{ statusCode: 404, errorCode:
 * 'inexistent_client' }`. A 404 page of something else at that address (a proxy, a wrong host) says nothing of the
 * application.
 */
function noSuchClient(result: JsonAnswer): boolean {
  return result.status === 404 && isObject(result.body) && (result.body.errorCode === 'inexistent_client' || result.body.statusCode === 404);
}

const TOKEN_FIX =
  'Give AUTH0_MANAGEMENT_TOKEN a current token of this tenant\'s Management API with read:clients and read:resource_servers (Dashboard > Applications > APIs > Auth0 Management API > API Explorer; such a token expires).';

/**
 * Reads the resource servers of `audiences` and the application `clientId`, with `token` when it is the
 * tenant's (`jwksUri`: the issuer's keys, which tell a token of the tenant got through its other domain).
 */
export async function readTenant(
  issuer: URL,
  token: string,
  clientId: string,
  audiences: readonly string[],
  http: DoctorHttp,
  jwksUri?: string,
): Promise<TenantData> {
  const tenantOf = await tenantOfToken(issuer, token, jwksUri, http);
  if (tenantOf.whose === 'other') {
    // Not even asked: another tenant's answers would vouch for settings of the wrong tenant, or blame CLIENT_ID.
    return {
      unread: 'the Management API token is another tenant\'s',
      access: fail('management.access', `The Management API token is another tenant's: it was issued by ${tenantOf.issuedBy}, not by the BFF's issuer ${issuer.href}, and is not signed with one of its keys`, {
        detail: 'That tenant\'s Management API would answer for its own APIs and applications, not for the BFF\'s.',
        fix: `Get the token from the tenant of ${issuer.href} (its Dashboard > Applications > APIs > Auth0 Management API > API Explorer) and set AUTH0_MANAGEMENT_TOKEN to it.`,
      }),
    };
  }
  if (tenantOf.whose === 'unknown') {
    return {
      unread: 'it is not known whether the Management API token is the BFF tenant\'s',
      access: warn('management.access', `Whether the Management API token, issued by ${tenantOf.issuedBy}, is of the BFF's tenant is not known: ${tenantOf.why}`, {
        detail: 'A token issued by another domain than the BFF\'s issuer is taken as the tenant\'s only when it is signed with one of the issuer\'s keys.',
        fix: `Run the doctor again; or use a token issued by ${issuer.href} itself.`,
      }),
    };
  }

  const base = managementApiBase(issuer, token);
  const serversUrl = new URL('resource-servers', base);
  for (const audience of audiences) serversUrl.searchParams.append('identifiers', audience);
  const clientUrl = new URL(`clients/${encodeURIComponent(clientId)}`, base);
  clientUrl.search = new URLSearchParams({ fields: CLIENT_FIELDS.join(','), include_fields: 'true' }).toString();

  // No audience to check (the login asks for the tenant's default API): no API is asked for, as a request without
  // a filter would list every API of the tenant.
  const askServers = audiences.length > 0;
  const [servers, client] = await Promise.all([askServers ? call(serversUrl, token, http) : undefined, call(clientUrl, token, http)]);
  const data: { resourceServers?: readonly Json[]; client?: Json | null } = askServers ? {} : { resourceServers: [] };
  const problems: string[] = [];
  const notTheApi: string[] = [];
  const missingScopes: string[] = [];
  const unavailable: string[] = [];
  const asked = [...(servers === undefined ? [] : [[servers, 'read:resource_servers', Array.isArray] as const]), [client, 'read:clients', isObject] as const];
  for (const [result, scope, expected] of asked) {
    if ('error' in result || passing(result)) unavailable.push(unavailability(result));
    // Every answer of the Management API is JSON; a page is something else's (a proxy, a login page, a wrong host).
    else if (result.body === undefined) notTheApi.push(`answered HTTP ${result.status} with a page, not the Management API's JSON`);
    else if (result.status === 403) missingScopes.push(scope);
    else if (result.status === 401) problems.push(`refused the token (${refusal(result)})`);
    else if (result.status === 200 && !expected(result.body)) notTheApi.push('answered HTTP 200 with JSON that is not the Management API\'s');
    else if (result === client && noSuchClient(result)) continue;
    else if (result.status === 404) notTheApi.push(`answered ${refusal(result)}, not the Management API's JSON`);
    else if (result.status !== 200) problems.push(`answered ${refusal(result)}`);
  }
  if (servers !== undefined && !('error' in servers) && servers.status === 200 && Array.isArray(servers.body)) {
    // Filtered here too: an API that ignored the filter must not make another API pass for this one.
    data.resourceServers = (servers.body as Json[]).filter((server) => audiences.includes(server?.identifier as string));
  }
  if (!('error' in client) && client.status === 200 && isObject(client.body)) data.client = client.body;
  // "No such application" only from the Management API itself: when it also gave the resource servers, or (none
  // asked for) with Auth0's own error code.
  const fromTheApi = servers === undefined ? (client as { body?: { errorCode?: unknown } }).body?.errorCode === 'inexistent_client' : data.resourceServers !== undefined;
  if (!('error' in client) && noSuchClient(client) && fromTheApi) data.client = null;

  const where = `The Management API at ${base.href}`;
  if (notTheApi.length > 0 || problems.length > 0) {
    return {
      ...data,
      access: fail('management.access', `${where} ${[...new Set([...notTheApi, ...problems])].join('; ')}`, {
        fix: notTheApi.length > 0
          ? `Check that ${base.href} is the Management API of the tenant itself, not a proxy or a page in front of it: ISSUER_URL (or the domain the token was issued by) must be the tenant's domain or its custom domain.`
          : TOKEN_FIX,
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
  return { ...data, access: ok('management.access', `${where} accepts the token (${askServers ? 'read:resource_servers, read:clients' : 'read:clients'})`) };
}
