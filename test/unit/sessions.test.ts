import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { validateOptions } from '../../src/config/validate.js';
import { BffError, ErrorCode } from '../../src/errors.js';
import { BffEventEmitter, type BffEvents } from '../../src/events/events.js';
import { Reporter } from '../../src/events/reporter.js';
import type { SessionBackend } from '../../src/session/backend.js';
import { plainCipher } from '../../src/session/encryption.js';
import { createMemoryBackend } from '../../src/session/memory-backend.js';
import { Sessions } from '../../src/session/sessions.js';

const DAY = 24 * 60 * 60 * 1000;
const SID = 'auth0-sid-1';

describe('a logout the store did not take, retried in the background', () => {
  let backend: SessionBackend;
  let sessions: Sessions;
  let logouts: Array<BffEvents['logout'][0]>;

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const config = validateOptions({
      issuer: 'https://tenant.example/', clientId: 'bff', clientSecret: 'secret', audience: 'https://api.example.test',
      baseURL: 'https://app.example', session: { secrets: ['a-session-secret-of-at-least-32-characters'] }, logger: { warn() {}, error() {} },
    });
    backend = createMemoryBackend(plainCipher, DAY, Date.now);
    const events = new BffEventEmitter();
    logouts = [];
    events.on('logout', (payload) => void logouts.push(payload));
    sessions = new Sessions(config, backend, new Reporter(events, config.logger));
  });
  afterEach(async () => {
    sessions.close();
    await backend.close();
    vi.useRealTimers();
  });

  /** Two BFF sessions of one Auth0 session (one browser that logged in again, or SSO). */
  async function twoSessions(): Promise<[string, string]> {
    const ids: [string, string] = [randomUUID(), randomUUID()];
    for (const id of ids) {
      await backend.createRecord(id, {
        sub: 'auth0|alice', sid: SID, createdAt: Date.now(), absoluteExpiresAt: Date.now() + DAY, idleExpiresAt: Date.now() + DAY,
        lastActiveAt: Date.now(), userAgent: undefined, logoutId: randomUUID(), refreshToken: 'ORT-1', idToken: undefined,
        scope: undefined, claims: { sub: 'auth0|alice' }, accessTokens: {},
      });
    }
    return ids;
  }

  it('reports the named session as ended by it when the store ran the first attempt without answering', async () => {
    const [id] = await twoSessions();
    // The first attempt ran (its answer never came): the session is gone, and nobody reported it.
    await backend.destroy([id]);
    sessions.endLater({ id, sub: 'auth0|alice', sid: SID }, 'user', { revoked: true });
    await vi.advanceTimersByTimeAsync(1_000);
    // It ended the Auth0 session's other BFF session too: one logout, its two sessions.
    expect(logouts).toEqual([expect.objectContaining({ reason: 'user', sessions: 2, revoked: true })]);
  });

  it('reports nothing more when another logout ended the session meanwhile (the back-channel logout of the revocation)', async () => {
    const [id] = await twoSessions();
    sessions.endLater({ id, sub: 'auth0|alice', sid: SID }, 'user', { revoked: true });
    // Before the retry, the store answers again and Auth0's back-channel logout ends both sessions.
    expect(await sessions.endEventually({ sub: 'auth0|alice', sid: SID }, 'backchannel')).toBe(true);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(logouts).toEqual([expect.objectContaining({ reason: 'backchannel', sessions: 2 })]);
  });

  it('reports nothing more when the back-channel logout ended the session before the retry was set (during the revocation)', async () => {
    const [id] = await twoSessions();
    const destroy = backend.destroy.bind(backend);
    backend.destroy = () => Promise.reject(new BffError(ErrorCode.SESSION_STORE_UNAVAILABLE, 'no answer in time'));
    // The logout's own end fails: the route goes on to revoke the ORT at Auth0...
    await expect(sessions.end({ id, sub: 'auth0|alice', sid: SID })).rejects.toThrow('no answer in time');
    backend.destroy = destroy;
    // ...whose back-channel logout arrives while the revocation is answered, and ends both sessions...
    expect(await sessions.endEventually({ sub: 'auth0|alice', sid: SID }, 'backchannel')).toBe(true);
    // ...and only then does the route hand its end to the background.
    sessions.endLater({ id, sub: 'auth0|alice', sid: SID }, 'user', { revoked: true });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(logouts).toEqual([expect.objectContaining({ reason: 'backchannel', sessions: 2 })]);
  });

  it('keeps retrying while the store still fails, and reports once it answers', async () => {
    const [id] = await twoSessions();
    const destroy = backend.destroy.bind(backend);
    let failing = true;
    backend.destroy = (ids) => (failing ? Promise.reject(new BffError(ErrorCode.SESSION_STORE_UNAVAILABLE, 'down')) : destroy(ids));
    sessions.endLater({ id, sub: 'auth0|alice', sid: SID }, 'user', { revoked: true });
    await vi.advanceTimersByTimeAsync(2_000);
    expect(logouts).toEqual([]);
    failing = false;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(logouts).toEqual([expect.objectContaining({ reason: 'user', sessions: 2 })]);
  });
});
