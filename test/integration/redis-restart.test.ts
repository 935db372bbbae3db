import { afterEach, describe, expect, it } from 'vitest';
import { REDIS_CLIENT_MODES, startHarness, waitFor, type Browser, type Harness } from '../support/harness.js';
import { startOwnRedis, type OwnRedis } from '../support/redis-server.js';

const PERSISTENCE = [
  { name: 'without persistence, killed', args: ['--save', '', '--appendonly', 'no'], signal: 'SIGKILL', keepsSessions: false },
  { name: 'with an append-only file (appendfsync always), killed', args: ['--save', '', '--appendonly', 'yes', '--appendfsync', 'always'], signal: 'SIGKILL', keepsSessions: true },
  { name: 'with RDB snapshots, shut down cleanly', args: ['--save', '3600 1', '--appendonly', 'no'], signal: 'SIGTERM', keepsSessions: true },
] as const;

const COMMAND_TIMEOUT_MS = 500;

const CASES = PERSISTENCE.flatMap((p) => REDIS_CLIENT_MODES.map((m) => ({ ...p, mode: m.mode, options: m.options })));

/**
 * API calls from every browser, one after another each, until stopped: what they were answered, and when each was
 * sent (a call sent before Redis went away may be answered after). A call the BFF's connection failed on is
 * recorded with status 0, which no check accepts.
 */
function traffic(browsers: Browser[]) {
  const answers: Array<{ status: number; error: string; ms: number; sentAt: number }> = [];
  let running = true;
  const loops = browsers.map(async (browser) => {
    while (running) {
      const sentAt = performance.now();
      try {
        const res = await browser.api('/api/items');
        const body = (await res.json()) as { error?: string };
        answers.push({ status: res.status, error: body.error ?? '', ms: performance.now() - sentAt, sentAt });
      } catch (error) {
        if (!running) return;
        answers.push({ status: 0, error: (error as Error).message, ms: performance.now() - sentAt, sentAt });
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  });
  return { answers, stop: async () => { running = false; await Promise.all(loops); } };
}

describe.each(CASES)('when Redis is restarted during traffic, $name ($mode)', ({ args, signal, keepsSessions, options }) => {
  let redis: OwnRedis | undefined;
  let h: Harness | undefined;
  let load: ReturnType<typeof traffic> | undefined;
  afterEach(async () => {
    // The calls stop before the servers do, also when the test failed half-way.
    await load?.stop();
    await h?.close();
    await redis?.close();
  });

  it(keepsSessions
    ? 'answers 503 while it is away, then every session works again without a new login or a BFF restart'
    : 'answers 503 while it is away, then 401 login_required for the lost sessions, and new logins work without a BFF restart', async () => {
    redis = await startOwnRedis([...args]);
    // The default token deadlines: the harness's short ones are for Auth0 fault tests, and a login on a busy
    // machine could miss them.
    h = await startHarness({ redis: true, redisUrl: redis.url, instances: 2, ...options, bff: { redisCommandTimeout: COMMAND_TIMEOUT_MS, tokens: {} } });
    const harness = h;
    const browsers = [harness.browser(0), harness.browser(1), harness.browser(0)];
    for (const b of browsers) expect((await b.login()).status).toBe(302);
    for (const b of browsers) expect((await b.api('/api/items')).status).toBe(200);
    const calls = traffic(browsers);
    load = calls;
    await waitFor(() => calls.answers.length >= 10, 'traffic flows');

    await redis.kill(signal);
    const clients = harness.redisClients as unknown as Array<{ isReady: boolean }>;
    await waitFor(() => clients.every((c) => !c.isReady), 'the clients notice that Redis is gone');
    // Calls sent from now on: one sent before may have been answered from Redis just before it went.
    const goneAt = performance.now();
    const sentWhileAway = () => calls.answers.filter((a) => a.sentAt > goneAt);
    await waitFor(() => sentWhileAway().length >= 10, 'calls are answered while Redis is away');
    const away = sentWhileAway();
    // Clear answers, quickly: not a hang, not a 500, not a logout.
    for (const a of away) expect(a).toMatchObject({ status: 503, error: 'session_store_unavailable' });
    expect(Math.max(...away.map((a) => a.ms))).toBeLessThan(COMMAND_TIMEOUT_MS + 2_000);
    const user = await browsers[0]?.request('/auth/user');
    expect(user?.status).toBe(503);
    expect((await harness.browser(1).request('/healthz')).status).toBe(503);

    await redis.start();
    await waitFor(() => clients.every((c) => c.isReady), 'the clients reconnect by themselves', 15_000);
    const back = calls.answers.length;
    await waitFor(() => calls.answers.slice(back).filter((a) => a.status !== 503).length >= 10, 'calls are answered from Redis again', 15_000);
    await calls.stop();
    const after = calls.answers.slice(back).filter((a) => a.status !== 503);

    // No answer at any point was a 5xx other than the store's 503, and every call got an answer.
    expect(calls.answers.filter((a) => a.status === 0 || (a.status >= 500 && a.error !== 'session_store_unavailable'))).toEqual([]);
    if (keepsSessions) {
      expect(after.every((a) => a.status === 200)).toBe(true);
      for (const b of browsers) {
        await waitFor(async () => (await b.api('/api/items')).status === 200, 'the session works as before');
        expect((await b.user()).status).toBe(200);
      }
      expect(harness.events.filter((e) => e.name === 'logout')).toEqual([]);
    } else {
      // The sessions were only in the memory of the Redis that died: the browsers must log in again.
      for (const a of after) expect(a).toMatchObject({ status: 401, error: 'login_required' });
      const fresh = harness.browser(1);
      expect((await fresh.login()).status).toBe(302);
      expect((await fresh.api('/api/items')).status).toBe(200);
      expect((await browsers[0]?.login())?.status).toBe(302);
      expect((await browsers[0]?.api('/api/items'))?.status).toBe(200);
    }
    expect((await harness.browser(0).request('/healthz')).status).toBe(200);
  });
});
