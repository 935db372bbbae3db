import type { IncomingMessage, ServerResponse } from 'node:http';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/harness.js';

/**
 * DESIGN invariant 11: no API receives an access token past its `exp`. Access tokens here live 3 s, and the
 * upstream checks `exp` the strictest way an API can: to the millisecond, with no clock tolerance, and with a
 * clock that runs half a second ahead of the BFF's (within the default clock-skew allowance of 1 s). Time runs
 * for real: the gap being tested is made of real round trips and `exp`'s whole-second rounding.
 */
const TOKEN_TTL_S = 3;
/** The load runs until every session's token was renewed this many times (on average), however slow the machine. */
const EXPIRIES_PER_SESSION = 3;
const MIN_CALLS = 200;
const SESSIONS = 12;
const CONCURRENCY = 16;
const UPSTREAM_CLOCK_AHEAD_MS = 500;

describe('access tokens that live a few seconds, under steady load on two instances', () => {
  let h: Harness;
  let expiredSeen = 0;
  beforeAll(async () => {
    h = await startHarness({
      redis: true,
      instances: 2,
      auth0: { accessTokenTtl: TOKEN_TTL_S },
      // The default token options: the harness's short deadlines are for fault tests.
      bff: { tokens: {} },
    });
    h.upstream.handler = (req: IncomingMessage, res: ServerResponse) => {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const exp = token === undefined ? 0 : (decodeJwt(token).exp ?? 0);
      if (Date.now() + UPSTREAM_CLOCK_AHEAD_MS >= exp * 1000) {
        expiredSeen++;
        res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token", error_description="expired"', 'content-type': 'application/json' });
        return void res.end('{"error":"invalid_token"}');
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    };
  });
  afterAll(() => h?.close());

  it('never forwards an expired token, for GETs and for POSTs that cannot be replayed', async () => {
    const cookies: string[] = [];
    for (let i = 0; i < SESSIONS; i++) {
      const browser = h.browser(i % 2);
      await browser.login();
      cookies.push(browser.jar.header(browser.url));
    }
    const statuses = new Map<number, number>();
    let calls = 0;
    const exchanges = () => h.events.filter((e) => e.name === 'refresh').length;
    const done = () => calls >= MIN_CALLS && exchanges() >= SESSIONS * EXPIRIES_PER_SESSION;
    await Promise.all(Array.from({ length: CONCURRENCY }, async (_, worker) => {
      for (let n = worker; !done(); n += CONCURRENCY) {
        const post = n % 2 === 1;
        const res = await fetch(`${h.urls[n % 2]}/api/items`, {
          method: post ? 'POST' : 'GET',
          headers: { cookie: cookies[n % SESSIONS] as string, 'x-csrf': '1', ...(post ? { 'content-type': 'application/json' } : {}) },
          ...(post ? { body: '{"n":1}' } : {}),
        });
        await res.arrayBuffer();
        calls++;
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      }
    }));
    expect({ statuses: Object.fromEntries(statuses), expiredSeen }).toEqual({ statuses: { 200: calls }, expiredSeen: 0 });
  }, 120_000);
});
