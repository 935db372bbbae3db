/**
 * The client-credentials grant as Auth0 answers it (`POST /oauth/token grant_type=client_credentials&audience=...`):
 * an application gets a token for an API only through a "client grant" (Dashboard: the API's Machine to Machine
 * Applications tab), with the permissions of that grant when it asks for none; the JWT says who it is for with
 * `sub: <client_id>@clients` and `gty: client-credentials`. Refusals are 403 `access_denied` (no client grant, a
 * permission the grant lacks), mapped to that status in auth0-compat.ts with the other token endpoint answers.
 */
import { errors, type Client, type KoaContextWithOIDC } from 'oidc-provider';

import type { LocalAuth0Client } from './options.js';

/** Auth0's Management API path for creating a client grant, which its refusal points to. */
const CLIENT_GRANTS_DOC = 'https://auth0.com/docs/api/v2#!/Client_Grants/post_client_grants';

/** Whether this token request is a client-credentials grant. */
export function isClientCredentials(ctx: KoaContextWithOIDC): boolean {
  return ctx.oidc.route === 'token' && ctx.oidc.params?.grant_type === 'client_credentials';
}

/**
 * Runs when the API of a client-credentials request is resolved, after the client authenticated: refuses an
 * application without a client grant for that API, or one asking for a permission its grant lacks, and gives an
 * application that asks for no permission all those of its grant (as Auth0 does).
 */
export function checkClientGrant(ctx: KoaContextWithOIDC, client: Client, audience: string, clients: ReadonlyMap<string, Readonly<LocalAuth0Client>>): void {
  const grant = clients.get(client.clientId)?.clientGrants?.find((candidate) => candidate.audience === audience);
  if (grant === undefined) {
    throw new errors.AccessDenied(`Client is not authorized to access "${audience}". You need to create a "client-grant" associated to this API. See: ${CLIENT_GRANTS_DOC}`);
  }
  const granted = grant.scopes ?? [];
  const params = ctx.oidc.params as { scope?: string };
  const requested = params.scope?.split(' ').filter(Boolean) ?? [];
  if (requested.length === 0) {
    params.scope = granted.length === 0 ? undefined : granted.join(' ');
    return;
  }
  const missing = requested.filter((scope) => !granted.includes(scope));
  if (missing.length > 0) throw new errors.AccessDenied(`Client has not been granted scopes: ${missing.join(' ')}`);
}

/** The claims Auth0 gives an application's own token: the application as subject, and the grant type. */
export function clientCredentialsClaims(payload: Record<string, unknown>, clientId: string): void {
  payload.sub = `${clientId}@clients`;
  payload.gty = 'client-credentials';
}
