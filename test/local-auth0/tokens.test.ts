import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startLocalAuth0, type LocalAuth0, type LocalAuth0Client } from '../../src/local-auth0/index.js';
import { ALICE, API, BFF, claimsOf, loginForTokens, postForm, refresh } from './support.js';

const ONLINE_ONLY_API = 'https://online-only.example.com';
const NO_REFRESH_API = 'urn:no-refresh-api';
const ROTATING: LocalAuth0Client = {
  clientId: 'rotating',
  clientSecret: 'rotating-secret',
  redirectUris: ['http://127.0.0.1:3001/callback'],
  refreshTokenRotation: true,
};

/** An application whose refresh token policy lets an exchange ask for ONLINE_ONLY_API only (Auth0's MRRT). */
const POLICY: LocalAuth0Client = {
  clientId: 'policy',
  clientSecret: 'policy-secret',
  redirectUris: ['http://127.0.0.1:3002/callback'],
  refreshTokenPolicies: [{ audience: ONLINE_ONLY_API }],
};
const THIRD_API = 'https://third.example.com';

let auth0: LocalAuth0;

beforeAll(async () => {
  auth0 = await startLocalAuth0({
    clients: [BFF, ROTATING, POLICY],
    users: [{ ...ALICE, 'https://example.com/roles': ['admin'] }],
    apis: [
      { audience: API, scopes: ['read:messages'] },
      { audience: ONLINE_ONLY_API, allowOfflineAccess: false },
      { audience: NO_REFRESH_API, allowOnlineAccess: false, allowOfflineAccess: false },
      { audience: THIRD_API },
    ],
    accessTokenTtl: 30,
  });
});
afterAll(() => auth0?.stop());

describe('access tokens for an audience', () => {
  it('are RS256 JWTs for that API, verifiable with the published JWKS', async () => {
    const { tokens } = await loginForTokens(auth0.issuer, { params: { scope: 'openid profile email online_access read:messages' } });
    const jwks = createRemoteJWKSet(new URL('.well-known/jwks.json', auth0.issuer));
    const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks, { issuer: auth0.issuer, audience: API });

    expect(protectedHeader).toMatchObject({ alg: 'RS256', typ: 'at+jwt', kid: expect.any(String) });
    expect(payload).toMatchObject({ sub: 'auth0|alice', client_id: 'bff', azp: 'bff' });
    expect(String(payload.scope).split(' ')).toEqual(expect.arrayContaining(['openid', 'online_access', 'read:messages']));
    expect(payload.exp! - payload.iat!).toBe(30);
    expect(tokens.expires_in).toBe(30);
  });

  it('come with an ID token carrying the profile claims, custom claims and the session sid', async () => {
    const { tokens } = await loginForTokens(auth0.issuer);
    const claims = claimsOf(tokens.id_token);
    expect(claims).toMatchObject({
      iss: auth0.issuer,
      aud: 'bff',
      sub: 'auth0|alice',
      email: 'alice@example.com',
      name: 'Alice',
      'https://example.com/roles': ['admin'],
    });
    expect(claims.sid).toEqual(expect.any(String));
    expect(auth0.admin.sessions().map((session) => session.sid)).toContain(claims.sid);
  });
});

describe('Online Refresh Tokens (online_access)', () => {
  it('start with ORT', async () => {
    const { tokens } = await loginForTokens(auth0.issuer);
    expect(tokens.refresh_token).toMatch(/^ORT./);
  });

  it('are exchanged without a new refresh token, keep working, and bring an ID token with the same sid', async () => {
    const { tokens } = await loginForTokens(auth0.issuer);
    const ort = tokens.refresh_token!;
    const sid = claimsOf(tokens.id_token).sid;

    for (let i = 0; i < 3; i += 1) {
      const response = await refresh(auth0.issuer, ort);
      expect(response.status).toBe(200);
      expect(response.body).not.toHaveProperty('refresh_token');
      expect(response.body).toMatchObject({ token_type: 'Bearer', expires_in: 30 });
      expect(claimsOf(response.body.access_token as string).aud).toBe(API);
      expect(claimsOf(response.body.id_token as string).sid).toBe(sid);
    }
  });

  it('are not issued for an API that does not allow online access', async () => {
    const { tokens } = await loginForTokens(auth0.issuer, { params: { audience: NO_REFRESH_API } });
    expect(tokens.access_token).toBeTruthy();
    expect(tokens).not.toHaveProperty('refresh_token');
  });

  it('are listed by the admin handle as online, bound to the session, without their value', async () => {
    const { tokens } = await loginForTokens(auth0.issuer);
    const sid = claimsOf(tokens.id_token).sid;
    const listed = auth0.admin.tokens().filter((token) => token.kind === 'refresh_token' && token.sid === sid);
    expect(listed).toEqual([
      { kind: 'refresh_token', clientId: 'bff', sub: 'auth0|alice', sid, audience: API, online: true, expiresAt: expect.any(Number) },
    ]);
    expect(JSON.stringify(auth0.admin.tokens())).not.toContain(tokens.refresh_token);
    expect(JSON.stringify(auth0.admin.tokens())).not.toContain(tokens.access_token);
  });
});

