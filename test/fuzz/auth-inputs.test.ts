import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { safeReturnTo } from '../../src/routes/return-to.js';
import { CLIENT_ID, CLIENT_SECRET, type Harness } from '../support/harness.js';
import { queryValue } from './support/arbitraries.js';
import { fail, report, runsFor, StatusTally, timeoutFor, useFuzzSession } from './support/fuzz-setup.js';

const ALLOWED_RETURN_TO = ['/app/', '/home'];

/** returnTo values: same-origin paths and every trick that leads a browser elsewhere. */
const returnTo = fc.oneof(
  // Allowed-looking paths with one trick in them.
  fc.tuple(fc.constantFrom('/app/', '/home', '/home/', '/app/x/'), fc.constantFrom('', 'x', '..', '../', '..%2f', '%2e%2e/', './', '/', '//evil.example', '\\evil', '%2f%2fevil',
    '?next=//evil.example', '#//evil.example', '%0a', '%09', '@evil.example', ':80', 'x?a=1#b'), fc.constantFrom('', 'evil.example', '/x', '/../..', '%2f..'))
    .map(([a, b, c]) => `${a}${b}${c}`),
  fc.tuple(
    fc.constantFrom('', '/', '//', '/\\', '\\', '\\\\', '/%2f', '/%5c', '%2f', '/%09/', '/.//', '/..//', '/./', '/app/', '/app/../', '/home', '/home/..', '/app/..%2f',
      'https:', 'https://', 'http://evil.example', 'javascript:', '//evil.example', '/\t/evil.example', '/%252f%252f', ' /', '\u0000/', '/app/%2e%2e/'),
    fc.constantFrom('', 'evil.example', '/evil.example', 'x', 'x?y=1', 'x#z', '@evil.example', '%40evil.example', '..', '%2e%2e', 'evil.example%2f%2f', '\\evil.example'),
    fc.constantFrom('', '', '?a=1', '#f', '/../../x', '%00', '%0d%0aLocation:%20//evil'),
  ).map(([a, b, c]) => `${a}${b}${c}`),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: fc.constantFrom(...'/\\.%2fFeEvil:@?#\t '), maxLength: 16 }),
);

