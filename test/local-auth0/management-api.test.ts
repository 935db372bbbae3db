import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startLocalAuth0, type LocalAuth0 } from '../../src/local-auth0/index.js';
import { ALICE, API, BFF } from './support.js';

const CONFIGURED_TOKEN = 'configured-management-token';
const OTHER_API = 'urn:other-api';

let auth0: LocalAuth0;

beforeAll(async () => {
  auth0 = await startLocalAuth0({
    clients: [
      { ...BFF, name: 'My BFF', backchannelLogoutUri: 'http://127.0.0.1:3000/auth/backchannel-logout', backchannelLogoutInitiators: ['rp-logout', 'session-expired'] },
      { clientId: 'spa', redirectUris: ['http://127.0.0.1:4000/'], grantTypes: ['authorization_code'] },
    ],
    users: [ALICE],
    apis: [
      { audience: API, scopes: ['read:messages'] },
      { audience: OTHER_API, allowOnlineAccess: false, allowOnlineAccessWithEphemeralSessions: true },
    ],
    accessTokenTtl: 120,
    managementApiToken: CONFIGURED_TOKEN,
  });
});
afterAll(() => auth0?.stop());

/** GETs a Management API path with `token` (null: no Authorization header). */
async function get(path: string, token: string | null = CONFIGURED_TOKEN): Promise<{ status: number; body: any; headers: Headers }> {
  const response = await fetch(new URL(path, auth0.issuer), { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  return { status: response.status, body: await response.json(), headers: response.headers };
}

describe('the Management API: resource servers', () => {
  it('lists the APIs with their online access settings, filtered by identifier', async () => {
    const all = await get('api/v2/resource-servers');
    expect(all.status).toBe(200);
    expect(all.headers.get('cache-control')).toBe('no-store');
    expect(all.body.map((api: { identifier: string }) => api.identifier)).toEqual([API, OTHER_API]);

    const filtered = await get(`api/v2/resource-servers?identifiers=${encodeURIComponent(OTHER_API)}`);
    expect(filtered.body).toEqual([
      expect.objectContaining({
        identifier: OTHER_API,
        name: OTHER_API,
        allow_online_access: false,
        allow_online_access_with_ephemeral_sessions: true,
        allow_offline_access: true,
        token_lifetime: 120,
        signing_alg: 'RS256',
      }),
    ]);
  });

  it('finds one API by its audience or by its id, and answers 404 for an unknown one', async () => {
    const byAudience = await get(`api/v2/resource-servers/${encodeURIComponent(API)}`);
    expect(byAudience.status).toBe(200);
    expect(byAudience.body).toMatchObject({ identifier: API, allow_online_access: true, allow_online_access_with_ephemeral_sessions: false, scopes: [{ value: 'read:messages' }] });
    const byId = await get(`api/v2/resource-servers/${byAudience.body.id}`);
    expect(byId.body.identifier).toBe(API);

    const unknown = await get(`api/v2/resource-servers/${encodeURIComponent('https://nowhere.example.com')}`);
    expect(unknown).toMatchObject({ status: 404, body: { statusCode: 404, errorCode: 'inexistent_resource_server' } });
    expect((await get('api/v2/resource-servers/%E0%A4%A')).status).toBe(404);
  });
});

describe('the Management API: clients', () => {
  it('shows an application\'s URLs, grants and back-channel logout settings', async () => {
    const { status, body } = await get(`api/v2/clients/${BFF.clientId}`);
    expect(status).toBe(200);
    expect(body).toEqual({
      client_id: BFF.clientId,
      name: 'My BFF',
      app_type: 'regular_web',
      is_first_party: true,
      oidc_conformant: true,
      callbacks: BFF.redirectUris,
      allowed_logout_urls: BFF.postLogoutRedirectUris,
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'client_secret_basic',
      oidc_logout: {
        backchannel_logout_urls: ['http://127.0.0.1:3000/auth/backchannel-logout'],
        backchannel_logout_initiators: { mode: 'custom', selected_initiators: ['rp-logout', 'session-expired'] },
      },
      // The policies in effect: by default every API that allows online access, with its scopes.
      refresh_token: {
        rotation_type: 'non-rotating',
        expiration_type: 'non-expiring',
        policies: [{ audience: 'https://api.example.com', scope: ['read:messages'] }],
      },
    });
    expect(JSON.stringify(body)).not.toContain(BFF.clientSecret);
  });

  it('leaves out oidc_logout for an application without a back-channel logout URI, and shows its grants', async () => {
    const { body } = await get('api/v2/clients/spa');
    expect(body).toMatchObject({ client_id: 'spa', app_type: 'spa', grant_types: ['authorization_code'], allowed_logout_urls: [] });
    expect(body).not.toHaveProperty('oidc_logout');
  });

  it('shows the client secret only to a token with read:client_keys, and not when the fields leave it out', async () => {
    const keys = auth0.admin.issueManagementToken({ scopes: ['read:clients', 'read:client_keys'] });
    expect((await get(`api/v2/clients/${BFF.clientId}`, keys)).body.client_secret).toBe(BFF.clientSecret);
    expect((await get(`api/v2/clients/${BFF.clientId}?fields=client_id,callbacks&include_fields=true`, keys)).body).toEqual({ client_id: BFF.clientId, callbacks: BFF.redirectUris });
  });

  it('returns only the fields asked for', async () => {
    const only = await get(`api/v2/clients/${BFF.clientId}?fields=client_id,grant_types&include_fields=true`);
    expect(only.body).toEqual({ client_id: BFF.clientId, grant_types: ['authorization_code', 'refresh_token'] });
    const without = await get(`api/v2/clients/${BFF.clientId}?fields=callbacks,oidc_logout&include_fields=false`);
    expect(without.body).not.toHaveProperty('callbacks');
    expect(without.body).toHaveProperty('grant_types');
  });

  it('answers 404 inexistent_client for an unknown client id', async () => {
    expect(await get('api/v2/clients/nobody')).toMatchObject({ status: 404, body: { message: 'The client does not exist', errorCode: 'inexistent_client' } });
  });
});

describe('the Management API: access', () => {
  it('answers 401 without a token and with an unknown one', async () => {
    expect(await get(`api/v2/clients/${BFF.clientId}`, null)).toMatchObject({ status: 401, body: { statusCode: 401, error: 'Unauthorized', message: 'Missing authentication' } });
    expect(await get(`api/v2/clients/${BFF.clientId}`, 'not-a-token')).toMatchObject({ status: 401, body: { message: 'Invalid token' } });
  });

  it('issues tokens through the admin handle, and answers 403 insufficient_scope for a scope the token lacks', async () => {
    const token = auth0.admin.issueManagementToken({ scopes: ['read:resource_servers'] });
    expect((await get('api/v2/resource-servers', token)).status).toBe(200);
    expect(await get(`api/v2/clients/${BFF.clientId}`, token)).toMatchObject({
      status: 403,
      body: { statusCode: 403, error: 'Forbidden', message: 'Insufficient scope, expected any of: read:clients', errorCode: 'insufficient_scope' },
    });
    expect((await get(`api/v2/clients/${BFF.clientId}`, auth0.admin.issueManagementToken())).status).toBe(200);
    expect(() => auth0.admin.issueManagementToken({ scopes: ['delete:clients' as never] })).toThrow(/"scopes" must be an array/);
  });

  it('answers 404 for paths and methods it does not emulate', async () => {
    expect((await get('api/v2/users')).status).toBe(404);
    const patch = await fetch(new URL(`api/v2/clients/${BFF.clientId}`, auth0.issuer), { method: 'PATCH', headers: { authorization: `Bearer ${CONFIGURED_TOKEN}` } });
    expect(patch.status).toBe(404);
  });
});