describe('classic refresh tokens (offline_access)', () => {
  const offline = { scope: 'openid profile offline_access' };

  it('are issued without the ORT prefix, and without rotation the refresh answer has no refresh_token', async () => {
    const { tokens } = await loginForTokens(auth0.issuer, { params: offline });
    expect(tokens.refresh_token).toBeTruthy();
    expect(tokens.refresh_token).not.toMatch(/^ORT/);

    const first = await refresh(auth0.issuer, tokens.refresh_token!);
    const second = await refresh(auth0.issuer, tokens.refresh_token!);
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(first.body).not.toHaveProperty('refresh_token');
  });

  it('rotate for an application with rotation, and a reused old one is refused', async () => {
    const { tokens } = await loginForTokens(auth0.issuer, { client: ROTATING, params: offline });
    const rotated = await refresh(auth0.issuer, tokens.refresh_token!, ROTATING);
    expect(rotated.status).toBe(200);
    expect(rotated.body.refresh_token).toEqual(expect.any(String));
    expect(rotated.body.refresh_token).not.toBe(tokens.refresh_token);

    const reused = await refresh(auth0.issuer, tokens.refresh_token!, ROTATING);
    expect(reused.status).toBe(403);
    expect(reused.body.error).toBe('invalid_grant');
  });

  it('are not issued for an API that does not allow offline access', async () => {
    const { tokens } = await loginForTokens(auth0.issuer, { params: { ...offline, audience: ONLINE_ONLY_API } });
    expect(tokens).not.toHaveProperty('refresh_token');
  });

  it('outlive the Auth0 session, unlike ORTs', async () => {
    const { tokens } = await loginForTokens(auth0.issuer, { params: offline });
    const sid = claimsOf(tokens.id_token).sid as string;
    expect(await auth0.admin.endSession({ sid })).toBe(1);
    expect((await refresh(auth0.issuer, tokens.refresh_token!)).status).toBe(200);
  });
});

describe('unusable refresh tokens', () => {
  it('are answered 403 with exactly Auth0 body, for unknown ones too', async () => {
    const response = await refresh(auth0.issuer, 'ORTnot-a-real-token');
    expect(response.status).toBe(403);
    expect(response.headers.get('content-type')).toMatch(/application\/json/);
    expect(JSON.parse(response.text)).toEqual({ error: 'invalid_grant', error_description: 'Unknown or invalid refresh token.' });
  });

  it('are refused to another application', async () => {
    const { tokens } = await loginForTokens(auth0.issuer);
    const response = await refresh(auth0.issuer, tokens.refresh_token!, ROTATING);
    expect(response.status).toBe(403);
    expect(response.body.error).toBe('invalid_grant');
  });
});

describe('the userinfo endpoint', () => {
  it('answers for an access token without audience', async () => {
    const { tokens } = await loginForTokens(auth0.issuer, { params: { audience: '' } });
    expect(() => decodeProtectedHeader(tokens.access_token)).toThrow();
    const response = await fetch(new URL('userinfo', auth0.issuer), { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ sub: 'auth0|alice', email: 'alice@example.com' });
  });
});

