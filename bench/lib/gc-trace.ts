/**
 * Garbage-collection pauses from a server's `node --trace-gc` output: how many of each kind, and how long the
 * main thread stood still. What a p99 is often made of, when the median is fine.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { median, quantile } from './stats.js';

export interface GcKind {
  kind: string;
  count: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  totalMs: number;
}

// `[1234:0x...]     5678 ms: Scavenge 12.3 (14.0) -> 11.2 (15.0) MB, pooled: 0 MB, 0.85 / 0.00 ms  (average mu = ...`
// (the fields between the sizes and the pause vary across Node versions).
const LINE = /ms: (Scavenge|Minor Mark-Sweep|Mark-Compact|Mark-sweep)(?: \([^)]*\))? .*?([\d.]+) \/ [\d.]+ ms/;

/** The size of a log now: pass it to `gcPauses` to read only what was written after. */
export const logSize = (file: string): number => statSync(file).size;

/** Every GC pause logged in `file` from byte `from` on (ms), by kind. */
export function gcPauseLists(file: string, from: number): Map<string, number[]> {
  const size = statSync(file).size;
  const buffer = Buffer.alloc(Math.max(0, size - from));
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buffer, 0, buffer.length, from);
  } finally {
    closeSync(fd);
  }
  const byKind = new Map<string, number[]>();
  for (const line of buffer.toString('utf8').split('\n')) {
    const match = LINE.exec(line);
    if (!match) continue;
    const kind = match[1] as string;
    const pauses = byKind.get(kind) ?? [];
    pauses.push(Number(match[2]));
    byKind.set(kind, pauses);
  }
  return byKind;
}

/** The GC pauses logged in `file` from byte `from` on, by kind, over `seconds` of wall time. */
export function gcPauses(file: string, from: number, seconds: number): GcKind[] {
  return summarize(gcPauseLists(file, from), seconds);
}

/** Pauses by kind (as `gcPauseLists` gives them, possibly merged over several windows) over `seconds` of wall time. */
export function summarize(byKind: ReadonlyMap<string, readonly number[]>, seconds: number): GcKind[] {
  return [...byKind].map(([kind, pauses]) => ({
    kind,
    count: pauses.length,
    perSecond: pauses.length / seconds,
    p50Ms: median(pauses),
    p99Ms: quantile(pauses, 0.99),
    maxMs: Math.max(...pauses),
    totalMs: pauses.reduce((a, b) => a + b, 0),
  }));
}

export function gcRows(label: string, kinds: readonly GcKind[], seconds: number): string[][] {
  return [
    [`GC pauses: ${label}`, 'count', 'per s', 'p50 ms', 'p99 ms', 'max ms', 'total ms', '% of the time'],
    ...kinds.map((k) => [k.kind, String(k.count), k.perSecond.toFixed(1), k.p50Ms.toFixed(2), k.p99Ms.toFixed(2), k.maxMs.toFixed(2), k.totalMs.toFixed(0), ((k.totalMs / (seconds * 1000)) * 100).toFixed(1)]),
  ];
}
