/** Logging in to a BFF through the local Auth0 emulator's form, the way a browser would, with fetch. */
import { CookieJar, scriptedLogin } from '../../src/local-auth0/index.js';

/** Logs in at `<bffUrl>/auth/login` and returns the BFF's own session cookie as a `Cookie` header value. */
export async function loginThroughEmulator(bffUrl: string, user: { username: string; password: string }): Promise<string> {
  const jar = new CookieJar();
  const loginUrl = `${bffUrl}/auth/login`;
  const start = await fetch(loginUrl, { redirect: 'manual' });
  jar.setFrom(loginUrl, start);
  await start.arrayBuffer();
  if (start.status !== 302) throw new Error(`${loginUrl} answered ${start.status}, not a redirect`);
  const location = new URL(start.headers.get('location') as string, loginUrl).href;
  const { callbackUrl } = await scriptedLogin(location, user, { jar, stopAt: `${bffUrl}/auth/callback` });
  const callback = await fetch(callbackUrl, { headers: { cookie: jar.header(callbackUrl) }, redirect: 'manual' });
  await callback.arrayBuffer();
  if (callback.status !== 302) throw new Error(`the callback answered ${callback.status}`);
  // Only the cookies the BFF set on the callback (the emulator's share the host, so the jar would mix them in).
  const cookie = callback.headers.getSetCookie()
    .map((line) => line.split(';')[0]?.trim() ?? '')
    .filter((pair) => pair.includes('=') && !pair.endsWith('='))
    .join('; ');
  if (!cookie) throw new Error('the callback set no session cookie');
  return cookie;
}

/** Runs `fn` over `items` with at most `limit` at once; results in order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
