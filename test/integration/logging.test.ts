import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deadPort, startHarness, TOKEN_SHAPED, type Harness } from '../support/harness.js';

/** A pino logger writing its JSON lines into memory, at `level`. */
function pinoInMemory(level: string): { logger: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      raw.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { logger: pino({ level }, stream), lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('logging with pino, the logger most Node servers use', () => {
  let h: Harness;
  let log: ReturnType<typeof pinoInMemory>;
  let deadUpstream: string;
  beforeAll(async () => {
    log = pinoInMemory('debug');
    deadUpstream = `http://127.0.0.1:${await deadPort()}`;
    h = await startHarness({
      redis: true,
      bff: { logger: log.logger },
      apis: (upstream) => [{ mount: '/api', upstream }, { mount: '/down', upstream: deadUpstream }],
    });
  });
  afterAll(() => h?.close());

  it('tells at debug level what the BFF does: the exchange, its end, and why the session ended, as structured fields', async () => {
    const browser = h.browser();
    await browser.login();
    h.clock.advance(3_600_000);
    expect((await browser.api('/api/items')).status).toBe(200);
    const { body } = await browser.user();
    await browser.request(body.logoutUrl);

    const debug = log.lines().filter((l) => l.level === 20);
    const sessionRef = (debug.find((l) => l.msg === 'Logged in') as { sessionRef: string }).sessionRef;
    expect(sessionRef).toMatch(/^[\w-]{10}$/);
    expect(debug).toEqual(expect.arrayContaining([
      expect.objectContaining({ msg: 'Logged in', sessionRef, sub: 'auth0|alice' }),
      expect.objectContaining({ msg: 'Token exchange started: the access token is expiring', sessionRef, audience: 'https://api.example.test' }),
      expect.objectContaining({ msg: 'Token exchange finished', sessionRef, audience: 'https://api.example.test', durationMs: expect.any(Number), expiresIn: expect.any(Number) }),
      expect.objectContaining({ msg: 'Session ended: the user logged out', reason: 'user', sessions: 1, revoked: true }),
    ]));
  });

  it('logs an upstream that cannot be reached once, as a warning naming the API, the cause and the session', async () => {
    const browser = h.browser();
    await browser.login();
    const before = log.lines().length;
    for (let i = 0; i < 3; i++) expect((await browser.api('/down/items')).status).toBe(502);

    const warnings = log.lines().slice(before).filter((l) => (l.level as number) >= 40);
    expect(warnings).toEqual([
      expect.objectContaining({ level: 40, msg: 'The API could not be reached or did not answer in time', api: '/down', error: 'upstream_unavailable', cause: 'ECONNREFUSED', sessionRef: expect.stringMatching(/^[\w-]{10}$/) }),
    ]);
    expect(h.events.filter((e) => e.name === 'upstream_failed').map((e) => e.payload)).toEqual(
      Array(3).fill({ api: '/down', error: 'upstream_unavailable', cause: 'ECONNREFUSED', sessionRef: warnings[0]?.sessionRef }),
    );
  });

  it('never writes a token, a cookie or a secret', () => {
    const text = JSON.stringify(log.lines());
    expect(text).not.toMatch(TOKEN_SHAPED);
    expect(text).not.toMatch(/bff=|s%3A/);
    expect(text).not.toContain('bff-client-secret');
  });
});

describe('debug lines are off by default', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('with pino at its default level (info)', async () => {
    const log = pinoInMemory('info');
    h = await startHarness({ bff: { logger: log.logger } });
    const browser = h.browser();
    await browser.login();
    h.clock.advance(3_600_000);
    expect((await browser.api('/api/items')).status).toBe(200);
    expect(log.lines().filter((l) => (l.level as number) < 30)).toEqual([]);
  });

  it('with a logger that has no levels of its own, until logLevel says debug', async () => {
    const lines: string[] = [];
    const logger = { debug: (m: string) => void lines.push(m), info: (m: string) => void lines.push(m), warn: () => {}, error: () => {} };
    h = await startHarness({ bff: { logger } });
    await h.browser().login();
    expect(lines).toEqual([]);
    await h.close();

    h = await startHarness({ bff: { logger, logLevel: 'debug' } });
    await h.browser().login();
    expect(lines).toContain('Logged in');
  });
});

describe('a logger or an event listener that throws', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('loses its lines, never an answer: a login and a failed API call go on', async () => {
    const calls: string[] = [];
    const broken = (level: string) => () => {
      calls.push(level);
      throw new Error('the transport is closed');
    };
    const logger = { debug: broken('debug'), info: broken('info'), warn: broken('warn'), error: broken('error') };
    const dead = `http://127.0.0.1:${await deadPort()}`;
    h = await startHarness({ redis: true, bff: { logger, logLevel: 'debug' }, apis: (upstream) => [{ mount: '/api', upstream }, { mount: '/down', upstream: dead }] });
    const browser = h.browser();
    expect((await browser.login()).status).toBe(302);
    expect((await browser.user()).status).toBe(200);
    for (let i = 0; i < 2; i++) {
      const down = await browser.api('/down/x');
      expect(down.status).toBe(502);
      expect(await down.json()).toMatchObject({ error: 'upstream_unavailable' });
    }
    expect(calls).toContain('debug');
    expect(calls).toContain('warn');
  });

  it('is reported, and the BFF and the other listeners go on: the login holds, and a revoked session still ends', async () => {
    const lines: Array<{ message: string; details: Record<string, unknown> | undefined }> = [];
    const log = (message: string, details?: Record<string, unknown>) => void lines.push({ message, details });
    h = await startHarness({ redis: true, bff: { logger: { debug: () => {}, info: () => {}, warn: log, error: log } } });
    const events = h.bffs[0]!.events;
    for (const name of ['login', 'refresh_failed', 'logout'] as const) events.on(name, () => { throw new Error(`secret-looking ${name} failure`); });
    const heard: string[] = [];
    events.on('logout', ({ reason }) => void heard.push(reason));

    const browser = h.browser();
    expect((await browser.login()).status).toBe(302);
    expect((await browser.user()).status).toBe(200);
    await h.auth0.admin.endSession({ sub: 'auth0|alice' });
    h.clock.advance(3_600_000);
    const call = await browser.api('/api/items');
    expect(call.status).toBe(401);
    expect(await call.json()).toMatchObject({ error: 'session_ended' });
    expect((await browser.user()).status).toBe(401);
    expect(heard).toEqual(['session_ended']);
    const reported = lines.filter((l) => l.message.startsWith('A listener of a BFF event threw'));
    expect(reported.map((l) => l.details)).toEqual(['login', 'refresh_failed', 'logout'].map((event) => ({ event, error: 'Error' })));
    expect(JSON.stringify(lines)).not.toContain('secret-looking');

    // A listener that fails on every event (its database down) is logged once, then counted: ten more logins.
    for (let i = 0; i < 10; i++) expect((await h.browser().login()).status).toBe(302);
    expect(lines.filter((l) => l.message.startsWith('A listener of a BFF event threw') && l.details?.event === 'login')).toHaveLength(1);
  });
});
