/**
 * Loaded with `--import` into a bench server by `npm run bench -- --allocations`: V8's sampling heap profiler,
 * keeping every sampled allocation whether or not it outlived the collections that followed (a proxied call's
 * garbage is what the young generation's collections cost, and what makes a server's p99). The first SIGUSR2
 * starts it and, once it runs, writes `<BENCH_ALLOCATION_PROFILE>.started`; the next one stops it and writes the
 * profile (V8's format, as JSON) to BENCH_ALLOCATION_PROFILE.
 * BENCH_ALLOCATION_INTERVAL: the mean bytes between samples (default 1024).
 */
import { renameSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';

const out = process.env.BENCH_ALLOCATION_PROFILE;
if (out === undefined) throw new Error('allocation-probe: BENCH_ALLOCATION_PROFILE must name the file to write');
const samplingInterval = Number(process.env.BENCH_ALLOCATION_INTERVAL ?? 1024);

const session = new Session();
session.connect();
let sampling = false;

process.on('SIGUSR2', () => {
  void toggle().catch((error: unknown) => {
    process.stderr.write(`allocation-probe: ${String(error)}\n`);
    process.exit(1);
  });
});

async function toggle(): Promise<void> {
  if (!sampling) {
    sampling = true;
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', { samplingInterval, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    writeFileSync(`${out}.started`, '');
    return;
  }
  sampling = false;
  const { profile } = await session.post('HeapProfiler.stopSampling');
  // Written whole under another name first: whoever waits for the file never reads half of it.
  writeFileSync(`${out}.part`, JSON.stringify(profile));
  renameSync(`${out}.part`, out as string);
}
