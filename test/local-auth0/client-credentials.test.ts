import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { startLocalAuth0, type LocalAuth0, type LocalAuth0Client } from '../../src/local-auth0/index.js';
import { ALICE, API, BFF, postForm } from './support.js';

const OTHER_API = 'https://other.example.com';
const M2M: LocalAuth0Client = {
  ...BFF,
  clientGrants: [{ audience: API, scopes: ['read:messages'] }],
};
const SPA: LocalAuth0Client = { clientId: 'spa', redirectUris: ['http://127.0.0.1:3002/callback'] };
/** Authorised for the API, but with the Client Credentials grant type turned off. */
const NO_GRANT_TYPE: LocalAuth0Client = { ...M2M, clientId: 'no-cc', grantTypes: ['authorization_code', 'refresh_token'] };

let auth0: LocalAuth0;
const grant = (params: Record<string, string>, client: LocalAuth0Client = M2M, auth: 'basic' | 'post' = 'post') =>
  postForm(auth0.issuer, '/oauth/token', { grant_type: 'client_credentials', ...params }, client, auth);

beforeAll(async () => {
  auth0 = await startLocalAuth0({
    clients: [M2M, SPA, NO_GRANT_TYPE],
    users: [ALICE],
    apis: [{ audience: API, scopes: ['read:messages', 'write:messages'] }, { audience: OTHER_API }],
    accessTokenTtl: 120,
  });
});
afterAll(() => auth0?.stop());
beforeEach(() => auth0.admin.reset());

describe('the client-credentials grant, as Auth0 answers it', () => {
  it('gives an application authorised for the API a JWT with the application as subject and the grant\'s permissions', async () => {
    const response = await grant({ audience: API });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ token_type: 'Bearer', expires_in: 120, scope: 'read:messages' });
    expect(response.body.refresh_token).toBeUndefined();
    expect(response.body.id_token).toBeUndefined();
    const jwks = createRemoteJWKSet(new URL('.well-known/jwks.json', auth0.issuer));
    const { payload } = await jwtVerify(response.body.access_token as string, jwks, { issuer: auth0.issuer, audience: API });
    expect(payload).toMatchObject({ sub: 'bff@clients', gty: 'client-credentials', azp: 'bff', scope: 'read:messages' });
    expect(payload.exp! - payload.iat!).toBe(120);
    expect(auth0.admin.tokens()).toContainEqual(expect.objectContaining({ kind: 'access_token', clientId: 'bff', sub: 'bff@clients', audience: API }));
  });

  it('authenticates the application with Basic as well as in the form', async () => {
    expect((await grant({ audience: API }, M2M, 'basic')).status).toBe(200);
  });

  it('refuses an API the application is not authorised for with 403 access_denied, naming the missing client grant', async () => {
    const response = await grant({ audience: OTHER_API });
    expect(response.status).toBe(403);
    expect(response.body.error).toBe('access_denied');
    expect(response.body.error_description).toBe(
      `Client is not authorized to access "${OTHER_API}". You need to create a "client-grant" associated to this API. See: https://auth0.com/docs/api/v2#!/Client_Grants/post_client_grants`,
    );
  });

  it('refuses a permission the client grant lacks with 403 access_denied', async () => {
    const response = await grant({ audience: API, scope: 'read:messages write:messages' });
    expect(response.status).toBe(403);
    expect(response.body).toEqual({ error: 'access_denied', error_description: 'Client has not been granted scopes: write:messages' });
  });

  it('refuses an unknown audience with 403 access_denied "Service not found"', async () => {
    const response = await grant({ audience: 'https://unknown.example.com' });
    expect(response.status).toBe(403);
    expect(response.body).toEqual({ error: 'access_denied', error_description: 'Service not found: https://unknown.example.com' });
  });

  it('refuses bad credentials with 401 access_denied, before looking at the API', async () => {
    const response = await grant({ audience: OTHER_API }, { ...M2M, clientSecret: 'wrong' });
    expect(response.status).toBe(401);
    expect(response.body).toEqual({ error: 'access_denied', error_description: 'Unauthorized' });
  });

  it.each([['a public application', SPA], ['an application with the grant type turned off', NO_GRANT_TYPE]])(
    'refuses %s with 403 unauthorized_client',
    async (_name, client) => {
      const response = await grant({ audience: API }, client);
      expect(response.status).toBe(403);
      expect(response.body).toEqual({ error: 'unauthorized_client', error_description: 'Grant type \'client_credentials\' not allowed for the client.' });
    },
  );

  it('turns the grant type on by default only for an application with a client grant', async () => {
    const other = await startLocalAuth0({ clients: [BFF], users: [ALICE], apis: [{ audience: API }] });
    try {
      const response = await postForm(other.issuer, '/oauth/token', { grant_type: 'client_credentials', audience: API }, BFF, 'post');
      expect(response.status).toBe(403);
      expect(response.body.error).toBe('unauthorized_client');
    } finally {
      await other.stop();
    }
  });

  it('counts the requests and obeys the token endpoint\'s failure modes', async () => {
    auth0.admin.resetCounts();
    auth0.admin.failTokenEndpoint({ status: 503 }, { times: 1 });
    expect((await grant({ audience: API })).status).toBe(503);
    expect((await grant({ audience: API })).status).toBe(200);
    expect(auth0.admin.counts().token.client_credentials).toEqual({ ok: 1, error: 1 });
  });
});

describe('client grant options', () => {
  it.each([
    [{ clientGrants: [{ audience: 'https://nowhere.example.com' }] }, '"clients[0].clientGrants[0].audience" must be the audience of one of "apis"'],
    [{ clientGrants: [{ audience: API, scopes: ['admin'] }] }, '"clients[0].clientGrants[0].scopes" must be an array of the API\'s scopes (read:messages)'],
    [{ clientGrants: {} }, '"clients[0].clientGrants" must be an array of { audience, scopes? }'],
  ])('are checked at start: %j', async (change, message) => {
    await expect(startLocalAuth0({ clients: [{ ...BFF, ...change } as LocalAuth0Client], users: [ALICE], apis: [{ audience: API, scopes: ['read:messages'] }] }))
      .rejects.toThrow(message);
  });

  it('refuse a client grant or the client-credentials grant type for a public application', async () => {
    await expect(startLocalAuth0({ clients: [{ ...SPA, clientGrants: [{ audience: API }] }], users: [ALICE], apis: [{ audience: API }] }))
      .rejects.toThrow('"clients[0].clientGrants" needs a confidential client');
    await expect(startLocalAuth0({ clients: [{ ...SPA, grantTypes: ['authorization_code', 'client_credentials'] }], users: [ALICE], apis: [{ audience: API }] }))
      .rejects.toThrow('"clients[0].grantTypes" may include "client_credentials" only for a confidential client');
  });
});
