import { afterEach, describe, expect, it, vi } from 'vitest';
import { RecordWatches, type RecordWatch } from '../../src/session/record-watch.js';

const HOUR = 3_600_000;

/** Whether `next()` answers before a macrotask runs: it does at once for a change already heard. */
const settlesAtOnce = (watch: RecordWatch) =>
  Promise.race([watch.next(HOUR).then(() => true), new Promise<boolean>((r) => setImmediate(r, false))]);

describe('watches of stored records', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('wakes a waiting watch when its record changes, and keeps a change heard between two waits for the next one', async () => {
    const watches = new RecordWatches();
    const watch = watches.watch('a');
    const waiting = watch.next(HOUR);
    watches.changed('a');
    // `true`: the record changed (as opposed to a wait that ran out).
    expect(await waiting).toBe(true);
    watches.changed('a');
    expect(await settlesAtOnce(watch)).toBe(true);
    watches.changed('a');
    expect(await watch.next(HOUR)).toBe(true);
    // That change is used up: the next wait waits.
    expect(await settlesAtOnce(watch)).toBe(false);
    watch.stop();
  });

  it('wakes only the watches of the record that changed, and all of them when the store cannot say which', async () => {
    const watches = new RecordWatches();
    const [a1, a2, b] = [watches.watch('a'), watches.watch('a'), watches.watch('b')];
    let bWoken = false;
    const bWaiting = b.next(HOUR).then(() => (bWoken = true));
    watches.changed('a');
    expect(await settlesAtOnce(a1)).toBe(true);
    expect(await settlesAtOnce(a2)).toBe(true);
    expect(bWoken).toBe(false);
    watches.changed(undefined);
    await bWaiting;
    for (const watch of [a1, a2]) expect(await settlesAtOnce(watch)).toBe(true);
    for (const watch of [a1, a2, b]) watch.stop();
  });

  it('gives up a wait after its timeout when nothing changes', async () => {
    vi.useFakeTimers();
    const watches = new RecordWatches();
    const watch = watches.watch('a');
    let settled: boolean | undefined;
    void watch.next(250).then((changed) => (settled = changed));
    await vi.advanceTimersByTimeAsync(249);
    expect(settled).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(settled).toBe(false);
    watch.stop();
  });

  it('ends a pending wait when the watch stops, and hears nothing after', async () => {
    const watches = new RecordWatches();
    const watch = watches.watch('a');
    const waiting = watch.next(HOUR);
    watch.stop();
    expect(await waiting).toBe(false);
    watches.changed('a');
    expect(await settlesAtOnce(watch)).toBe(false);
    watch.stop();
  });
});
