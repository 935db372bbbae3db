import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { scriptedLogin, startLocalAuth0, type LocalAuth0, type LocalAuth0Client } from '../../src/local-auth0/index.js';
import {
  ALICE,
  BFF,
  authorizeUrl,
  claimsOf,
  exchangeCode,
  login,
  loginForTokens,
  postForm,
  refresh,
  startLogoutReceiver,
} from './support.js';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';

let receiver: Awaited<ReturnType<typeof startLogoutReceiver>>;
let auth0: LocalAuth0;
let appA: LocalAuth0Client;
let appB: LocalAuth0Client;

beforeAll(async () => {
  receiver = await startLogoutReceiver();
  appA = { ...BFF, backchannelLogoutUri: `${receiver.url}/a/backchannel-logout` };
  appB = {
    clientId: 'app-b',
    clientSecret: 'app-b-secret',
    redirectUris: ['http://127.0.0.1:3003/callback'],
    backchannelLogoutUri: `${receiver.url}/b/backchannel-logout`,
  };
  auth0 = await startLocalAuth0({
    clients: [appA, appB],
    users: [ALICE],
    apis: [{ audience: 'https://api.example.com' }],
  });
});
afterAll(async () => {
  await auth0?.stop();
  await receiver?.close();
});
beforeEach(() => {
  receiver.received.length = 0;
  auth0.admin.resetCounts();
});

/** Alice logged in to both applications in one browser: one Auth0 session, two ORTs. */
async function loginToBothApps() {
  const a = await loginForTokens(auth0.issuer, { client: appA });
  const bLogin = await login(auth0.issuer, { client: appB, jar: a.jar });
  const b = await exchangeCode(auth0.issuer, bLogin);
  const sid = claimsOf(a.tokens.id_token).sid as string;
  return { jar: a.jar, sid, ortA: a.tokens.refresh_token!, ortB: b.body.refresh_token as string, idTokenA: a.tokens.id_token };
}

async function showsLoginForm(jar: Awaited<ReturnType<typeof loginToBothApps>>['jar']): Promise<boolean> {
  const { url } = authorizeUrl(auth0.issuer, appA);
  return (await scriptedLogin(url, ALICE, { jar, stopAt: appA.redirectUris[0]! })).loginFormShown;
}

async function verifyLogoutToken(token: string) {
  const jwks = createRemoteJWKSet(new URL('.well-known/jwks.json', auth0.issuer));
  return jwtVerify(token, jwks, { issuer: auth0.issuer });
}

describe('revoking an ORT', () => {
  it('answers 200 with an empty body and ends the whole Auth0 session', async () => {
    const { jar, sid, ortA, ortB } = await loginToBothApps();

    const revoked = await postForm(auth0.issuer, '/oauth/revoke', { token: ortA }, appA);
    expect(revoked.status).toBe(200);
    expect(revoked.text).toBe('');

    expect((await refresh(auth0.issuer, ortA, appA)).status).toBe(403);
    expect((await refresh(auth0.issuer, ortB, appB)).body).toEqual({
      error: 'invalid_grant',
      error_description: 'Unknown or invalid refresh token.',
    });
    expect(auth0.admin.sessions().find((s) => s.sid === sid)).toBeUndefined();
    expect(await showsLoginForm(jar)).toBe(true);
    expect(auth0.admin.counts().revocations).toBe(1);
  });

  it('sends a back-channel logout token, Auth0-shaped, to every application of the session', async () => {
    const { sid, ortA } = await loginToBothApps();
    await postForm(auth0.issuer, '/oauth/revoke', { token: ortA }, appA);

    expect(receiver.received.map((r) => r.path).sort()).toEqual(['/a/backchannel-logout', '/b/backchannel-logout']);
    for (const { path, logoutToken } of receiver.received) {
      const { payload, protectedHeader } = await verifyLogoutToken(logoutToken);
      expect(protectedHeader).toMatchObject({ alg: 'RS256', typ: 'JWT', kid: expect.any(String) });
      expect(payload).toMatchObject({
        iss: auth0.issuer,
        aud: path.startsWith('/a/') ? 'bff' : 'app-b',
        sub: 'auth0|alice',
        sid,
        events: { [EVENT]: {} },
        jti: expect.any(String),
      });
      expect(payload.exp! - payload.iat!).toBe(120);
      expect(payload).not.toHaveProperty('nonce');
    }
    expect(auth0.admin.counts().backchannelSent).toBe(2);
    expect(auth0.admin.backchannelDeliveries().filter((d) => d.sid === sid)).toEqual(
      expect.arrayContaining([
        { clientId: 'bff', uri: appA.backchannelLogoutUri, status: 200, sid },
        { clientId: 'app-b', uri: appB.backchannelLogoutUri, status: 200, sid },
      ]),
    );
  });
});

