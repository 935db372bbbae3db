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
import { ROOT } from './procs.js';

export function valgrindAvailable(): boolean {
  return spawnSync('valgrind', ['--version']).status === 0 && spawnSync('callgrind_control', ['--help']).status === 0;
}

/**
 * Runs a server under callgrind, counting from the start; `callgrind_control` zeroes and dumps the counts while it
 * serves. V8 writes code at run time: valgrind's default self-modifying-code check on x86 (every code not from a
 * file) follows it.
 */
export function callgrindWrapper(outFile: string, options: { perInstruction?: boolean } = {}): string[] {
  return [
    'valgrind', '--tool=callgrind', `--callgrind-out-file=${outFile}`, '--dump-line=no', '--compress-strings=no',
    // Costs per instruction address, written in full: what `functionCounts` reads.
    ...options.perInstruction ? ['--dump-instr=yes', '--compress-pos=no'] : [],
  ];
}

/** Sets the server's counts to zero. */
export function zeroCounts(pid: number): void {
  control(['--zero', String(pid)]);
}

/**
 * Writes the counts since the last zero or dump to a new file next to `outFile` (callgrind numbers them:
 * `<outFile>.1`, `.2`, ...) and returns the instructions in it, and the file.
 */
export function dumpCounts(pid: number, outFile: string): { instructions: number; file: string } {
  const dir = dirname(outFile);
  const prefix = `${basename(outFile)}.`;
  const before = new Set(readdirSync(dir).filter((f) => f.startsWith(prefix)));
  control(['--dump', String(pid)]);
  const added = readdirSync(dir).filter((f) => f.startsWith(prefix) && !before.has(f));
  if (added.length !== 1) throw new Error(`callgrind_control --dump ${pid} wrote ${added.length} files next to ${outFile}`);
  const file = join(dir, added[0] as string);
  return { instructions: totalInstructions(readFileSync(file, 'utf8')), file };
}

/** The `totals:` (or, lacking it, `summary:`) line of a callgrind output file: instructions executed (event Ir). */
export function totalInstructions(dump: string): number {
  const line = /^totals:\s+(\d+)/m.exec(dump) ?? /^summary:\s+(\d+)/m.exec(dump);
  if (line === null) throw new Error('a callgrind dump without a totals or summary line');
  return Number(line[1]);
}

/**
 * The instructions of a callgrind dump (written with `callgrindWrapper(..., { perInstruction: true })`) by the
 * function they ran in, per call: the self cost, what ran in the function's own code. JavaScript compiled at run
 * time has no symbol callgrind knows; its addresses are named from V8's perf map (`node --perf-basic-prof` writes
 * `/tmp/perf-<pid>.map`: start, size and name of every piece of code, in the order it was made). A function
 * inlined into another counts as that other one. Names are as `functionName` shortens them.
 */
export function functionCounts(dump: string, perfMap: string, calls: number): Map<string, number> {
  const name = namer(perfMap);
  const counts = new Map<string, number>();
  let fn = '';
  let object = '';
  let skipNext = false;
  for (const line of dump.split('\n')) {
    if (skipNext) {
      // The line after `calls=` is the inclusive cost of that call, not cost of this function's own.
      skipNext = false;
      continue;
    }
    if (line.startsWith('fn=')) fn = line.slice(3);
    else if (line.startsWith('ob=')) object = line.slice(3);
    else if (line.startsWith('calls=')) skipNext = true;
    else if (line.startsWith('0x')) {
      const { address, cost } = costLine(line);
      const key = name(fn, object, address);
      counts.set(key, (counts.get(key) ?? 0) + cost / calls);
    }
  }
  return counts;
}

/**
 * Who calls the functions `callee` matches, from a dump like `functionCounts`'s: per (callee, caller) pair, the
 * instructions per call spent in the callee and what it called (callgrind's inclusive cost of those calls), the
 * caller named as `functionCounts` names it. A function inlined into another counts as that other one.
 */