describe('fuzzed input to the login, callback, logout and back-channel logout routes', () => {
  const f = useFuzzSession({ allowedReturnTo: ALLOWED_RETURN_TO }, '/home');
  let live: { sid: string; sub: string };
  let eventsBefore: number;
  const sessionKeys = async () => (await f.h.redisKeys()).filter((k) => !k.startsWith(`${f.h.prefix}tx:`)).sort();
  let sessionKeysBefore: string[];
  beforeAll(async () => {
    live = f.h.auth0.admin.sessions()[0] as { sid: string; sub: string };
    sessionKeysBefore = await sessionKeys();
    eventsBefore = f.h.events.length;
  });

  const functionRuns = runsFor(0.5);
  it('returns only same-origin paths under an allowed prefix from safeReturnTo, as a browser would resolve them', () => {
    const base = new URL('http://127.0.0.1:3000');
    let accepted = 0;
    fc.assert(
      fc.property(returnTo, (value) => {
        const result = safeReturnTo(value, ALLOWED_RETURN_TO, base);
        if (result === undefined) return;
        accepted++;
        // The browser resolves the Location header against the page's URL (WHATWG URL, `\` read as `/`).
        const resolved = new URL(result, base);
        expect(resolved.origin).toBe(base.origin);
        expect(result.startsWith('/') && !result.startsWith('//') && !result.startsWith('/\\')).toBe(true);
        expect(/[\u0000-\u001f\u007f]/.test(result)).toBe(false);
        expect(resolved.pathname === '/home' || resolved.pathname.startsWith('/home/') || resolved.pathname.startsWith('/app/')).toBe(true);
      }),
      { numRuns: functionRuns, examples: [['/.//evil.example'], ['/app/..%2f..%2f/evil'], ['/%09/evil.example']] },
    );
    report('returnTo values (the function)', functionRuns, `${accepted} accepted`);
  }, timeoutFor(functionRuns, 0.1));

  const loginRuns = runsFor(0.07);
  it('answers a login with any returnTo with a redirect to Auth0 or 400, and starts a login only for the redirect', async () => {
    const { h, client, oracle, port } = f;
    const statuses = new StatusTally();
    const pending = async () => (await h.redisKeys()).filter((k) => k.startsWith(`${h.prefix}tx:`)).length;
    const before = await pending();
    let redirects = 0;
    let tried = 0;
    await fc.assert(
      fc.asyncProperty(returnTo, fc.boolean(), async (value, raw) => {
        tried++;
        const query = raw ? value : encodeURIComponent(value);
        const answer = await client.send([`GET /auth/login?returnTo=${query} HTTP/1.1`, `Host: 127.0.0.1:${port}`]);
        statuses.add(answer);
        const problems = oracle.check(answer);
        if (answer.status === 302) {
          redirects++;
          if (!String(answer.headers.location).startsWith(h.auth0.issuer)) problems.push(`redirected to ${answer.headers.location}`);
        } else if (answer.status !== 400) {
          problems.push(`answered ${answer.status}`);
        }
        fail(problems);
      }),
      { numRuns: loginRuns },
    );
    report('returnTo values (GET /auth/login)', tried, statuses.toString());
    expect(await pending()).toBe(before + redirects);
  }, timeoutFor(loginRuns));

  const callbackRuns = runsFor(0.08);
  it('answers any callback that does not complete a real login with 4xx, and creates no session', async () => {
    const { h, client, oracle, port } = f;
    const statuses = new StatusTally();
    let tried = 0;
    const params = fc.array(fc.tuple(fc.constantFrom('code', 'state', 'error', 'error_description', 'iss', 'session_state', 'state', 'code'), queryValue), { maxLength: 5 });
    await fc.assert(
      fc.asyncProperty(params, fc.constantFrom('none', 'fresh login', 'fresh login, no binding cookie'), async (pairs, mode) => {
        tried++;
        const lines = [`Host: 127.0.0.1:${port}`];
        let extra = '';
        if (mode !== 'none') {
          // A real pending login: its state, and (as the browser that started it) its binding cookie.
          const start = await client.send([`GET /auth/login HTTP/1.1`, `Host: 127.0.0.1:${port}`]);
          const state = new URL(String(start.headers.location)).searchParams.get('state') as string;
          extra = `&state=${state}`;
          if (mode === 'fresh login') lines.push(`Cookie: ${String(start.headers['set-cookie']).split(';')[0]}`);
        }
        const query = pairs.map(([k, v]) => `${k}=${v}`).join('&') + extra;
        const answer = await client.send([`GET /auth/callback?${query} HTTP/1.1`, ...lines]);
        statuses.add(answer);
        const problems = oracle.check(answer);
        if (answer.status < 400) problems.push(`answered ${answer.status}`);
        if (/\bbff=[^;]/.test(answer.headers['set-cookie'] ?? '')) problems.push('a session cookie was set');
        fail(problems);
      }),
      { numRuns: callbackRuns },
    );
    report('callback parameters', tried, statuses.toString());
    expect(await sessionKeys()).toEqual(sessionKeysBefore);
    expect(h.events.slice(eventsBefore).filter((e) => e.name === 'login' || e.name === 'logout')).toEqual([]);
  }, timeoutFor(callbackRuns, 50));

  const logoutRuns = runsFor(0.05);
  it('refuses a logout whose sid is not the session\'s with 400, and keeps the session', async () => {
    const { client, oracle, port, cookie, browser } = f;
    const statuses = new StatusTally();
    let tried = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('GET', 'POST'), fc.option(queryValue, { nil: undefined }), async (verb, sid) => {
        tried++;
        const target = sid === undefined ? '/auth/logout' : `/auth/logout?sid=${sid}`;
        const lines = [`${verb} ${target} HTTP/1.1`, `Host: 127.0.0.1:${port}`, `Cookie: ${cookie}`];
        const answer = verb === 'POST'
          ? await client.send([...lines, 'Content-Type: application/x-www-form-urlencoded'], sid === undefined ? '' : `sid=${sid}`)
          : await client.send(lines);
        statuses.add(answer);
        const problems = oracle.check(answer);
        if (answer.status !== 400) problems.push(`answered ${answer.status}`);
        fail(problems);
      }),
      { numRuns: logoutRuns },
    );
    report('logout parameters', tried, statuses.toString());
    expect((await browser.user()).status).toBe(200);
  }, timeoutFor(logoutRuns, 30));

  const backchannelRuns = runsFor(0.1);
  it('refuses every flawed or forged logout token with 400, and ends no session', async () => {
    const { h, client, oracle, port, browser } = f;
    const statuses = new StatusTally();
    let tried = 0;
    await fc.assert(
      fc.asyncProperty(logoutTokenSpec, fc.constantFrom('form', 'form', 'form', 'json', 'no type'), async (spec, encoding) => {
        tried++;
        const token = await makeLogoutToken(h, live, spec);
        const body = encoding === 'json' ? JSON.stringify({ logout_token: token }) : `logout_token=${encodeURIComponent(token)}`;
        const type = encoding === 'json' ? ['Content-Type: application/json'] : encoding === 'form' ? ['Content-Type: application/x-www-form-urlencoded'] : [];
        const answer = await client.send([`POST /auth/backchannel-logout HTTP/1.1`, `Host: 127.0.0.1:${port}`, ...type], body);
        statuses.add(answer);
        const problems = oracle.check(answer);
        if (answer.status !== 400) problems.push(`answered ${answer.status} to ${token.slice(0, 120)}`);
        fail(problems);
      }),
      { numRuns: backchannelRuns },
    );
    report('logout tokens', tried, statuses.toString());
    expect(await sessionKeys()).toEqual(sessionKeysBefore);
    expect(h.events.slice(eventsBefore).filter((e) => e.name === 'logout')).toEqual([]);
    expect((await browser.api('/api/items')).status).toBe(200);
    expect(oracle.logProblems()).toEqual([]);
  }, timeoutFor(backchannelRuns, 30));
});

