import { createHmac, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
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

describe('the idle expiry a touching read of the whole record answers (/auth/user, getUser, the session list)', () => {
  const SECRET = 'a-session-secret-of-at-least-32-characters';
  const IDLE_MS = 10 * 60_000;
  let now: number;
  let backend: SessionBackend;
  let sessions: Sessions;
  let warnings: string[];
  let cookieName: string;

  beforeEach(() => {
    now = Date.parse('2026-12-04T10:00:00Z');
    warnings = [];
    const config = validateOptions({
      issuer: 'https://tenant.example/', clientId: 'bff', clientSecret: 'secret', audience: 'https://api.example.test',
      baseURL: 'https://app.example', session: { secrets: [SECRET], idleTimeout: IDLE_MS / 1000 }, clock: () => now,
      logger: { warn: (message: string) => void warnings.push(message), error() {} },
    });
    cookieName = config.session.cookieName;
    backend = createMemoryBackend(plainCipher, DAY, () => now);
    sessions = new Sessions(config, backend, new Reporter(new BffEventEmitter(), config.logger));
  });
  afterEach(async () => {
    sessions.close();
    await backend.close();
  });

  /** A session logged in at `now`, and a request carrying its cookie as express-session signs it. */
  async function loggedIn(): Promise<{ id: string; req: IncomingMessage }> {
    const id = randomUUID();
    await backend.createRecord(id, {
      sub: 'auth0|alice', sid: SID, createdAt: now, absoluteExpiresAt: now + DAY, idleExpiresAt: now + IDLE_MS,
      lastActiveAt: now, userAgent: undefined, logoutId: randomUUID(), refreshToken: 'ORT-1', idToken: undefined,
      scope: undefined, claims: { sub: 'auth0|alice' }, accessTokens: {},
    });
    const signature = createHmac('sha256', SECRET).update(id).digest('base64').replace(/=+$/, '');
    return { id, req: { headers: { cookie: `${cookieName}=${encodeURIComponent(`s:${id}.${signature}`)}` } } as IncomingMessage };
  }

  it('answers the expiry the request rolled the store\'s to', async () => {
    const { id, req } = await loggedIn();
    now += 5 * 60_000;
    const { record } = await sessions.loadRecord(req);
    expect(record.idleExpiresAt).toBe(now + IDLE_MS);
    expect(record.lastActiveAt).toBe(now);
    expect((await backend.readRecord(id))?.idleExpiresAt).toBe(now + IDLE_MS);
  });

  it('answers the expiry the store still has when the roll fails, and logs the failure: nobody is logged out', async () => {
    const { id, req } = await loggedIn();
    const loggedInUntil = now + IDLE_MS;
    backend.touch = () => Promise.reject(new BffError(ErrorCode.SESSION_STORE_UNAVAILABLE, 'no answer in time'));
    now += 5 * 60_000;
    const { record } = await sessions.loadRecord(req);
    expect(record.idleExpiresAt).toBe(loggedInUntil);
    expect((await backend.readRecord(id))?.idleExpiresAt).toBe(loggedInUntil);
    expect(warnings).toEqual([expect.stringMatching(/session store failed/i)]);
  });
});
