import { describe, expect, it } from 'vitest';
import { table } from '../../bench/lib/stats.js';
import { CI_SOAK, runSoak } from '../../bench/soak/run-soak.js';

describe('the soak, CI-sized (npm run soak for the full volume)', () => {
  it('200 sessions on two instances with 5-second tokens: no failed call, no wrong logout, one exchange per expiry, no token refused, no heap growth, no key left', async () => {
    const result = await runSoak({ ...CI_SOAK, redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
    console.log(`${table([['figure', 'value'], ...Object.entries(result.figures).map(([k, v]) => [k, String(v)])])}\n`);
    console.log(table([['check', 'value', 'pass'], ...result.checks.map((c) => [c.name, c.value, c.pass ? 'yes' : 'NO'])]));
    expect(result.checks.filter((c) => !c.pass)).toEqual([]);
  }, 240_000);
});