type TokenSpec =
  | { kind: 'raw'; token: string }
  | { kind: 'unsigned' | 'hs256 keyed with the client secret' }
  | { kind: 'signed'; flaws: string[]; header: Record<string, unknown> };

const FLAWS: Record<string, (claims: Record<string, unknown>, now: number) => void> = {
  'another issuer': (c) => void (c.iss = 'https://evil.example/'),
  'the issuer without its slash': (c) => void (c.iss = String(c.iss).replace(/\/$/, '')),
  'another audience': (c) => void (c.aud = 'another-client'),
  'an audience that is a number': (c) => void (c.aud = 42),
  'no events': (c) => void delete c.events,
  'another event': (c) => void (c.events = { 'http://schemas.openid.net/event/other': {} }),
  'an event that is not an object': (c) => void (c.events = { 'http://schemas.openid.net/event/backchannel-logout': 'yes' }),
  'a nonce': (c) => void (c.nonce = 'n'),
  'expired long ago': (c, now) => void (c.exp = now - 3600),
  'issued in the future': (c, now) => void (c.iat = now + 3600),
  'no iat': (c) => void delete c.iat,
  'no exp': (c) => void delete c.exp,
  'no jti': (c) => void delete c.jti,
  'an exp that is a string': (c, now) => void (c.exp = String(now + 120)),
  'neither sid nor sub': (c) => {
    delete c.sid;
    delete c.sub;
  },
};

/** Headers of tokens signed with the real key: harmless ones, and ones that must make verification fail. */
const HEADERS: Array<Record<string, unknown>> = [
  {}, { typ: 'JWT' }, { typ: 'logout+jwt' }, { typ: 'at+jwt' }, { kid: 'unknown' }, { kid: 7 },
  { jku: 'http://evil.example/jwks' }, { jwk: { kty: 'oct', k: 'AAAA' } }, { x5u: 'http://evil.example/cert' },
];

/**
 * Logout tokens that must all be refused: garbage, JWT look-alikes, unsigned or HS256 tokens (keyed with the
 * client secret) with good claims, and tokens signed with the tenant's real key, naming the live session, with
 * at least one flaw in their claims. fast-check shrinks the description; the property makes the token.
 */
const logoutTokenSpec: fc.Arbitrary<TokenSpec> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.oneof(
      fc.string({ maxLength: 60 }),
      fc.constantFrom('', '.', '..', 'a.b.c', 'e30.e30.', 'e30.e30.e30', 'eyJhbGciOiJub25lIn0.e30.'),
      fc.tuple(fc.jsonValue(), fc.jsonValue(), fc.string({ maxLength: 40 })).map(([a, b, c]) => `${b64(a)}.${b64(b)}.${b64(c)}`),
      fc.tuple(fc.object({ maxDepth: 1 }), fc.jsonValue()).map(([header, payload]) => `${b64({ alg: 'RS256', ...header })}.${b64(payload)}.${b64('sig')}`),
    ).map((token) => ({ kind: 'raw' as const, token })),
  },
  { weight: 1, arbitrary: fc.constantFrom({ kind: 'unsigned' as const }, { kind: 'hs256 keyed with the client secret' as const }) },
  {
    weight: 4,
    arbitrary: fc.tuple(fc.subarray(Object.keys(FLAWS), { minLength: 1, maxLength: 3 }), fc.constantFrom(...HEADERS))
      .map(([flaws, header]) => ({ kind: 'signed' as const, flaws, header })),
  },
);

function b64(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

async function makeLogoutToken(h: Harness, live: { sid: string; sub: string }, spec: TokenSpec): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = {
    iss: h.auth0.issuer, aud: CLIENT_ID, iat: now, exp: now + 120, jti: randomUUID(),
    events: { 'http://schemas.openid.net/event/backchannel-logout': {} }, sid: live.sid, sub: live.sub,
  };
  switch (spec.kind) {
    case 'raw': return spec.token;
    case 'unsigned': return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
    case 'hs256 keyed with the client secret':
      return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(CLIENT_SECRET));
    case 'signed':
      for (const flaw of spec.flaws) FLAWS[flaw]?.(claims, now);
      return h.auth0.admin.sign(claims, spec.header);
  }
}
