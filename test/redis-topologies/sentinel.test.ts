import { afterAll, beforeAll, describe } from 'vitest';
import { startRedisSentinel, type RedisSentinelSetup } from './support/redis-sentinel.js';
import { sharedScenarios } from './support/scenarios.js';

let sentinel: RedisSentinelSetup;
beforeAll(async () => {
  sentinel = await startRedisSentinel();
});
afterAll(() => sentinel?.stop());

describe('on a Redis master and replica watched by 3 Sentinels', () => {
  sharedScenarios(() => sentinel);
});
