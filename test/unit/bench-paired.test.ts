import { describe, expect, it } from 'vitest';
import { measurePaired, pairOrder, pairedRows } from '../../bench/lib/paired.js';

// bench/lib/paired.ts: the bench's targets against the ceiling compare two contestants in adjacent slots, A B B A
// then B A A B. These drive it with slots whose figures follow a made-up clock, no load generator involved.
describe('the bench, adjacent slots', () => {
  type Side = { key: string; speed: number };
  const a: Side = { key: 'library', speed: 1 };
  const b: Side = { key: 'ceiling', speed: 1 };

  /** Slots of a machine whose speed falls by `drift` per slot, in the order they ran. */
  function drifting(drift: number) {
    const ran: string[] = [];
    let slot = 0;
    const machine = () => 1 - drift * slot++;
    return {
      ran,
      slots: {
        loaded: async (c: Side) => {
          ran.push(`${c.key} loaded`);
          const m = machine();
          return { rps: 10_000 * c.speed * m, p99Ms: 2 / (c.speed * m), errors: 0 };
        },
        unloaded: async (c: Side) => {
          ran.push(`${c.key} unloaded`);
          const m = machine();
          return { p50Ms: 0.2 / (c.speed * m) + (c.key === 'library' ? 0.01 : 0), errors: 0 };
        },
      },
    };
  }

  it('runs A B B A, then B A A B, the loaded slots of a pair before its unloaded ones', async () => {
    const { ran, slots } = drifting(0);
    await measurePaired([a, b], 2, slots);
    expect(ran).toEqual([
      'library loaded', 'ceiling loaded', 'ceiling loaded', 'library loaded',
      'library unloaded', 'ceiling unloaded', 'ceiling unloaded', 'library unloaded',
      'ceiling loaded', 'library loaded', 'library loaded', 'ceiling loaded',
      'ceiling unloaded', 'library unloaded', 'library unloaded', 'ceiling unloaded',
    ]);
    expect(pairOrder(0)).toEqual([0, 1, 1, 0]);
    expect(pairOrder(1)).toEqual([1, 0, 0, 1]);
  });

  it('shows two equal contestants as equal on a machine that slows down steadily, where one slot each would not', async () => {
    const { slots } = drifting(0.05);
    const paired = await measurePaired([a, b], 3, slots);
    expect(paired.contestants).toEqual(['library', 'ceiling']);
    expect(paired.rpsRatio).toBeCloseTo(1, 2);
    // One slot each, one after the other, on the same machine: 5 % apart.
    const machine = drifting(0.05).slots;
    const first = await machine.loaded(a);
    const second = await machine.loaded(b);
    expect(first.rps / second.rps).toBeCloseTo(1.053, 3);
    expect(paired.pairs).toHaveLength(3);
    expect(paired.errors).toBe(0);
  });

  it('finds what one side really costs more, through the drift', async () => {
    const { slots } = drifting(0.03);
    const paired = await measurePaired([{ key: 'library', speed: 0.8 }, b], 4, slots);
    expect(paired.rpsRatio).toBeCloseTo(0.8, 2);
    expect(paired.p99Ratio).toBeGreaterThan(1.2);
    expect(paired.unloadedDiffMs).toBeGreaterThan(0.05);
  });

  it('counts the failed requests of every slot', async () => {
    const { slots } = drifting(0);
    const paired = await measurePaired([a, b], 2, { ...slots, loaded: async (c: Side) => ({ ...(await slots.loaded(c)), errors: c.key === 'library' ? 3 : 0 }) });
    expect(paired.errors).toBe(12);
  });

  it('prints each pair and the medians', async () => {
    const { slots } = drifting(0);
    const rows = pairedRows(await measurePaired([a, b], 2, slots), 'library and ceiling in adjacent slots');
    expect(rows[0]).toEqual(['library and ceiling in adjacent slots', '#1 ABBA', '#2 BAAB', 'median']);
    expect(rows[1]).toEqual(['req/s, library (A) / ceiling (B)', '1.000', '1.000', '1.000']);
    expect(rows[3]).toEqual(['unloaded p50, A - B (ms)', '+0.010', '+0.010', '+0.010']);
  });
});
