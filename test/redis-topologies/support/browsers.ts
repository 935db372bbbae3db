import { Browser, CLIENT_ID, USER, type Harness } from '../../support/harness.js';

/** The BFF session cookie (`bff=...`) a browser holds now, or undefined. */
export const bffCookie = (b: Browser): string | undefined => b.jar.header(b.url).split('; ').find((c) => c.startsWith('bff='));

/** The BFF session id inside a browser's signed cookie (`s:<id>.<signature>`). */
export function bffSessionId(b: Browser): string {
  const cookie = bffCookie(b);
  if (cookie === undefined) throw new Error('the browser holds no BFF session cookie');
  const signed = decodeURIComponent(cookie.slice('bff='.length));
  return signed.slice(2, signed.lastIndexOf('.'));
}

/**
 * A second browser profile with the first one's Auth0 login (SSO) but no BFF cookie: its login makes a second
 * BFF session in the same Auth0 session.
 */
export function ssoSibling(h: Harness, of: Browser, instance = 0): Browser {
  const sibling = h.browser(instance);
  for (const cookie of of.jar.header(h.auth0.issuer).split('; ')) if (cookie && !cookie.startsWith('bff')) sibling.jar.set(h.auth0.issuer, cookie);
  return sibling;
}

/** The Auth0 session id of the user's newest Auth0 session at the emulator. */
export const newestAuth0Sid = (h: Harness): string => {
  const sessions = h.auth0.admin.sessions().filter((s) => s.sub === USER.sub);
  return sessions.at(-1)?.sid as string;
};

/** A back-channel logout token for the user, signed by the emulator, naming `sid` and/or `sub`. */
export function logoutToken(h: Harness, names: { sid?: string; sub?: string }): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return h.auth0.admin.sign({
    iss: h.auth0.issuer, aud: CLIENT_ID, iat: now, exp: now + 120, jti: crypto.randomUUID(),
    events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
    ...names,
  }, { typ: 'logout+jwt' });
}

export function postLogoutToken(url: string, token: string): Promise<Response> {
  return fetch(`${url}/auth/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: token }),
  });
}

/** Refresh-token exchanges Auth0 answered successfully so far. */
export const exchanges = (h: Harness): number => h.auth0.admin.counts().token.refresh_token?.ok ?? 0;

/** The status of the same API call through every instance. */
export const apiOnEvery = (h: Harness, b: Browser): Promise<number[]> =>
  Promise.all(h.urls.map((_, i) => fetch(`${h.urls[i]}/api/items`, { headers: { cookie: b.jar.header(b.url), 'x-csrf': '1' } }).then((r) => r.status)));
