/**
 * Two contestants measured in adjacent slots, in the order A B B A, then B A A B, and so on: what the bench's targets
 * against the ceiling are read from.
 *
 * The rounds of a full run load a dozen contestants one after the other, so the two slots a round's ratio compares
 * can lie half a minute apart, and on this shared host the ceiling's own CPU per request has doubled between two
 * slots of one run. In a pair the four slots run back to back, and a speed that drifts steadily through them weighs
 * on both sides alike (each side has one slot early and one late). The ratio of a pair is taken on the means of each
 * side's two slots; the result is the median over the pairs.
 */
import { median, round } from './stats.js';

/** What one slot measured: loaded at the run's connections, then unloaded (1 connection). */
export interface SlotResult {
  rps: number;
  p99Ms: number;
  unloadedP50Ms: number;
}

export interface Pair {
  /** The mean of each side's two slots: [A, B]. */
  rps: [number, number];
  p99Ms: [number, number];
  unloadedP50Ms: [number, number];
}

export interface PairedResult {
  /** The keys of the two contestants: A, then B (the one A is compared against). */
  contestants: [string, string];
  pairs: Pair[];
  /** req/s, A / B: the median over the pairs. */
  rpsRatio: number;
  /** p99 at the loaded connections, A / B: the median over the pairs. */
  p99Ratio: number;
  /** Unloaded p50, A - B in ms: the median over the pairs. */
  unloadedDiffMs: number;
  /** Failed requests over every slot (socket errors, timeouts, answers other than 2xx/3xx). */
  errors: number;
}

/** Which side each slot of pair `index` measures: A B B A for even pairs, B A A B for odd ones. */
export function pairOrder(index: number): Array<0 | 1> {
  return index % 2 === 0 ? [0, 1, 1, 0] : [1, 0, 0, 1];
}

/** The pair's means from its four slots, given in the order `pairOrder(index)` ran them. */
export function pairOf(index: number, slots: readonly SlotResult[]): Pair {
  const order = pairOrder(index);
  const mean = (side: 0 | 1, value: (s: SlotResult) => number) => {
    const mine = slots.filter((_, i) => order[i] === side).map(value);
    return mine.reduce((a, b) => a + b, 0) / mine.length;
  };
  const both = (value: (s: SlotResult) => number): [number, number] => [mean(0, value), mean(1, value)];
  return { rps: both((s) => s.rps), p99Ms: both((s) => s.p99Ms), unloadedP50Ms: both((s) => s.unloadedP50Ms) };
}

export function summarizePairs(contestants: [string, string], measured: Pair[], errors = 0): PairedResult {
  // Rounded first, so that the medians are those of the figures printed and kept.
  const pairs: Pair[] = measured.map((p) => ({
    rps: [round(p.rps[0], 0), round(p.rps[1], 0)],
    p99Ms: [round(p.p99Ms[0]), round(p.p99Ms[1])],
    unloadedP50Ms: [round(p.unloadedP50Ms[0]), round(p.unloadedP50Ms[1])],
  }));
  return {
    contestants,
    pairs,
    rpsRatio: round(median(pairs.map((p) => p.rps[0] / p.rps[1]))),
    p99Ratio: round(median(pairs.map((p) => p.p99Ms[0] / p.p99Ms[1]))),
    unloadedDiffMs: round(median(pairs.map((p) => p.unloadedP50Ms[0] - p.unloadedP50Ms[1]))),
    errors,
  };
}

/**
 * Runs `count` pairs of A and B. In each pair the four loaded slots run back to back, then the four unloaded ones in
 * the same order, as the rounds do, so that the slots a ratio compares ran within seconds of each other.
 */
export async function measurePaired<C extends { key: string }>(
  sides: [C, C],
  count: number,
  slot: { loaded(c: C): Promise<{ rps: number; p99Ms: number; errors: number }>; unloaded(c: C): Promise<{ p50Ms: number; errors: number }> },
  say: (line: string) => void = () => {},
): Promise<PairedResult> {
  const pairs: Pair[] = [];
  let errors = 0;
  for (let i = 0; i < count; i++) {
    const order = pairOrder(i).map((side) => sides[side]);
    const loaded: Array<{ rps: number; p99Ms: number; errors: number }> = [];
    for (const c of order) loaded.push(await slot.loaded(c));
    const unloaded: Array<{ p50Ms: number; errors: number }> = [];
    for (const c of order) unloaded.push(await slot.unloaded(c));
    const failed = [...loaded, ...unloaded].reduce((n, x) => n + x.errors, 0);
    errors += failed;
    const pair = pairOf(i, loaded.map((l, j) => ({ rps: l.rps, p99Ms: l.p99Ms, unloadedP50Ms: unloaded[j]?.p50Ms ?? Number.NaN })));
    pairs.push(pair);
    say(`pair ${i + 1}/${count} ${order.map((c) => c.key).join(' ')}: req/s ${(pair.rps[0] / pair.rps[1]).toFixed(3)}x  p99 ${(pair.p99Ms[0] / pair.p99Ms[1]).toFixed(3)}x  unloaded p50 ${signedMs(pair.unloadedP50Ms[0] - pair.unloadedP50Ms[1])} ms${failed ? `  ERRORS ${failed}` : ''}`);
  }
  return summarizePairs([sides[0].key, sides[1].key], pairs, errors);
}

const signedMs = (ms: number) => `${ms >= 0 ? '+' : ''}${ms.toFixed(3)}`;

/** Each pair's figures and the medians, as a table. */
export function pairedRows(p: PairedResult, title: string): string[][] {
  const [a, b] = p.contestants;
  const cells = (value: (x: Pair) => string) => p.pairs.map(value);
  return [[title, ...p.pairs.map((_, i) => `#${i + 1} ${pairOrder(i).map((s) => 'AB'[s]).join('')}`), 'median'],
    [`req/s, ${a} (A) / ${b} (B)`, ...cells((x) => (x.rps[0] / x.rps[1]).toFixed(3)), p.rpsRatio.toFixed(3)],
    [`p99 loaded, A / B`, ...cells((x) => (x.p99Ms[0] / x.p99Ms[1]).toFixed(3)), p.p99Ratio.toFixed(3)],
    [`unloaded p50, A - B (ms)`, ...cells((x) => signedMs(x.unloadedP50Ms[0] - x.unloadedP50Ms[1])), signedMs(p.unloadedDiffMs)],
    [`req/s of A, B`, ...cells((x) => `${Math.round(x.rps[0])}, ${Math.round(x.rps[1])}`), '']];
}
