import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { body, method, requestTarget } from './support/arbitraries.js';
import { BASE_PATH, fail, report, runsFor, StatusTally, timeoutFor, useFuzzSession } from './support/fuzz-setup.js';
import { outsideBasePath } from './support/resolve-path.js';

describe('the upstream model of the fuzz suite', () => {
  it.each([
    ['/v1/base/items', []],
    ['/v1/base/..#x', ['whatwg', 'decodeThenNormalise', 'servletContainer', 'backslashAsSlash']],
    ['/v1/base/%2e%2e/x', ['whatwg', 'decodeThenNormalise', 'servletContainer', 'backslashAsSlash']],
    ['/v1/base/..;/x', ['servletContainer']],
    ['/v1/base/a%2f..%2f..', ['decodeThenNormalise', 'backslashAsSlash']],
    ['/v1/base/x\\..\\..\\..', ['whatwg', 'backslashAsSlash']],
    ['/v1/basement', ['whatwg', 'decodeThenNormalise', 'servletContainer', 'backslashAsSlash']],
    ['/v1/base/x?/../..', []],
  ])('reads %j outside the base path for %j', (target, models) => {
    expect(outsideBasePath(target, BASE_PATH).map((o) => o.model)).toEqual(models);
  });
});

describe('fuzzed request targets against a logged-in session', () => {
  const f = useFuzzSession();

  const runs = runsFor(0.4);
  it('never answers 5xx, leaks nothing, changes nothing, and reaches the upstream only under its base path', async () => {
    const { h, client, oracle, port, cookie, browser } = f;
    const keysBefore = (await h.redisKeys()).sort();
    const eventsBefore = h.events.length;
    const statuses = new StatusTally();
    let tried = 0;
    await fc.assert(
      fc.asyncProperty(method, requestTarget(port), body, async (verb, target, payload) => {
        tried++;
        const answer = await client.send([`${verb} ${target} HTTP/1.1`, `Host: 127.0.0.1:${port}`, `Cookie: ${cookie}`, 'X-CSRF: 1'], payload).catch((error: Error) => {
          // Node's HTTP server closes a CONNECT request's connection when the app has no 'connect' listener:
          // nothing reached the BFF. Any other request must be answered.
          if (verb === 'CONNECT' && /closed without an answer/.test(error.message)) return undefined;
          throw error;
        });
        statuses.add(answer);
        fail(answer ? oracle.check(answer) : oracle.upstreamProblems());
      }),
      {
        numRuns: runs,
        // The path that reached the upstream above its base path before the fix: a fragment after `..`.
        examples: [['GET', '/api/..#x', ''], ['POST', '/api/%2e%2e#/admin', 'x'], ['GET', '/api/items', '']],
      },
    );
    report('request targets', tried, statuses.toString());

    expect(oracle.logProblems()).toEqual([]);
    expect((await h.redisKeys()).sort()).toEqual(keysBefore);
    // No login, logout or exchange (rejected back-channel logouts are reported, and change nothing).
    expect(h.events.slice(eventsBefore).filter((e) => e.name !== 'backchannel_logout_rejected')).toEqual([]);
    expect((await browser.user()).status).toBe(200);
    expect((await browser.api('/api/items')).status).toBe(200);
  }, timeoutFor(runs));
});
