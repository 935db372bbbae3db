import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { byFunction, isOwnCode, readProfile, waitForFile, type ProfileNode } from '../../bench/lib/allocations.js';
import { ROOT } from '../../bench/lib/procs.js';

const frame = (functionName: string, url: string, lineNumber: number, selfSize: number, children: ProfileNode[] = []): ProfileNode => ({
  callFrame: { functionName, url, lineNumber },
  selfSize,
  children,
});

describe('bench allocations', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('sums the bytes of each function over every path it was called on, per call', () => {
    const compiled = `file://${ROOT}node_modules/.cache/express-ort-bff-bench/ab12/working-tree/src/proxy/api-proxy.js`;
    const head = frame('(root)', '', -1, 0, [
      frame('handle', compiled, 72, 4000, [
        frame('writeH1', `file://${ROOT}node_modules/undici/lib/dispatcher/client-h1.js`, 1142, 8000),
      ]),
      frame('processTicksAndRejections', 'node:internal/process/task_queues', 65, 0, [
        frame('handle', compiled, 72, 2000),
        frame('', 'node:internal/streams/readable', 260, 400),
      ]),
      frame('(V8 API)', '', -1, 600),
    ]);
    const { perCall, byFunction: sizes } = byFunction(head, 100);
    expect(perCall).toBe(150);
    expect(Object.fromEntries(sizes)).toEqual({
      // Named as --instructions names them: lines counted from 1, no directory of the run.
      'handle src/proxy/api-proxy.js:73': 60,
      'writeH1 undici/lib/dispatcher/client-h1.js:1143': 80,
      '(anonymous) node:internal/streams/readable:261': 4,
      '(V8 API)': 6,
    });
    expect(isOwnCode('handle src/proxy/api-proxy.js:73')).toBe(true);
    expect(isOwnCode('onRequest example/lifecycle.js:45')).toBe(true);
    expect(isOwnCode('writeH1 undici/lib/dispatcher/client-h1.js:1143')).toBe(false);
  });

  it('the probe samples between two signals what a process allocates, garbage included', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-allocations-'));
    dirs.push(dir);
    const file = join(dir, 'profile.json');
    // A process that allocates short-lived arrays in a function of its own, and keeps none of them.
    const script = 'function makeGarbage() { let n = 0; for (let i = 0; i < 2000; i++) n += new Array(64).fill(i).length; process.stdout.write(`${n}\\n`); } setInterval(makeGarbage, 5);';
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', join(ROOT, 'bench/servers/allocation-probe.ts'), '-e', script], {
      env: { ...process.env, BENCH_ALLOCATION_PROFILE: file, BENCH_ALLOCATION_INTERVAL: '4096' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let rounds = 0;
    child.stdout.on('data', (chunk: Buffer) => (rounds += chunk.toString().split('\n').length - 1));
    const roundsDone = async (count: number) => {
      while (rounds < count) await new Promise((resolve) => child.stdout.once('data', resolve));
    };
    try {
      await roundsDone(1);
      child.kill('SIGUSR2');
      await waitForFile(`${file}.started`, 20_000);
      // While it samples: 20 rounds of garbage at least, counted, not timed.
      const from = rounds;
      await roundsDone(from + 20);
      child.kill('SIGUSR2');
      await waitForFile(file, 20_000);
      const { perCall, byFunction: sizes } = byFunction(readProfile(file), 1);
      // Arrays of 64 numbers, 2,000 a round: megabytes, none of which lived past the next scavenge.
      expect(perCall).toBeGreaterThan(20 * 2000 * 64 * 4);
      const garbage = [...sizes].filter(([name]) => name.startsWith('makeGarbage ')).reduce((sum, [, n]) => sum + n, 0);
      expect(garbage / perCall).toBeGreaterThan(0.5);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('waits for a file no longer than it is told to', async () => {
    await expect(waitForFile(join(tmpdir(), 'bench-allocations-never'), 100)).rejects.toThrow(/was not written within 100 ms/);
  });
});
