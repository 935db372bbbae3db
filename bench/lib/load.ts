/** One load run with wrk (preferred) or autocannon, the generator pinned to core 0. */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, pinned } from './procs.js';

export type LoadTool = 'wrk' | 'autocannon';

export const wrkAvailable = spawnSync('wrk', ['--version']).error === undefined;

export interface LoadOptions {
  url: string;
  connections: number;
  durationSec: number;
  /** A file with one Cookie header value per line; each request takes the next one. */
  cookieFile?: string;
  tool: LoadTool;
}

export interface LoadResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  /** Socket errors, timeouts and non-2xx/3xx answers. */
  errors: number;
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const [command, args] = options.tool === 'wrk'
    ? pinned(0, 'wrk', [
        '-t1', `-c${options.connections}`, `-d${options.durationSec}s`, '--timeout', '5s',
        '-s', join(ROOT, 'bench/load/wrk-bench.lua'), options.url, '--', options.cookieFile ?? '',
      ])
    : pinned(0, process.execPath, [
        '--import', 'tsx', join(ROOT, 'bench/load/autocannon-child.ts'),
        JSON.stringify({ url: options.url, connections: options.connections, durationSec: options.durationSec, headers: { 'x-csrf': '1' }, cookieFile: options.cookieFile }),
      ]);
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', reject);
    // 'close', not 'exit': the process may exit before its output is read to the end (a busy host), and the
    // result line would be missed.
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${command} exited with ${code}: ${out}`))));
  });
  const line = output.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  if (!line) throw new Error(`no result from ${options.tool}: ${output}`);
  const r = JSON.parse(line.slice('BENCH_JSON '.length)) as {
    requests: number; durationUs: number; connectErrors: number; readErrors: number; writeErrors: number; timeouts: number; non2xx: number; p50Us: number; p99Us: number;
  };
  return {
    rps: r.requests / (r.durationUs / 1e6),
    p50Ms: r.p50Us / 1000,
    p99Ms: r.p99Us / 1000,
    requests: r.requests,
    errors: r.connectErrors + r.readErrors + r.writeErrors + r.timeouts + r.non2xx,
  };
}
