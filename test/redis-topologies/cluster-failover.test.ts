import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser, REDIS_CLIENT_MODES, waitFor, type Harness } from '../support/harness.js';
import { startTopologyHarness } from './support/topology-harness.js';
import { bffSessionId, loggedIn } from './support/browsers.js';
import { throughFailover } from './support/failover.js';
import { startRedisCluster, type RedisClusterSetup } from './support/redis-cluster.js';

let cluster: RedisClusterSetup;
beforeAll(async () => {
  cluster = await startRedisCluster();
});
afterAll(() => cluster?.stop());

// Each mode kills a master that still has a replica: the cluster survives both failovers.
describe.each(REDIS_CLIENT_MODES)('when a cluster master is killed during traffic ($mode)', ({ options }) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startTopologyHarness(cluster, options);
  });
  afterAll(() => h?.close());

  it('answers 503 at worst while its replica takes over, logs nobody out, and every session works afterwards', async () => {
    const browsers = Array.from({ length: 9 }, (_, i) => h.browser(i % 2));
    await Promise.all(browsers.map(loggedIn));
    const homeOf = (b: Browser) => cluster.masterOf(`${h.prefix}tok:{${bffSessionId(b)}}`);
    const homes = await Promise.all(browsers.map(homeOf));
    // The victim: the master with a replica that holds the most sessions.
    const count = (port: number) => homes.filter((p) => p === port).length;
    const victim = (await cluster.masters()).filter((m) => m.replicas.length > 0).sort((a, b) => count(b.port) - count(a.port))[0]!;
    expect(count(victim.port)).toBeGreaterThan(0);
    let leaver: Browser | undefined;
    for (let i = 0; i < 40 && !leaver; i++) {
      const b = await loggedIn(h.browser(1));
      if ((await homeOf(b)) === victim.port) leaver = b;
    }

    await throughFailover(h, {
      browsers,
      affected: browsers.filter((_, i) => homes[i] === victim.port),
      leaver: leaver!,
      kill: () => cluster.nodes.find((n) => n.port === victim.port)!.kill('SIGKILL'),
      failedOver: () => waitFor(async () => (await cluster.masters()).some((m) => m.port === victim.replicas[0]), 'the replica took over', 20_000),
    });
  });
});
