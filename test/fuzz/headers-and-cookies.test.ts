import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { cookieHeader, headerName, headerValue } from './support/arbitraries.js';
import { fail, report, runsFor, StatusTally, timeoutFor, useFuzzSession } from './support/fuzz-setup.js';

describe('fuzzed headers and cookies against a logged-in session', () => {
  const f = useFuzzSession();
  let keysBefore: string[];
  let eventsBefore: number;
  beforeAll(async () => {
    keysBefore = (await f.h.redisKeys()).sort();
    eventsBefore = f.h.events.length;
  });

  /** Nothing changed: the same keys, no login, logout or exchange, and the session still works. */
  async function expectNothingChanged(): Promise<void> {
    const { h, oracle, browser } = f;
    expect(oracle.logProblems()).toEqual([]);
    expect((await h.redisKeys()).sort()).toEqual(keysBefore);
    expect(h.events.slice(eventsBefore).filter((e) => e.name !== 'backchannel_logout_rejected')).toEqual([]);
    expect((await browser.user()).status).toBe(200);
    expect((await browser.api('/api/items')).status).toBe(200);
  }

  const headerRuns = runsFor(0.15);
  it('never answers 5xx to any extra headers, and forwards none that changes the path, the method or the client', async () => {
    const { client, oracle, port, cookie } = f;
    const statuses = new StatusTally();
    let tried = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('GET', 'POST', 'DELETE'), fc.constantFrom('/api/items', '/api/items?x=1', '/auth/user', '/healthz'),
        fc.array(fc.tuple(headerName, headerValue), { minLength: 1, maxLength: 4 }), async (verb, path, extra) => {
          tried++;
          const lines = [`${verb} ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, `Cookie: ${cookie}`, 'X-CSRF: 1', ...extra.map(([n, v]) => `${n}: ${v}`)];
          const answer = await client.send(lines, verb === 'POST' ? '{"a":1}' : '').catch((error: Error) => {
            // Node's HTTP server closes an upgrade request's connection when the app has no 'upgrade' listener.
            if (extra.some(([n]) => n.toLowerCase() === 'upgrade') && /closed without an answer/.test(error.message)) return undefined;
            throw error;
          });
          statuses.add(answer);
          fail(answer ? oracle.check(answer) : oracle.upstreamProblems());
        }),
      { numRuns: headerRuns, examples: [['GET', '/api/items', [['X-Original-URL', '/admin'], ['Connection', 'x-csrf']]]] },
    );
    report('headers', tried, statuses.toString());
    await expectNothingChanged();
  }, timeoutFor(headerRuns));

  const cookieRuns = runsFor(0.15);
  it('never answers 5xx to a tampered, repeated or malformed cookie, and never takes a tampered one for the session', async () => {
    const { client, oracle, port, cookie } = f;
    const [name, value] = cookie.split('; ').find((c) => c.startsWith('bff='))?.split('=') as [string, string];
    const genuine = decodeURIComponent(value);
    // The genuine session value however the cookie spells it: percent-escapes in either case ("%2b" is "%2B"),
    // quoted or not, with spaces around it. What must never be accepted is a cookie whose value, decoded, is not the genuine one.
    // Read the way cookie parsers read a pair: the name and the value trimmed around the first "=".
    const carriesGenuine = (header: string) => header.split(';').some((part) => {
      const eq = part.indexOf('=');
      if (eq === -1 || part.slice(0, eq).trim() !== name) return false;
      let raw = part.slice(eq + 1).trim();
      if (raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"')) raw = raw.slice(1, -1);
      try {
        return decodeURIComponent(raw) === genuine;
      } catch {
        return false;
      }
    });
    const statuses = new StatusTally();
    let tried = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('/api/items', '/auth/user'), cookieHeader(name, value), async (path, header) => {
        tried++;
        const answer = await client.send([`GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, `Cookie: ${header}`, 'X-CSRF: 1']);
        statuses.add(answer);
        const problems = oracle.check(answer);
        if (answer.status === 200 && !carriesGenuine(header)) problems.push(`a cookie without the genuine session value was accepted: ${JSON.stringify(header)}`);
        fail(problems);
      }),
      // The genuine value with its percent-escapes in lower case: the same cookie, which the BFF takes (seen in CI).
      { numRuns: cookieRuns, examples: [['/api/items', `${name}=${value.replace(/%[0-9A-F]{2}/g, (escape) => escape.toLowerCase())}`]] },
    );
    report('cookies', tried, statuses.toString());
    await expectNothingChanged();
  }, timeoutFor(cookieRuns));
});
