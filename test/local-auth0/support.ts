/**
 * Helpers for the local Auth0 emulator's tests: an application's side of the Authorization Code flow with
 * PKCE, spoken over real HTTP with plain fetch so that every status, header and body can be asserted.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { CookieJar, scriptedLogin, type LocalAuth0Client } from '../../src/local-auth0/index.js';

export const API = 'https://api.example.com';

/** A confidential application (a BFF). */
export const BFF: LocalAuth0Client & { clientSecret: string } = {
  clientId: 'bff',
  clientSecret: 'bff-secret',
  redirectUris: ['http://127.0.0.1:3000/auth/callback'],
  postLogoutRedirectUris: ['http://127.0.0.1:3000/'],
};

export const ALICE = { username: 'alice', password: 'alice-pw', email: 'alice@example.com', name: 'Alice' };
export const BOB = { username: 'bob', password: 'bob-pw', email: 'bob@example.com', name: 'Bob' };

/** What an application keeps between /authorize and the code exchange. */
export interface LoginResult {
  code: string;
  callbackUrl: URL;
  jar: CookieJar;
  verifier: string;
  client: LocalAuth0Client;
}

export function base64url(bytes: Buffer): string {
  return bytes.toString('base64url');
}

/** The /authorize URL with PKCE S256, `state` and `nonce`. */
export function authorizeUrl(
  issuer: string,
  client: LocalAuth0Client,
  params: Record<string, string> = {},
): { url: string; verifier: string } {
  const verifier = base64url(randomBytes(32));
  const url = new URL('authorize', issuer);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: client.clientId,
    redirect_uri: client.redirectUris[0]!,
    scope: 'openid profile email online_access',
    audience: API,
    state: base64url(randomBytes(8)),
    nonce: base64url(randomBytes(8)),
    code_challenge: base64url(createHash('sha256').update(verifier).digest()),
    code_challenge_method: 'S256',
    ...params,
  }).toString();
  return { url: url.href, verifier };
}

/** Logs in through the login form (or SSO, when `jar` holds a live session) and returns the code. */
export async function login(
  issuer: string,
  options: { client?: LocalAuth0Client; user?: { username: string; password: string }; jar?: CookieJar; params?: Record<string, string> } = {},
): Promise<LoginResult> {
  const client = options.client ?? BFF;
  const { url, verifier } = authorizeUrl(issuer, client, options.params);
  const { callbackUrl, jar } = await scriptedLogin(url, options.user ?? ALICE, {
    stopAt: client.redirectUris[0]!,
    jar: options.jar ?? new CookieJar(),
  });
  const callback = new URL(callbackUrl);
  const code = callback.searchParams.get('code');
  if (!code) throw new Error(`no code in ${callbackUrl}`);
  return { code, callbackUrl: callback, jar, verifier, client };
}

/** A form POST to the emulator, authenticated with client_secret_basic (or post, or as given). */
export async function postForm(
  issuer: string,
  path: string,
  params: Record<string, string>,
  client: LocalAuth0Client = BFF,
  auth: 'basic' | 'post' = 'basic',
  extraHeaders: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: Record<string, unknown>; text: string }> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', ...extraHeaders };
  const form = new URLSearchParams(params);
  if (client.clientSecret && auth === 'basic') {
    const credentials = `${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`;
    headers.authorization = `Basic ${Buffer.from(credentials).toString('base64')}`;
  } else {
    form.set('client_id', client.clientId);
    if (client.clientSecret) form.set('client_secret', client.clientSecret);
  }
  const response = await fetch(new URL(path.replace(/^\//, ''), issuer), { method: 'POST', headers, body: form });
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = {};
  }
  return { status: response.status, headers: response.headers, body, text };
}

/** Exchanges the code of `login` at /oauth/token. */
export function exchangeCode(issuer: string, result: LoginResult) {
  return postForm(
    issuer,
    '/oauth/token',
    {
      grant_type: 'authorization_code',
      code: result.code,
      redirect_uri: result.client.redirectUris[0]!,
      code_verifier: result.verifier,
    },
    result.client,
  );
}

/** Exchanges a refresh token at /oauth/token. */
export function refresh(issuer: string, refreshToken: string, client: LocalAuth0Client = BFF) {
  return postForm(issuer, '/oauth/token', { grant_type: 'refresh_token', refresh_token: refreshToken }, client);
}

/** Logs in and exchanges the code; returns the token response body (asserting a 200). */
export async function loginForTokens(issuer: string, options: Parameters<typeof login>[1] = {}) {
  const result = await login(issuer, options);
  const response = await exchangeCode(issuer, result);
  if (response.status !== 200) throw new Error(`code exchange failed: ${response.status} ${response.text}`);
  return { ...result, tokens: response.body as { access_token: string; id_token: string; refresh_token?: string; scope?: string; expires_in: number } };
}

/** The payload of a JWT, unverified (tests verify with jose where the signature matters). */
export function claimsOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** A loopback HTTP server that records the back-channel logout POSTs it receives. */
export async function startLogoutReceiver(): Promise<{ url: string; received: Array<{ path: string; logoutToken: string }>; close(): Promise<void> }> {
  const received: Array<{ path: string; logoutToken: string }> = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      received.push({ path: req.url ?? '', logoutToken: form.get('logout_token') ?? '' });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A clock that tests move forward by hand. */
export function manualClock(start = Date.now()): { now: () => number; advance(seconds: number): void } {
  let current = start;
  return {
    now: () => current,
    advance(seconds: number) {
      current += seconds * 1000;
    },
  };
}
