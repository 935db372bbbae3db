import { randomUUID } from 'node:crypto';

import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  CookieJar,
  scriptedLogin,
  startLocalAuth0,
  type LocalAuth0,
  type LocalAuth0Client,
} from '../../src/local-auth0/index.js';
import { ALICE, API, BFF, authorizeUrl, claimsOf, exchangeCode, login, postForm } from './support.js';

let auth0: LocalAuth0;
let keyClient: LocalAuth0Client;
let clientKey: CryptoKey;

beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  clientKey = privateKey;
  keyClient = {
    clientId: 'key-client',
    redirectUris: ['http://127.0.0.1:3004/callback'],
    tokenEndpointAuthMethod: 'private_key_jwt',
    jwks: { keys: [{ ...(await exportJWK(publicKey)), alg: 'RS256', use: 'sig' }] },
  };
  auth0 = await startLocalAuth0({ clients: [BFF, keyClient], users: [ALICE], apis: [{ audience: API }] });
});
afterAll(() => auth0?.stop());

async function get(url: string, jar = new CookieJar()) {
  const response = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header(url) } });
  jar.setFrom(url, response);
  return { response, jar, location: response.headers.get('location') ?? '', html: await response.text() };
}

/** Follows redirects until the login form (or anything that is not a redirect). */
async function openLoginForm(url: string, jar = new CookieJar()) {
  let current = url;
  for (;;) {
    const result = await get(current, jar);
    if (!result.location) return { ...result, url: current };
    current = new URL(result.location, current).href;
  }
}

describe('discovery', () => {
  it('advertises the Auth0 endpoint paths and capabilities', async () => {
    const metadata = (await (await fetch(new URL('.well-known/openid-configuration', auth0.issuer))).json()) as Record<string, unknown>;
    const base = auth0.issuer.replace(/\/$/, '');
    expect(auth0.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(metadata).toMatchObject({
      issuer: auth0.issuer,
      authorization_endpoint: `${base}/authorize`,
      token_endpoint: `${base}/oauth/token`,
      revocation_endpoint: `${base}/oauth/revoke`,
      end_session_endpoint: `${base}/oidc/logout`,
      userinfo_endpoint: `${base}/userinfo`,
      jwks_uri: `${base}/.well-known/jwks.json`,
      backchannel_logout_supported: true,
      backchannel_logout_session_supported: true,
      code_challenge_methods_supported: ['S256'],
    });
    expect(metadata.token_endpoint_auth_methods_supported).toEqual(
      expect.arrayContaining(['client_secret_basic', 'client_secret_post', 'private_key_jwt']),
    );
    expect(metadata.scopes_supported).toEqual(expect.arrayContaining(['online_access', 'offline_access']));
  });

  it('publishes one RS256 signing key at /.well-known/jwks.json', async () => {
    const jwks = (await (await fetch(new URL('.well-known/jwks.json', auth0.issuer))).json()) as { keys: Array<Record<string, unknown>> };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig', kid: expect.any(String) });
    expect(jwks.keys[0]).not.toHaveProperty('d');
  });
});

describe('the login page', () => {
  it('shows a username and password form, prefilled from login_hint', async () => {
    const { url } = authorizeUrl(auth0.issuer, BFF, { login_hint: 'alice', screen_hint: 'login', organization: 'org_1' });
    const page = await openLoginForm(url);
    expect(page.response.status).toBe(200);
    expect(page.response.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.html).toMatch(/<input id="username" name="username"[^>]*value="alice"/);
    expect(page.html).toMatch(/<input id="password" name="password" type="password"/);
  });

  it('shows the form again with an error after a wrong password', async () => {
    const { url } = authorizeUrl(auth0.issuer, BFF);
    const page = await openLoginForm(url);
    const action = new URL(/action="([^"]+)"/.exec(page.html)![1]!, page.url).href;
    const response = await fetch(action, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: page.jar.header(action), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: 'alice', password: 'wrong' }),
    });
    const html = await response.text();
    expect(response.status).toBe(401);
    expect(html).toContain('Wrong username or password.');
    expect(html).toMatch(/value="alice"/);
  });

  it('makes scriptedLogin fail with a clear message, without the password, for wrong credentials', async () => {
    const { url } = authorizeUrl(auth0.issuer, BFF);
    const failure = scriptedLogin(url, { username: 'alice', password: 'not-her-password' });
    await expect(failure).rejects.toThrow(/refused the credentials of "alice"/);
    await expect(failure).rejects.not.toThrow(/not-her-password/);
  });

  it('logs in without asking for consent and redirects with a code and the state', async () => {
    const result = await login(auth0.issuer);
    expect(result.callbackUrl.origin + result.callbackUrl.pathname).toBe(BFF.redirectUris[0]);
    expect(result.callbackUrl.searchParams.get('code')).toBeTruthy();
    expect(result.callbackUrl.searchParams.get('state')).toBeTruthy();
  });

  it('signs in again without the form while the Auth0 session lives (SSO)', async () => {
    const first = await login(auth0.issuer);
    const { url } = authorizeUrl(auth0.issuer, BFF);
    const again = await scriptedLogin(url, ALICE, { jar: first.jar, stopAt: BFF.redirectUris[0]! });
    expect(again.loginFormShown).toBe(false);
    expect(new URL(again.callbackUrl).searchParams.get('code')).toBeTruthy();
  });
});