describe('RP-initiated logout at /oidc/logout', () => {
  it('ends the session at once and redirects to the registered post_logout_redirect_uri with the state', async () => {
    const { jar, sid, ortA, ortB, idTokenA } = await loginToBothApps();
    const url = new URL('oidc/logout', auth0.issuer);
    url.search = new URLSearchParams({
      id_token_hint: idTokenA,
      logout_hint: sid,
      client_id: 'bff',
      post_logout_redirect_uri: 'http://127.0.0.1:3000/',
      state: 'bye',
    }).toString();

    const response = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header(url) } });
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('http://127.0.0.1:3000/?state=bye');
    expect((await refresh(auth0.issuer, ortA, appA)).status).toBe(403);
    expect((await refresh(auth0.issuer, ortB, appB)).status).toBe(403);
    expect(await showsLoginForm(jar)).toBe(true);
    expect(receiver.received).toHaveLength(2);
    expect(auth0.admin.counts().endSession).toBe(1);
  });

  it('ends the session named by logout_hint even without the browser cookie', async () => {
    const { sid, ortA } = await loginToBothApps();
    const url = new URL('oidc/logout', auth0.issuer);
    url.search = new URLSearchParams({ logout_hint: sid, client_id: 'bff' }).toString();
    const response = await fetch(url, { redirect: 'manual' });
    expect(response.status).toBe(200);
    expect((await refresh(auth0.issuer, ortA, appA)).status).toBe(403);
  });

  it('refuses a post_logout_redirect_uri that is not registered, and keeps the session', async () => {
    const { jar, ortA } = await loginToBothApps();
    const url = new URL('oidc/logout', auth0.issuer);
    url.search = new URLSearchParams({ client_id: 'bff', post_logout_redirect_uri: 'https://evil.example/' }).toString();
    const response = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header(url) } });
    expect(response.status).toBe(400);
    expect(await response.text()).toContain('post_logout_redirect_uri');
    expect((await refresh(auth0.issuer, ortA, appA)).status).toBe(200);
  });

  it('refuses a forged id_token_hint', async () => {
    const { idTokenA } = await loginToBothApps();
    const [header, payload] = idTokenA.split('.');
    const url = new URL('oidc/logout', auth0.issuer);
    url.searchParams.set('id_token_hint', `${header}.${payload}.AAAA`);
    const response = await fetch(url, { redirect: 'manual' });
    expect(response.status).toBe(400);
  });
});

describe('ending sessions with the admin handle', () => {
  it('ends a session without back-channel logout by default', async () => {
    const { sid, ortA } = await loginToBothApps();
    expect(await auth0.admin.endSession({ sid })).toBe(1);
    expect((await refresh(auth0.issuer, ortA, appA)).status).toBe(403);
    expect(receiver.received).toHaveLength(0);
  });

  it('ends every session of a user, with back-channel logout when asked, and awaits the deliveries', async () => {
    await auth0.admin.endSession({ sub: 'auth0|alice' });
    const first = await loginToBothApps();
    const second = await loginToBothApps();
    expect(await auth0.admin.endSession({ sub: 'auth0|alice' }, { backchannel: true })).toBe(2);
    expect(receiver.received).toHaveLength(4);
    const sids = await Promise.all(receiver.received.map(async (r) => (await verifyLogoutToken(r.logoutToken)).payload.sid));
    expect(new Set(sids)).toEqual(new Set([first.sid, second.sid]));
  });

  it('signs arbitrary JWTs with the tenant key, for tests of odd logout tokens', async () => {
    const token = await auth0.admin.sign({ iss: auth0.issuer, aud: 'bff', sub: 'auth0|alice' }, { typ: 'logout+jwt' });
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'RS256', typ: 'logout+jwt' });
    expect((await verifyLogoutToken(token)).payload).toMatchObject({ aud: 'bff', sub: 'auth0|alice' });
  });
});
