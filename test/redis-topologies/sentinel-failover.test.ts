import { afterAll, beforeAll, describe, it } from 'vitest';
import { REDIS_CLIENT_MODES, waitFor, type Harness } from '../support/harness.js';
import { startTopologyHarness } from './support/topology-harness.js';
import { throughFailover } from './support/failover.js';
import { startRedisSentinel, type RedisSentinelSetup } from './support/redis-sentinel.js';

// A Sentinel setup of its own per mode: after a failover it has no replica left.
describe.each(REDIS_CLIENT_MODES)('when the Sentinel-watched master is killed during traffic ($mode)', ({ options }) => {
  let sentinel: RedisSentinelSetup;
  let h: Harness;
  beforeAll(async () => {
    sentinel = await startRedisSentinel();
    h = await startTopologyHarness(sentinel, options);
  });
  afterAll(async () => {
    await h?.close();
    await sentinel?.stop();
  });

  it('answers 503 at worst while the Sentinels promote the replica, logs nobody out, and every session works afterwards', async () => {
    const browsers = Array.from({ length: 6 }, (_, i) => h.browser(i % 2));
    await Promise.all(browsers.map((b) => b.login()));
    const leaver = h.browser(1);
    await leaver.login();
    await throughFailover(h, {
      browsers,
      affected: browsers,
      leaver,
      kill: () => sentinel.master.kill('SIGKILL'),
      failedOver: () => waitFor(async () => (await sentinel.masterPort()) === sentinel.replica.port, 'the Sentinels promoted the replica', 20_000),
    });
  });
});
