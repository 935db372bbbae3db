import { describe, expect, it } from 'vitest';
import { BffError, ErrorCode } from '../../src/errors.js';
import { BffEventEmitter, type BffEventName } from '../../src/events/events.js';
import { createLog } from '../../src/events/logger.js';
import { RepeatFilter } from '../../src/events/repeats.js';
import { Reporter } from '../../src/events/reporter.js';
import { SessionWatch } from '../../src/realtime/session-watch.js';
import { waitFor } from '../support/harness.js';

/** A reporter whose log lines and events are kept, with a short window for repeated faults. */
function reporter(windowMs = 10_000) {
  const lines: Array<{ level: string; message: string; details: Record<string, unknown> | undefined }> = [];
  const line = (level: string) => (message: string, details?: Record<string, unknown>) => void lines.push({ level, message, details });
  const events = new BffEventEmitter();
  const emitted: Array<{ name: BffEventName; payload: unknown }> = [];
  for (const name of ['logout', 'store_failed', 'upstream_failed'] as const) events.on(name, (payload: unknown) => void emitted.push({ name, payload }));
  const log = createLog({ debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') }, 'debug');
  return { report: new Reporter(events, log, undefined, new RepeatFilter(windowMs)), lines, emitted };
}

describe('the reporter', () => {
  it('logs a fault that repeats once, then how many more there were, with every one an event', async () => {
    const { report, lines, emitted } = reporter(50);
    const down = new BffError(ErrorCode.SESSION_STORE_UNAVAILABLE, 'The session store failed.', { cause: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }) });
    for (let i = 0; i < 3; i++) report.requestFailed(down, { operation: 'api', sessionRef: 'abc123' });
    expect(emitted).toHaveLength(3);
    expect(lines).toEqual([{ level: 'warn', message: 'The session store failed; the request got 503 and nobody was logged out', details: { operation: 'api', cause: 'ECONNREFUSED', sessionRef: 'abc123' } }]);
    await waitFor(() => lines.length === 2, 'the repeats are summarised');
    expect(lines[1]).toEqual({ level: 'warn', message: expect.stringMatching(/\(2 more like it in the last 10 s\)$/), details: expect.objectContaining({ repeated: 2 }) });
    report.close();
  });

  it('reports no logout for a logout that found no session left to end', () => {
    const { report, lines, emitted } = reporter();
    report.logout('backchannel', { sessions: 0, sub: 'auth0|alice', sid: 'sid-1' });
    report.logout('user', { sessions: 1, sub: 'auth0|alice', sid: 'sid-1' }, { revoked: true });
    expect(emitted).toEqual([{ name: 'logout', payload: { reason: 'user', sub: 'auth0|alice', sid: 'sid-1', sessions: 1, revoked: true } }]);
    expect(lines.map((l) => l.message)).toEqual(['Logout found no session left to end: it ended already', 'Session ended: the user logged out']);
  });

  it('does not log a configuration error a second time when it is answered', () => {
    const { report, lines } = reporter();
    const error = report.configurationError('The BFF could not renew the access token because of its configuration.');
    report.requestFailed(error, { operation: 'api' });
    report.requestFailed(new BffError(ErrorCode.CONFIGURATION_ERROR, 'Something else is misconfigured.'), { operation: 'api' });
    expect(lines).toEqual([{ level: 'error', message: 'Something else is misconfigured.', details: { operation: 'api' } }]);
  });
});

describe('the BFF\'s event emitter', () => {
  it('reports an async listener whose promise rejects, as one that throws, and runs the next one', async () => {
    const events = new BffEventEmitter();
    const failed: Array<[BffEventName, unknown]> = [];
    events.listenerFailed = (name, error) => void failed.push([name, error]);
    const heard: string[] = [];
    events.on('login', async () => {
      throw new Error('the audit database is down');
    });
    events.on('login', ({ sub }) => void heard.push(sub));
    expect(events.emit('login', { sub: 'auth0|alice', sid: 'sid-1', sessionRef: 'ref' })).toBe(true);
    expect(heard).toEqual(['auth0|alice']);
    await waitFor(() => failed.length === 1, 'the rejection is reported');
    expect(failed[0]?.[0]).toBe('login');
    expect((failed[0]?.[1] as Error).message).toBe('the audit database is down');
  });
});

describe('the lifetime watch of sessions with open connections, while the store is down', () => {
  it('reports each failure as a store failure, logged once by its cause and never by its message', async () => {
    const { report, lines, emitted } = reporter();
    const now = 1_000_000;
    const config = { clock: () => now, logger: { warn() {}, error() {} }, session: { idleTimeoutMs: 600_000 } } as never;
    // A message that could carry anything: here, a password.
    const down = Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:6379 (AUTH default s3cr3t-redis-password)'), { code: 'ECONNREFUSED' });
    const sessions = { backend: { readView: async () => { throw down; }, touch: async () => { throw down; } } } as never;
    const watched = Array.from({ length: 200 }, (_, i) => ({
      id: `session-${i}`, digest: `d${i}`, audience: 'a', absoluteExpiresAt: now + 1e9, idleExpiresAt: now + 1e9, lastActiveAt: now - 1e9, checking: false, retryAt: 0, members: new Set(),
    }));
    const watch = new SessionWatch(config, sessions, { sessions: () => watched.values(), size: watched.length, end() {} } as never, report);
    watch.checkAll();
    for (const session of watched) watch.activity(session as never);
    await waitFor(() => emitted.filter((e) => e.name === 'store_failed').length === 400, 'every failure to be reported');
    // One line per kind of failure, by its cause; the other 398 are counted in the summary line that comes later.
    const warned = lines.filter((l) => l.level === 'warn');
    expect(warned.map((l) => l.details?.operation).sort()).toEqual(['idle_roll', 'websocket']);
    // No request was answered for them: the line says the work is tried again, not that a request got 503.
    for (const line of warned) expect(line).toMatchObject({ message: 'The session store failed in background work, which is tried again later; nobody was logged out', details: { cause: 'ECONNREFUSED' } });
    expect(JSON.stringify([lines, emitted])).not.toContain('s3cr3t');
    report.close();
  });
});
