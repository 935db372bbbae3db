import { mkdtempSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { gcPauseLists, logSize, summarize } from '../../bench/lib/gc-trace.js';
import { quantile } from '../../bench/lib/stats.js';

// `node --trace-gc` lines as Node 20 and Node 22/24 print them, with a server's own output between them.
const NODE_20 = [
  '[6784:0x251a3d30]    63567 ms: Scavenge 41.8 (68.2) -> 29.0 (68.2) MB, 0.78 / 0.00 ms  (average mu = 0.997, current mu = 0.995) task; ',
  'listening on 127.0.0.1:4000',
  '[6784:0x251a3d30]    48065 ms: Mark-Compact 34.8 (68.4) -> 26.9 (67.4) MB, 1.68 / 0.01 ms  (+ 15.0 ms in 52 steps since start of marking, biggest step 12.4 ms) finalize incremental marking via task; GC in old space requested',
];
const NODE_22 = [
  '[91:0x5f1c2a0]     1234 ms: Scavenge (interleaved) 12.3 (14.0) -> 11.2 (15.0) MB, pooled: 0 MB, 0.85 / 0.00 ms  (average mu = 1.000, current mu = 1.000) allocation failure; ',
  '[91:0x5f1c2a0]     2345 ms: Mark-Compact (reduce) 10.4 (16.7) -> 6.5 (10.0) MB, pooled: 0 MB, 2.74 / 0.03 ms  (+ 0.0 ms in 1 steps since start of marking) memory reducer',
];

describe('bench GC trace', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('reads every pause by kind, from a point in the log on', () => {
    dir = mkdtempSync(join(tmpdir(), 'gc-trace-'));
    const file = join(dir, 'server.log');
    writeFileSync(file, `${NODE_20.join('\n')}\n`);
    expect(gcPauseLists(file, 0)).toEqual(new Map([['Scavenge', [0.78]], ['Mark-Compact', [1.68]]]));

    const from = logSize(file);
    appendFileSync(file, `${NODE_22.join('\n')}\n`);
    const later = gcPauseLists(file, from);
    expect(later).toEqual(new Map([['Scavenge', [0.85]], ['Mark-Compact', [2.74]]]));
    expect(summarize(later, 2)).toEqual([
      { kind: 'Scavenge', count: 1, perSecond: 0.5, p50Ms: 0.85, p99Ms: 0.85, maxMs: 0.85, totalMs: 0.85 },
      { kind: 'Mark-Compact', count: 1, perSecond: 0.5, p50Ms: 2.74, p99Ms: 2.74, maxMs: 2.74, totalMs: 2.74 },
    ]);
  });

  it('takes quantiles by nearest rank', () => {
    const values = Array.from({ length: 200 }, (_, i) => 200 - i);
    expect(quantile(values, 0.99)).toBe(198);
    expect(quantile(values, 0.5)).toBe(100);
    expect(quantile([3], 0.99)).toBe(3);
    expect(quantile([], 0.99)).toBeNaN();
  });
});