export function callerCounts(dump: string, perfMap: string, calls: number, callee: RegExp): Map<string, number> {
  const name = namer(perfMap);
  const counts = new Map<string, number>();
  let fn = '';
  let object = '';
  // The next call's callee, and its object (callgrind's `cob=`, given only where it differs from the caller's).
  let calledObject: string | undefined;
  let called: string | undefined;
  let inclusiveNext = false;
  for (const line of dump.split('\n')) {
    if (inclusiveNext) {
      inclusiveNext = false;
      if (called !== undefined && line.startsWith('0x')) {
        const { address, cost } = costLine(line);
        const key = `${functionName(`${called} [${basename(calledObject ?? object)}]`)} < ${name(fn, object, address)}`;
        counts.set(key, (counts.get(key) ?? 0) + cost / calls);
      }
      calledObject = undefined;
    } else if (line.startsWith('fn=')) fn = line.slice(3);
    else if (line.startsWith('ob=')) object = line.slice(3);
    else if (line.startsWith('cob=')) calledObject = line.slice(4);
    else if (line.startsWith('cfn=')) called = callee.test(line.slice(4)) ? line.slice(4) : undefined;
    else if (line.startsWith('calls=')) inclusiveNext = true;
  }
  return counts;
}

/** A cost line of a dump written with `--dump-instr=yes --compress-pos=no`: the instruction's address, and its count. */
function costLine(line: string): { address: number; cost: number } {
  const space = line.indexOf(' ');
  return { address: Number.parseInt(line.slice(2, space), 16), cost: Number(line.slice(space + 1).split(' ')[0]) };
}

/**
 * The name, as `functionName` shortens it, of the function an instruction ran in: callgrind's, or where callgrind
 * has no symbol (it names such code by its first address), the perf map's.
 */
function namer(perfMap: string): (fn: string, object: string, address: number) => string {
  const code = readPerfMap(perfMap);
  return (fn, object, address) => functionName((fn.startsWith('0x') ? code(address) : undefined) ?? `${fn} [${basename(object)}]`);
}

/** Looks an address up in a V8 perf map; where pieces of code were made at the same place, the latest. */
function readPerfMap(text: string): (address: number) => string | undefined {
  const entries: Array<{ start: number; end: number; name: string; order: number }> = [];
  for (const line of text.split('\n')) {
    const first = line.indexOf(' ');
    const second = line.indexOf(' ', first + 1);
    if (first < 0 || second < 0) continue;
    const start = Number.parseInt(line.slice(0, first), 16);
    entries.push({ start, end: start + Number.parseInt(line.slice(first + 1, second), 16), name: line.slice(second + 1), order: entries.length });
  }
  entries.sort((a, b) => a.start - b.start || a.order - b.order);
  const starts = entries.map((e) => e.start);
  return (address) => {
    // The last entry starting at or before the address, then back over those that end before it.
    let low = 0;
    let high = starts.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if ((starts[mid] as number) <= address) low = mid + 1;
      else high = mid;
    }
    let best: (typeof entries)[number] | undefined;
    for (let i = low - 1; i >= 0 && i >= low - 64; i--) {
      const entry = entries[i] as (typeof entries)[number];
      if (address < entry.end && (best === undefined || entry.order > best.order)) best = entry;
    }
    return best?.name;
  };
}

/**
 * A function's name without what differs between processes and runs: the project's directory or that of its
 * compiled copy, the path to node_modules, the column, V8's tier marks (`*` optimized, `~` interpreted, `^`/`+` baseline and Maglev), and
 * a wasm function's tier.
 */
export function functionName(name: string): string {
  return name
    .replace(/^JS:[*~^+]?'?/, '')
    .replace(/file:\/\/\S*\/working-tree\//, '')
    .replace(/\S*\/node_modules\//, '')
    .replace(`file://${ROOT}`, '')
    .replace(/(:\d+):\d+$/, '$1')
    .replace(/-\d+-(turbofan|liftoff)$/, '');
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
