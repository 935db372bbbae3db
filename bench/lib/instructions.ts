/**
 * `npm run bench -- --instructions`: the instructions a server executes per proxied call, counted by valgrind's
 * callgrind. A count does not depend on what else the machine is doing, nor on the speed a process happened to
 * draw (BENCHMARKS.md, "Two speeds of the same process"), so a difference of a few percent that req/s rounds on
 * this shared machine cannot resolve shows in one run. What it leaves out: the kernel's part (the socket reads and
 * writes are system calls) and what instructions wait for (cache and TLB misses), which req/s includes.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Pool } from 'undici';

export function valgrindAvailable(): boolean {
  return spawnSync('valgrind', ['--version']).status === 0 && spawnSync('callgrind_control', ['--help']).status === 0;
}

/**
 * Runs a server under callgrind, counting from the start; `callgrind_control` zeroes and dumps the counts while it
 * serves. V8 writes code at run time: valgrind's default self-modifying-code check on x86 (every code not from a
 * file) follows it.
 */
export function callgrindWrapper(outFile: string): string[] {
  return ['valgrind', '--tool=callgrind', `--callgrind-out-file=${outFile}`, '--dump-line=no', '--compress-strings=no'];
}

/** Sets the server's counts to zero. */
export function zeroCounts(pid: number): void {
  control(['--zero', String(pid)]);
}

/**
 * Writes the counts since the last zero or dump to a new file next to `outFile` (callgrind numbers them:
 * `<outFile>.1`, `.2`, ...) and returns the instructions in it.
 */
export function dumpCounts(pid: number, outFile: string): number {
  const dir = dirname(outFile);
  const prefix = `${basename(outFile)}.`;
  const before = new Set(readdirSync(dir).filter((f) => f.startsWith(prefix)));
  control(['--dump', String(pid)]);
  const added = readdirSync(dir).filter((f) => f.startsWith(prefix) && !before.has(f));
  if (added.length !== 1) throw new Error(`callgrind_control --dump ${pid} wrote ${added.length} files next to ${outFile}`);
  return totalInstructions(readFileSync(join(dir, added[0] as string), 'utf8'));
}

/** The `totals:` (or, lacking it, `summary:`) line of a callgrind output file: instructions executed (event Ir). */
export function totalInstructions(dump: string): number {
  const line = /^totals:\s+(\d+)/m.exec(dump) ?? /^summary:\s+(\d+)/m.exec(dump);
  if (line === null) throw new Error('a callgrind dump without a totals or summary line');
  return Number(line[1]);
}

function control(args: string[]): void {
  const run = spawnSync('callgrind_control', args, { encoding: 'utf8', timeout: 60_000 });
  if (run.status !== 0 || !/OK/.test(run.stdout)) throw new Error(`callgrind_control ${args.join(' ')} failed: ${run.stdout}${run.stderr}`);
}

/**
 * `count` GETs of `url`, `concurrency` at a time over kept-alive connections, each answer read whole and required
 * to be a 200: a fixed number of calls, where the req/s modes load for a fixed time.
 */
export async function sendCalls(url: string, options: { count: number; concurrency: number; headers: Record<string, string> }): Promise<void> {
  const target = new URL(url);
  const pool = new Pool(target.origin, { connections: options.concurrency });
  let sent = 0;
  const worker = async (): Promise<void> => {
    while (sent < options.count) {
      sent++;
      const res = await pool.request({ path: `${target.pathname}${target.search}`, method: 'GET', headers: options.headers });
      const body = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}: ${body.slice(0, 300)}`);
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  } finally {
    await pool.close();
  }
}
