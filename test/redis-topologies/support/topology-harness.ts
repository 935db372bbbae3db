import { createClient } from 'redis';
import type { BffOptions, RedisClient } from '../../../src/index.js';
import { startHarness, type Harness, type HarnessOptions } from '../../support/harness.js';
import type { RedisServer } from './redis-server.js';

/** What the tests need of a topology: new clients of the kind the README sets up, and where a key lives. */
export interface Topology {
  connect(options?: { clientSideCache?: { ttl?: number } }): Promise<RedisClient>;
  homeOf(key: string): Promise<{ master: number; replica: RedisServer }>;
  /** The servers that are replicas now. */
  replicaServers(): Promise<RedisServer[]>;
  node(port: number): Promise<ReturnType<typeof createClient>>;
}

/**
 * Two BFF instances on a topology, each connecting its own client (or sharing one without client-side caching).
 * Auth0 calls get more time than in the other tests' harness: a dozen logins at once on a loaded 2-core machine
 * must not time out.
 */
export function startTopologyHarness(topology: Topology, options: Omit<HarnessOptions, 'redisConnect' | 'bff'> & { bff?: Partial<BffOptions> } = {}): Promise<Harness> {
  return startHarness({
    instances: 2,
    ...options,
    redisConnect: (connectOptions) => topology.connect(connectOptions),
    bff: { tokens: { exchangeDeadline: 3_000, attemptTimeout: 1_500 }, ...options.bff },
  });
}
