import { expect } from 'vitest';
import { waitFor, type Browser, type Harness } from '../../support/harness.js';
import { apiOnEvery, attemptLogin, exchanges } from './browsers.js';
import { startTraffic } from './traffic.js';

/**
 * Kills a master while `browsers` call the API in a loop on both instances and their tokens expire, logs in and
 * out meanwhile, and checks what a user may notice: 200 or `503 session_store_unavailable`, never a 401, a 500
 * or a logout; once `recovered` holds, every session works on both instances and renews its token.
 */
export async function throughFailover(h: Harness, scenario: {
  browsers: Browser[];
  /** Those of `browsers` whose session lives on the master that dies: the others must not notice anything. */
  affected: Browser[];
  /** A logged-in browser whose session lives on the master that dies: it logs out during the failover. */
  leaver: Browser;
  kill(): Promise<void>;
  /** Resolves once the topology has a new master (the replica took over). */
  failedOver(): Promise<void>;
}): Promise<void> {
  const { browsers, leaver } = scenario;
  const logoutUrl = (await leaver.user()).body.logoutUrl as string;
  const before = exchanges(h);
  const traffic = startTraffic(browsers);
  await waitFor(() => traffic.answers.length > 50, 'traffic flows');
  // Tokens expire around the failover: exchanges run through it too.
  h.clock.advance(61_000);
  await scenario.kill();
  const during = await Promise.all([leaver.request(logoutUrl).then((r) => r.status), attemptLogin(h.browser(0)), attemptLogin(h.browser(1))]);
  await scenario.failedOver();
  h.clock.advance(61_000);
  await waitFor(async () => {
    for (const b of browsers) if ((await apiOnEvery(h, b)).some((s) => s !== 200)) return false;
    return true;
  }, 'every session works again', 20_000);
  await traffic.stop();

  expect(traffic.unexpected(), JSON.stringify(h.events.filter((e) => e.name === 'refresh_failed'))).toEqual([]);
  // The failover was felt (or this test proves nothing), by the sessions on the master that died only.
  expect(traffic.answers.filter((a) => a.status === 503).length).toBeGreaterThan(0);
  expect(traffic.answers.filter((a) => a.status !== 200 && !scenario.affected.includes(browsers[a.browser] as Browser))).toEqual([]);
  // A logout or a login in the failover window either happened or answered 503: never a 500.
  for (const status of during) expect([302, 503]).toContain(status);
  expect(h.events.filter((e) => e.name === 'logout' && (e.payload as { reason: string }).reason !== 'user')).toEqual([]);
  expect(exchanges(h)).toBeGreaterThan(before);
  h.clock.advance(61_000);
  const renewing = exchanges(h);
  for (const b of browsers) expect(await apiOnEvery(h, b)).toEqual([200, 200]);
  expect(exchanges(h) - renewing).toBe(browsers.length);
}
