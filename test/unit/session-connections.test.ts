import { afterEach, describe, expect, it, vi } from 'vitest';
import { rememberEndedMs, SessionConnections, sessionDigest } from '../../src/realtime/registry.js';
import type { LoadedSession } from '../../src/session/sessions.js';

const session = (id: string): LoadedSession => ({
  id,
  view: { sub: 'user', sid: 'sid', absoluteExpiresAt: Date.now() + 3_600_000, idleExpiresAt: Date.now() + 600_000, lastActiveAt: Date.now() } as LoadedSession['view'],
});
const member = () => ({ closed: [] as number[], close(code: number) { this.closed.push(code); } });

describe('the open connections of each session', () => {
  afterEach(() => void vi.useRealTimers());

  it('closes a session\'s connections when it ends, and refuses one that registers just after', () => {
    const connections = new SessionConnections(() => {});
    const open = member();
    expect(connections.track(session('a'), 'api', open)).toBeDefined();
    connections.end([sessionDigest('a')]);
    expect(open.closed).toEqual([4401]);
    expect(connections.track(session('a'), 'api', member())).toBeUndefined();
    expect(connections.track(session('b'), 'api', member())).toBeDefined();
    connections.closeAll(1001, 'bff_closing');
  });

  it('forgets ended sessions after a minute, also when no other session ends after them', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const connections = new SessionConnections(() => {});
    connections.end(Array.from({ length: 1_000 }, (_, i) => sessionDigest(`s${i}`)));
    vi.advanceTimersByTime(30_000);
    connections.end([sessionDigest('late')]);
    expect(connections.endedRemembered).toBe(1_001);

    // Nothing ends any more: the first thousand go once they are a minute old, the last one a little later.
    vi.advanceTimersByTime(31_500);
    expect(connections.endedRemembered).toBe(1);
    expect(connections.track(session('late'), 'api', member())).toBeUndefined();
    vi.advanceTimersByTime(30_000);
    expect(connections.endedRemembered).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('how long ended sessions are remembered', () => {
  afterEach(() => void vi.useRealTimers());

  it('a minute, or as long as the slowest API may take to begin its answer, with the exchange before it', () => {
    expect(rememberEndedMs([30_000], 5_000)).toBe(60_000);
    expect(rememberEndedMs([], 5_000)).toBe(60_000);
    expect(rememberEndedMs([30_000, 300_000], 5_000)).toBe(310_000);
  });

  it('refuses a long response of an ended session that registers two minutes after its end, behind an API that may take five', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const connections = new SessionConnections(() => {}, rememberEndedMs([300_000], 5_000));
    connections.end([sessionDigest('a')]);
    vi.advanceTimersByTime(120_000);
    expect(connections.track(session('a'), 'api', member())).toBeUndefined();
    vi.advanceTimersByTime(200_000);
    expect(connections.endedRemembered).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});
