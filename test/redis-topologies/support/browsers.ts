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

/** Logs in, and answers the status the browser finally got: 302 from the callback, or the error of a step. */
export async function attemptLogin(b: Browser): Promise<number> {
  try {
    return (await b.login()).status;
  } catch (error) {
    const refused = /login did not redirect: (\d+)/.exec(String((error as Error).message));
    if (refused) return Number(refused[1]);
    throw error;
  }
}

/** Logs in and fails the test, with the answer, unless the callback ended in the app (302). */
export async function loggedIn(b: Browser): Promise<Browser> {
  const res = await b.login();
  if (res.status !== 302) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  return b;
}

/** Two logged-in browsers with one Auth0 session (the second logged in through SSO): two BFF sessions, one sid. */
export async function ssoPair(h: Harness, instances: [number, number] = [0, 1]): Promise<[Browser, Browser]> {
  const browser = await loggedIn(h.browser(instances[0]));
  return [browser, await loggedIn(ssoSibling(h, browser, instances[1]))];
}
