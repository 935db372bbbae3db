import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CookieJar, scriptedLogin, startLocalAuth0, type LocalAuth0 } from '../../src/local-auth0/index.js';
import { ALICE, BFF, authorizeUrl } from './support.js';

function responseWithCookies(...cookies: string[]): Response {
  const headers = new Headers();
  for (const cookie of cookies) headers.append('set-cookie', cookie);
  return new Response(null, { headers });
}

describe('CookieJar', () => {
  it('sends a cookie only under its Path, like a browser', () => {
    const jar = new CookieJar();
    jar.setFrom('http://127.0.0.1:4000/interaction/abc', responseWithCookies('a=1; Path=/interaction/abc; HttpOnly', 'b=2; Path=/'));
    expect(jar.header('http://127.0.0.1:4000/interaction/abc/login')).toBe('a=1; b=2');
    expect(jar.header('http://127.0.0.1:4000/interaction/abcdef')).toBe('b=2');
    expect(jar.header('http://127.0.0.1:4000/authorize')).toBe('b=2');
  });

  it('defaults the Path to the directory of the request, and keeps hosts apart', () => {
    const jar = new CookieJar();
    jar.set('http://127.0.0.1:4000/auth/login', 'c=3');
    expect(jar.header('http://127.0.0.1:4000/auth/callback')).toBe('c=3');
    expect(jar.header('http://127.0.0.1:4000/api')).toBe('');
    expect(jar.header('http://localhost:4000/auth/callback')).toBe('');
    expect(jar.get('http://127.0.0.1:4000/auth/x', 'c')).toBe('3');
  });

  it('replaces a cookie of the same name and path, and forgets an expired one', () => {
    const jar = new CookieJar();
    jar.set('http://h/', 'd=1; Path=/');
    jar.set('http://h/', 'd=2; Path=/');
    expect(jar.header('http://h/')).toBe('d=2');
    jar.set('http://h/', 'd=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT');
    expect(jar.header('http://h/')).toBe('');
    jar.set('http://h/', 'e=1; Path=/; Max-Age=0');
    expect(jar.header('http://h/')).toBe('');
  });
});

describe('scriptedLogin through an application', () => {
  let auth0: LocalAuth0;
  let app: Server;
  let appUrl: string;
  const seenCookies: string[] = [];

  beforeAll(async () => {
    app = createServer((req, res) => {
      // A stand-in BFF: /auth/login sets its own cookie and redirects to the emulator's /authorize.
      seenCookies.push(req.headers.cookie ?? '');
      const { url } = authorizeUrl(auth0.issuer, { ...BFF, redirectUris: [`${appUrl}/auth/callback`] });
      res.writeHead(302, { location: url, 'set-cookie': 'app_session=s1; Path=/; HttpOnly' }).end();
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
    auth0 = await startLocalAuth0({
      clients: [{ ...BFF, redirectUris: [`${appUrl}/auth/callback`] }],
      users: [ALICE],
      apis: [{ audience: 'https://api.example.com' }],
    });
  });
  afterAll(async () => {
    await auth0?.stop();
    app?.closeAllConnections();
    await new Promise((resolve) => app?.close(resolve));
  });

  it('follows the redirects, logs in, and stops at the callback with the application cookie kept', async () => {
    const result = await scriptedLogin(`${appUrl}/auth/login`, ALICE, {
      stopAt: `${appUrl}/auth/callback`,
      cookieHeader: 'existing=yes',
    });
    expect(result.callbackUrl.startsWith(`${appUrl}/auth/callback?code=`)).toBe(true);
    expect(result.loginFormShown).toBe(true);
    expect(seenCookies.at(-1)).toBe('existing=yes');
    expect(result.jar.get(`${appUrl}/auth/callback`, 'app_session')).toBe('s1');
  });
});
