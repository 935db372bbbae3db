/**
 * Logging in without a browser: follow redirects from a start URL (a BFF's /auth/login, or /authorize),
 * fill in the emulator's login form, and stop at the redirect to the application's callback.
 * Cookies are kept the way a browser keeps them (per host, honouring Path, Expires and Max-Age), in a
 * {@link CookieJar} that the caller can share with its own requests to the application.
 */
import { LOGIN_FORM_MARKER } from './login-form-marker.js';

interface Cookie {
  name: string;
  value: string;
  host: string;
  path: string;
  expiresAt: number;
}

function defaultPath(pathname: string): string {
  const slash = pathname.lastIndexOf('/');
  return slash <= 0 ? '/' : pathname.slice(0, slash);
}

function pathMatches(cookiePath: string, requestPath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

/**
 * A minimal cookie jar for Node's `fetch`: host-only cookies (like a browser, the port does not matter),
 * Path, Expires and Max-Age honoured; Domain, Secure and SameSite are not enforced.
 *
 * @example
 * ```ts
 * const jar = new CookieJar();
 * const res = await fetch(url, { headers: { cookie: jar.header(url) }, redirect: 'manual' });
 * jar.setFrom(url, res);
 * ```
 */
export class CookieJar {
  #cookies: Cookie[] = [];

  /** Stores the cookies of `response` (its `Set-Cookie` headers), received for a request to `url`. */
  setFrom(url: string | URL, response: Response): void {
    for (const line of response.headers.getSetCookie()) this.set(url, line);
  }

  /** Stores one `Set-Cookie` header value received for `url`. */
  set(url: string | URL, setCookie: string): void {
    const target = new URL(url);
    const [pair = '', ...attributes] = setCookie.split(';');
    const eq = pair.indexOf('=');
    if (eq <= 0) return;
    const cookie: Cookie = {
      name: pair.slice(0, eq).trim(),
      value: pair.slice(eq + 1).trim(),
      host: target.hostname,
      path: defaultPath(target.pathname),
      expiresAt: Infinity,
    };
    let maxAge: number | undefined;
    for (const attribute of attributes) {
      const [rawName = '', ...rest] = attribute.split('=');
      const name = rawName.trim().toLowerCase();
      const value = rest.join('=').trim();
      if (name === 'path' && value.startsWith('/')) cookie.path = value;
      else if (name === 'expires' && !Number.isNaN(Date.parse(value))) cookie.expiresAt = Date.parse(value);
      else if (name === 'max-age' && /^-?\d+$/.test(value)) maxAge = Number(value);
    }
    if (maxAge !== undefined) cookie.expiresAt = Date.now() + maxAge * 1000;
    this.#cookies = this.#cookies.filter(
      (c) => !(c.name === cookie.name && c.host === cookie.host && c.path === cookie.path),
    );
    if (cookie.expiresAt > Date.now()) this.#cookies.push(cookie);
  }

  /** The `Cookie` header to send with a request to `url` ('' when none applies). */
  header(url: string | URL): string {
    const target = new URL(url);
    const now = Date.now();
    this.#cookies = this.#cookies.filter((c) => c.expiresAt > now);
    return this.#cookies
      .filter((c) => c.host === target.hostname && pathMatches(c.path, target.pathname))
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  /** The value of the cookie `name` that would be sent to `url`, if any. */
  get(url: string | URL, name: string): string | undefined {
    for (const part of this.header(url).split('; ')) {
      const eq = part.indexOf('=');
      if (part.slice(0, eq) === name) return part.slice(eq + 1);
    }
    return undefined;
  }
}

/** Options of {@link scriptedLogin}. */
export interface ScriptedLoginOptions {
  /** Stop at the first redirect whose Location starts with this. Default: the first redirect carrying `code` or `error`. */
  stopAt?: string;
  /** The cookies of the (simulated) browser; updated in place. Default: a new, empty jar. */
  jar?: CookieJar;
  /** A `Cookie` header to put in the jar for `startUrl` first (e.g. the application's session cookie). */
  cookieHeader?: string;
  /** Default: global `fetch`. */
  fetch?: typeof fetch;
  /** Default 20. */
  maxRedirects?: number;
}

/** What {@link scriptedLogin} ends with. */
export interface ScriptedLoginResult {
  /** The URL the emulator redirected to (the application's callback, with `code` and `state`, or `error`). */
  callbackUrl: string;
  /** The browser's cookies after the login (the jar passed in, or a new one). */
  jar: CookieJar;
  /** False when no login form was shown (SSO: the Auth0 session was still alive). */
  loginFormShown: boolean;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function isStop(location: string, stopAt: string | undefined): boolean {
  if (stopAt !== undefined) return location.startsWith(stopAt);
  const { searchParams } = new URL(location);
  return searchParams.has('code') || searchParams.has('error');
}

/**
 * Drives a login through the emulator's login form with `fetch`, and returns the callback URL.
 * @throws Error when the credentials are refused, or no stop URL is reached within `maxRedirects` requests.
 *
 * @example
 * ```ts
 * const { callbackUrl, jar } = await scriptedLogin('http://127.0.0.1:3000/auth/login',
 *   { username: 'alice', password: 'alice-pw' }, { stopAt: 'http://127.0.0.1:3000/auth/callback' });
 * await fetch(callbackUrl, { headers: { cookie: jar.header(callbackUrl) }, redirect: 'manual' });
 * ```
 */
export async function scriptedLogin(
  startUrl: string,
  credentials: { username: string; password: string },
  options: ScriptedLoginOptions = {},
): Promise<ScriptedLoginResult> {
  if (!URL.canParse(startUrl)) throw new TypeError('"startUrl" must be an absolute URL');
  if (typeof credentials?.username !== 'string' || typeof credentials.password !== 'string') {
    throw new TypeError('"credentials" must be { username, password } strings');
  }
  const fetchImpl = options.fetch ?? fetch;
  const jar = options.jar ?? new CookieJar();
  const maxRedirects = options.maxRedirects ?? 20;
  if (options.cookieHeader) {
    for (const pair of options.cookieHeader.split(';')) if (pair.trim()) jar.set(startUrl, `${pair.trim()}; Path=/`);
  }

  let loginFormShown = false;
  let request: { url: string; init: RequestInit } = { url: startUrl, init: { method: 'GET' } };
  for (let step = 0; step <= maxRedirects; step += 1) {
    const response = await fetchImpl(request.url, {
      ...request.init,
      redirect: 'manual',
      headers: { ...(request.init.headers as Record<string, string>), cookie: jar.header(request.url) },
    });
    jar.setFrom(request.url, response);

    if (REDIRECTS.has(response.status)) {
      await response.arrayBuffer();
      const location = new URL(response.headers.get('location') ?? '', request.url).href;
      if (isStop(location, options.stopAt)) return { callbackUrl: location, jar, loginFormShown };
      request = { url: location, init: { method: 'GET' } };
      continue;
    }

    const html = await response.text();
    const form = new RegExp(`<form[^>]*action="([^"]+)"[^>]*${LOGIN_FORM_MARKER}`).exec(html);
    if (!form) {
      throw new Error(`scriptedLogin: ${request.url} answered ${response.status} without a redirect or a login form`);
    }
    if (loginFormShown && response.status === 401) {
      throw new Error(`scriptedLogin: the login form refused the credentials of "${credentials.username}"`);
    }
    loginFormShown = true;
    request = {
      url: new URL(form[1]!, request.url).href,
      init: {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ username: credentials.username, password: credentials.password }).toString(),
      },
    };
  }
  throw new Error(`scriptedLogin: no redirect to ${options.stopAt ?? 'a callback'} within ${maxRedirects} requests`);
}