describe('/authorize errors', () => {
  it('answers prompt=none without a session with login_required at the redirect_uri', async () => {
    const { url } = authorizeUrl(auth0.issuer, BFF, { prompt: 'none' });
    const { response, location } = await get(url);
    expect(response.status).toBeGreaterThanOrEqual(302);
    const callback = new URL(location);
    expect(callback.origin + callback.pathname).toBe(BFF.redirectUris[0]);
    expect(callback.searchParams.get('error')).toBe('login_required');
  });

  it('answers prompt=none with a code when the session lives', async () => {
    const first = await login(auth0.issuer);
    const { url } = authorizeUrl(auth0.issuer, BFF, { prompt: 'none' });
    const { location } = await get(url, first.jar);
    expect(new URL(location).searchParams.get('code')).toBeTruthy();
  });

  it('requires PKCE and refuses the plain method', async () => {
    const without = authorizeUrl(auth0.issuer, BFF);
    const noPkce = new URL(without.url);
    noPkce.searchParams.delete('code_challenge');
    noPkce.searchParams.delete('code_challenge_method');
    expect(new URL((await get(noPkce.href)).location).searchParams.get('error')).toBe('invalid_request');

    const plain = new URL(without.url);
    plain.searchParams.set('code_challenge', 'a'.repeat(43));
    plain.searchParams.set('code_challenge_method', 'plain');
    expect(new URL((await get(plain.href)).location).searchParams.get('error')).toBe('invalid_request');
  });

  it('refuses an audience it does not know, like Auth0 ("Service not found")', async () => {
    const { url } = authorizeUrl(auth0.issuer, BFF, { audience: 'https://unknown.example.com' });
    const callback = new URL((await get(url)).location);
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(callback.searchParams.get('error_description')).toBe('Service not found: https://unknown.example.com');
  });

  it('refuses online_access together with offline_access with the Auth0 message', async () => {
    const { url } = authorizeUrl(auth0.issuer, BFF, { scope: 'openid online_access offline_access' });
    const callback = new URL((await get(url)).location);
    expect(callback.searchParams.get('error')).toBe('invalid_request');
    expect(callback.searchParams.get('error_description')).toBe('Cannot request both online_access and offline_access scopes');
  });
});

describe('client authentication at /oauth/token', () => {
  it('accepts client_secret_post as well as client_secret_basic', async () => {
    const result = await login(auth0.issuer);
    const response = await postForm(
      auth0.issuer,
      '/oauth/token',
      { grant_type: 'authorization_code', code: result.code, redirect_uri: BFF.redirectUris[0]!, code_verifier: result.verifier },
      BFF,
      'post',
    );
    expect(response.status).toBe(200);
  });

  it('accepts private_key_jwt with the tenant URL as audience', async () => {
    const result = await login(auth0.issuer, { client: keyClient });
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer(keyClient.clientId)
      .setSubject(keyClient.clientId)
      .setAudience(auth0.issuer)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(clientKey);
    const response = await fetch(new URL('oauth/token', auth0.issuer), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: result.code,
        redirect_uri: keyClient.redirectUris[0]!,
        code_verifier: result.verifier,
        client_id: keyClient.clientId,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      }),
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { refresh_token: string }).refresh_token).toMatch(/^ORT/);
  });

  it('answers a wrong client secret with 401 access_denied "Unauthorized", like Auth0', async () => {
    const result = await login(auth0.issuer);
    const response = await exchangeCode(auth0.issuer, { ...result, client: { ...BFF, clientSecret: 'wrong' } });
    expect(response.status).toBe(401);
    expect(response.body).toEqual({ error: 'access_denied', error_description: 'Unauthorized' });
  });

  it('refuses a code exchange with the wrong code_verifier with 403 invalid_grant', async () => {
    const result = await login(auth0.issuer);
    const response = await exchangeCode(auth0.issuer, { ...result, verifier: 'x'.repeat(43) });
    expect(response.status).toBe(403);
    expect(response.body.error).toBe('invalid_grant');
  });
});

describe('openid-client 6 against the emulator', () => {
  it('discovers, logs in with PKCE, and exchanges the ORT', async () => {
    const config = await client.discovery(new URL(auth0.issuer), BFF.clientId, BFF.clientSecret, undefined, {
      execute: [client.allowInsecureRequests],
    });
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: BFF.redirectUris[0]!,
      scope: 'openid profile email online_access',
      audience: API,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    const { callbackUrl } = await scriptedLogin(url.href, ALICE, { stopAt: BFF.redirectUris[0]! });
    const tokens = await client.authorizationCodeGrant(config, new URL(callbackUrl), {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
    });
    expect(tokens.refresh_token).toMatch(/^ORT/);
    expect(tokens.claims()?.email).toBe('alice@example.com');

    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.refresh_token).toBeUndefined();
    expect(claimsOf(refreshed.access_token).aud).toBe(API);
    expect(refreshed.claims()?.sid).toBe(tokens.claims()?.sid);
  });
});
