import { afterAll, beforeAll } from 'vitest';
import { startHarness, type Harness, type HarnessOptions } from './harness.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

/**
 * For the enclosing describe block: a BFF whose Redis connection runs through a relay the test can cut or freeze,
 * with a Redis command timeout of 300 ms (over `options.bff`) so that an outage is seen quickly. Read `h` and
 * `relay` inside the tests.
 */
export function behindRelay(options: Omit<HarnessOptions, 'redis' | 'redisUrl' | 'redisConnect'> = {}): { h: Harness; relay: TcpProxy } {
  const setup = {} as { h: Harness; relay: TcpProxy };
  beforeAll(async () => {
    const target = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    setup.relay = await startTcpProxy(Number(target.port || 6379), target.hostname);
    setup.h = await startHarness({
      ...options,
      redis: true,
      redisUrl: `redis://127.0.0.1:${setup.relay.port}`,
      bff: { redisCommandTimeout: 300, ...options.bff },
    });
  });
  afterAll(async () => {
    setup.relay?.up();
    await setup.h?.close();
    await setup.relay?.close();
  });
  return setup;
}