describe('revocation of a classic refresh token', () => {
  it('revokes only that token: the session and its ORTs live on', async () => {
    const online = await loginForTokens(auth0.issuer);
    const classic = await loginForTokens(auth0.issuer, { params: { scope: 'openid offline_access' } });

    const revoked = await postForm(auth0.issuer, '/oauth/revoke', { token: classic.tokens.refresh_token! });
    expect(revoked.status).toBe(200);
    expect(revoked.text).toBe('');
    expect((await refresh(auth0.issuer, classic.tokens.refresh_token!)).status).toBe(403);
    expect((await refresh(auth0.issuer, online.tokens.refresh_token!)).status).toBe(200);
    expect(auth0.admin.sessions().map((s) => s.sid)).toContain(claimsOf(classic.tokens.id_token).sid);
  });
});

describe('refresh token policies (Multi-Resource Refresh Token)', () => {
  it('give an exchange the token of an API the policy lists', async () => {
    const { tokens } = await loginForTokens(auth0.issuer, { client: POLICY });
    const response = await postForm(auth0.issuer, '/oauth/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, audience: ONLINE_ONLY_API }, POLICY);
    expect(response.status).toBe(200);
    expect(claimsOf(response.body.access_token as string).aud).toBe(ONLINE_ONLY_API);
  });

  it('answer an exchange for an API the policy does not list as Auth0 does: no error, a token for the login\'s API', async () => {
    const { tokens } = await loginForTokens(auth0.issuer, { client: POLICY });
    for (const auth of ['basic', 'post'] as const) {
      const response = await postForm(auth0.issuer, '/oauth/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, audience: THIRD_API }, POLICY, auth);
      expect(response.status).toBe(200);
      expect(claimsOf(response.body.access_token as string).aud).toBe(API);
    }
  });

  it('are not needed: without one, an exchange may ask for any API that allows online access', async () => {
    const { tokens } = await loginForTokens(auth0.issuer);
    const response = await postForm(auth0.issuer, '/oauth/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, audience: THIRD_API });
    expect(claimsOf(response.body.access_token as string).aud).toBe(THIRD_API);
  });

  it('are checked at startup', async () => {
    await expect(startLocalAuth0({ clients: [{ ...POLICY, refreshTokenPolicies: [{ audience: '' }] }], users: [] })).rejects.toThrow('"clients[0].refreshTokenPolicies"');
  });
});

describe('session_expiry (an enterprise identity provider\'s session end)', () => {
  it('is a claim of the user\'s ID tokens, and ends the emulated Auth0 session then', async () => {
    const sessionExpiry = Math.floor(Date.now() / 1000) + 3600;
    const tenant = await startLocalAuth0({ clients: [BFF], users: [{ ...ALICE, session_expiry: sessionExpiry }], apis: [{ audience: API }] });
    try {
      const { tokens } = await loginForTokens(tenant.issuer);
      expect(claimsOf(tokens.id_token).session_expiry).toBe(sessionExpiry);
      const refreshed = await refresh(tenant.issuer, tokens.refresh_token!);
      expect(claimsOf(refreshed.body.id_token as string).session_expiry).toBe(sessionExpiry);
      expect(tenant.admin.sessions()[0]?.expiresAt).toBe(sessionExpiry);
    } finally {
      await tenant.stop();
    }
  });

  it('moves when the admin says so: the next ID token carries the new end, and it caps the live session', async () => {
    const tenant = await startLocalAuth0({ clients: [BFF], users: [ALICE], apis: [{ audience: API }] });
    try {
      const { tokens } = await loginForTokens(tenant.issuer);
      expect(claimsOf(tokens.id_token)).not.toHaveProperty('session_expiry');
      const earlier = Math.floor(Date.now() / 1000) + 600;
      tenant.admin.setSessionExpiry('auth0|alice', earlier);
      const refreshed = await refresh(tenant.issuer, tokens.refresh_token!);
      expect(claimsOf(refreshed.body.id_token as string).session_expiry).toBe(earlier);
      expect(tenant.admin.sessions()[0]?.expiresAt).toBe(earlier);
      tenant.admin.setSessionExpiry('auth0|alice', undefined);
      expect(claimsOf((await refresh(tenant.issuer, tokens.refresh_token!)).body.id_token as string)).not.toHaveProperty('session_expiry');
      expect(() => tenant.admin.setSessionExpiry('auth0|alice', Number.NaN)).toThrow(TypeError);
    } finally {
      await tenant.stop();
    }
  });
});
