import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, request, type ServerResponse } from 'node:http';
import { createServer } from 'node:net';
import express from 'express';
import session from 'express-session';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketCloseCode } from '../../src/index.js';
import { createClient } from 'redis';
import { AUDIENCE, REDIS_CLIENT_MODES, SESSION_SECRET, startHarness, waitFor, type Browser, type Harness } from '../support/harness.js';
import { openSocket, opened, roundTrip, socketHeldByInstance1 } from '../support/ws-client.js';

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('WebSockets through the BFF', () => {
  let h: Harness;
  beforeAll(async () => {
    const down = await closedPort();
    h = await startHarness({
      redis: true,
      apis: (upstream) => [
        { mount: '/api', upstream },
        { mount: '/down', upstream: `http://127.0.0.1:${down}` },
        { mount: '/slow', upstream, timeout: 300 },
        { mount: '/plain', upstream, websocket: false },
      ],
    });
  });
  afterAll(() => h?.close());

  it('forwards the handshake with a fresh access token and no cookies, and frames both ways unchanged', async () => {
    const browser = h.browser();
    await browser.login();
    const socket = opened(await openSocket(browser, '/api/live?room=1', { protocols: ['chat.v1'] }));
    expect(socket.ws.protocol).toBe('chat.v1');

    const handshake = h.upstream.upgrades.at(-1);
    expect(handshake?.url).toBe('/live?room=1');
    expect(handshake?.headers.cookie).toBeUndefined();
    const token = String(handshake?.headers.authorization).replace(/^Bearer /, '');
    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(`${h.auth0.issuer}.well-known/jwks.json`)), { audience: AUDIENCE, issuer: h.auth0.issuer });
    expect(payload.sub).toBe('auth0|alice');
    expect(handshake?.headers['x-forwarded-prefix']).toBe('/api');
    // The browser's answer carries nothing of the token.
    expect(JSON.stringify(socket.headers)).not.toContain(token);

    expect(await roundTrip(socket, 'hello')).toEqual({ data: Buffer.from('hello'), binary: false });
    const big = randomBytes(300_000);
    const echoed = await roundTrip(socket, big);
    expect(echoed.binary).toBe(true);
    expect(echoed.data.equals(big)).toBe(true);
    expect((await roundTrip(socket, '')).data.length).toBe(0);
    // Control frames pass through too: a ping from the browser is answered by the upstream.
    const pong = new Promise<Buffer>((resolve) => socket.ws.once('pong', resolve));
    socket.ws.ping('are you there');
    expect((await pong).toString()).toBe('are you there');

    socket.ws.close(4000, 'bye');
    expect((await socket.closed).code).toBe(4000);
    await waitFor(() => h.upstream.sockets.at(-1)?.closeCode === 4000, 'the upstream sees the browser\'s close code');
  });

  it('passes compressed frames through when the browser and the upstream agree on permessage-deflate', async () => {
    const browser = h.browser();
    await browser.login();
    const socket = opened(await openSocket(browser, '/api/deflate'));
    expect(socket.ws.extensions).toContain('permessage-deflate');
    const text = 'compress me '.repeat(10_000);
    expect((await roundTrip(socket, text)).data.toString()).toBe(text);
    socket.ws.close();
  });

  it('answers 503 JSON with Retry-After when the token cannot be renewed, and keeps the session', async () => {
    const browser = h.browser();
    await browser.login();
    h.clock.advance(61_000);
    h.auth0.admin.failTokenEndpoint({ status: 503 });
    try {
      const answer = await openSocket(browser, '/api/live');
      expect(answer).toMatchObject({ kind: 'refused', status: 503 });
      if (answer.kind !== 'refused') return;
      expect(JSON.parse(answer.body).error).toBe('token_service_unavailable');
      expect(answer.headers['retry-after']).toMatch(/^\d+$/);
    } finally {
      h.auth0.admin.reset();
    }
    expect((await browser.user()).status).toBe(200);
  });

  it('exchanges once for sockets opened at once with an expiring token', async () => {
    const browser = h.browser();
    await browser.login();
    h.clock.advance(61_000);
    const before = h.auth0.admin.counts().token.refresh_token?.ok ?? 0;
    const sockets = (await Promise.all(Array.from({ length: 5 }, () => openSocket(browser, '/api/live')))).map(opened);
    expect((h.auth0.admin.counts().token.refresh_token?.ok ?? 0) - before).toBe(1);
    const tokens = new Set(h.upstream.upgrades.slice(-5).map((u) => u.headers.authorization));
    expect(tokens.size).toBe(1);
    for (const s of sockets) s.ws.close();
  });

  it('refuses a handshake without a session with 401 JSON, before any upgrade', async () => {
    const before = h.upstream.upgrades.length;
    const answer = await openSocket(h.browser(), '/api/live');
    expect(answer).toMatchObject({ kind: 'refused', status: 401 });
    if (answer.kind !== 'refused') return;
    expect(JSON.parse(answer.body)).toMatchObject({ error: 'login_required' });
    expect(answer.headers['cache-control']).toBe('no-store');
    expect(h.upstream.upgrades.length).toBe(before);
  });

  it('refuses a handshake from another origin, or without one, with 403 JSON (cross-site WebSocket hijacking)', async () => {
    const browser = h.browser();
    await browser.login();
    const before = h.upstream.upgrades.length;
    for (const origin of ['https://evil.example', 'http://127.0.0.1:1', 'null', null]) {
      const answer = await openSocket(browser, '/api/live', { origin });
      expect(answer, String(origin)).toMatchObject({ kind: 'refused', status: 403 });
      if (answer.kind === 'refused') expect(JSON.parse(answer.body).error).toBe('csrf_required');
    }
    expect(h.upstream.upgrades.length).toBe(before);
  });

  it('refuses a bad path or a mount without WebSockets, and leaves other URLs alone', async () => {
    const browser = h.browser();
    await browser.login();
    const bad = await openSocket(browser, '/api/%2e%2e/admin');
    expect(bad).toMatchObject({ kind: 'refused', status: 400 });
    const off = await openSocket(browser, '/plain/live');
    expect(off).toMatchObject({ kind: 'refused', status: 400 });
    expect(h.bffs[0]?.handleUpgrade(Object.assign(Object.create(null), { url: '/elsewhere', headers: {} }), undefined as never, Buffer.alloc(0))).toBe(false);
  });

  it('serves a request that asks for another protocol (Upgrade: h2c) as a plain request, a page and an API call alike', async () => {
    const browser = h.browser();
    await browser.login();
    const { hostname, port } = new URL(browser.url);
    // What `curl --http2 http://...` and Java's HttpClient send: a plain request the server may answer as one.
    const ask = (path: string, headers: Record<string, string> = {}) => new Promise<{ status: number; body: string }>((resolve, reject) => {
      request({
        hostname, port, path, agent: false,
        headers: { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAARAAAAAAAIAAAAA', ...headers },
      })
        .on('upgrade', (res, socket) => {
          socket.destroy();
          resolve({ status: res.statusCode ?? 0, body: '' });
        })
        .on('response', (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (chunk) => (body += chunk)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        })
        .on('error', reject)
        .end();
    });
    const page = await ask('/');
    const call = await ask('/api/items?from=h2c', { cookie: browser.jar.header(browser.url) ?? '', 'x-csrf': '1' });
    if (typeof (createHttpServer() as { shouldUpgradeCallback?: unknown }).shouldUpgradeCallback === 'function') {
      expect(page).toEqual({ status: 200, body: 'home' });
      expect(call.status).toBe(200);
      const forwarded = h.upstream.requests.at(-1);
      expect(forwarded?.url).toBe('/items?from=h2c');
      expect(forwarded?.headers).not.toHaveProperty('upgrade');
      expect(forwarded?.headers).not.toHaveProperty('http2-settings');
      expect(forwarded?.headers.authorization).toMatch(/^Bearer /);
    } else {
      // Node 20 has no way for a server to decline an upgrade: once anyone listens, every one is an upgrade.
      expect(page.status).toBe(400);
      expect(JSON.parse(page.body)).toMatchObject({ error: 'invalid_request' });
      expect(call.status).toBe(400);
    }
  });

  it('closes the sockets of the session that a new login in the same browser replaces (a shared computer)', async () => {
    const browser = h.browser();
    await browser.login();
    const socket = opened(await openSocket(browser, '/api/live'));
    expect((await roundTrip(socket, 'before')).data.toString()).toBe('before');
    const cookie = browser.jar.get(browser.url, 'bff');
    expect((await browser.login()).status).toBe(302);
    expect(browser.jar.get(browser.url, 'bff')).not.toBe(cookie);

    expect(await socket.closed).toMatchObject({ code: WebSocketCloseCode.SESSION_ENDED });
    expect((await browser.user()).status).toBe(200);
  });

  it('takes a handshake whose target is in absolute form (RFC 9112 3.2.2) by its path, as API calls are', async () => {
    const browser = h.browser();
    await browser.login();
    const { hostname, port } = new URL(browser.url);
    const status = await new Promise<number>((resolve, reject) => {
      request({
        hostname, port, path: `${browser.url}/api/live?room=1`, agent: false,
        headers: {
          connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13',
          'sec-websocket-key': randomBytes(16).toString('base64'), origin: browser.url, cookie: browser.jar.header(browser.url) ?? '',
        },
      })
        .on('upgrade', (res, socket) => {
          socket.destroy();
          resolve(res.statusCode ?? 0);
        })
        .on('response', (res) => resolve(res.statusCode ?? 0))
        .on('error', reject)
        .end();
    });
    expect(status).toBe(101);
    expect(h.upstream.upgrades.at(-1)?.url).toBe('/live?room=1');
  });

  it('closes every socket of the session with 4401 when the user logs out, and tells the upstream the same', async () => {
    const browser = h.browser();
    await browser.login();
    const sockets = (await Promise.all([openSocket(browser, '/api/a'), openSocket(browser, '/api/b')])).map(opened);
    const other = h.browser();
    await other.login();
    const bystander = opened(await openSocket(other, '/api/c'));
    const upstreamSockets = h.upstream.sockets.slice(-3, -1);
    const failures = () => h.events.filter((e) => e.name === 'upstream_failed').length;
    const failuresBefore = failures();

    const { body } = await browser.user();
    const started = performance.now();
    await browser.request(body.logoutUrl);
    const closes = await Promise.all(sockets.map((s) => s.closed));
    for (const close of closes) expect(close).toMatchObject({ code: WebSocketCloseCode.SESSION_ENDED, reason: 'session_ended' });
    console.log(`[websocket] closed ${Math.round(Math.max(...closes.map((c) => c.at)) - started)} ms after the logout request was sent (same instance)`);
    expect(Math.max(...closes.map((c) => c.at)) - started).toBeLessThan(5_000);
    await waitFor(() => upstreamSockets.every((s) => s.closeCode === WebSocketCloseCode.SESSION_ENDED), 'the upstream sees 4401');
    // Another user's socket is untouched.
    expect((await roundTrip(bystander, 'still here')).data.toString()).toBe('still here');
    // And the browser cannot open a new one.
    expect(await openSocket(browser, '/api/a')).toMatchObject({ kind: 'refused', status: 401 });
    // Sockets the BFF closed are no failure of the upstream's.
    expect(failures()).toBe(failuresBefore);
  });

  it('closes at a back-channel logout, and when an exchange finds the Auth0 session revoked', async () => {
    const browser = h.browser();
    await browser.login();
    const first = opened(await openSocket(browser, '/api/live'));
    await h.auth0.admin.endSession({ sub: 'auth0|alice' }, { backchannel: true });
    expect((await first.closed).code).toBe(WebSocketCloseCode.SESSION_ENDED);

    await browser.login();
    const second = opened(await openSocket(browser, '/api/live'));
    await h.auth0.admin.endSession({ sub: 'auth0|alice' }, { backchannel: false });
    // Nothing tells the BFF yet; the next exchange does (an API call once the token expired).
    h.clock.advance(61_000);
    expect((await browser.api('/api/items')).status).toBe(401);
    expect((await second.closed).code).toBe(WebSocketCloseCode.SESSION_ENDED);
  });

  it('closes the browser\'s socket with 1014 when the upstream refuses the handshake, cannot be reached, or does not answer', async () => {
    const browser = h.browser();
    await browser.login();
    h.upstream.upgradeHandler = (_req, socket) => {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    };
    try {
      const refused = opened(await openSocket(browser, '/api/nothing-here', { protocols: ['chat.v1'] }));
      expect(await refused.closed).toMatchObject({ code: WebSocketCloseCode.UPSTREAM_FAILED, reason: 'upstream_refused 404' });
      h.upstream.upgradeHandler = () => {};
      const slow = opened(await openSocket(browser, '/slow/live'));
      expect(await slow.closed).toMatchObject({ code: 1014, reason: 'upstream_timeout' });
    } finally {
      h.upstream.upgradeHandler = undefined;
    }
    const down = opened(await openSocket(browser, '/down/live'));
    expect(await down.closed).toMatchObject({ code: 1014, reason: 'upstream_unavailable' });
    // Reported as an API call's failure is; an upstream that answers (404) has answered, and is not a failure.
    const failed = h.events.filter((e) => e.name === 'upstream_failed').map((e) => e.payload);
    expect(failed).toEqual(expect.arrayContaining([
      { api: '/slow', error: 'upstream_timeout', cause: 'no_answer', sessionRef: expect.stringMatching(/^[\w-]{10}$/) },
      { api: '/down', error: 'upstream_unavailable', cause: 'ECONNREFUSED', sessionRef: expect.stringMatching(/^[\w-]{10}$/) },
    ]));
    expect(failed.filter((payload) => (payload as { api: string }).api === '/api')).toEqual([]);
    expect(h.logs.some((line) => line.startsWith('warn The API could not be reached') && line.includes('"api":"/down"'))).toBe(true);
  });

  it('lets go of the upstream\'s connection as soon as it refuses the handshake, also when its answer\'s body never ends', async () => {
    const browser = h.browser();
    await browser.login();
    let upstreamEnded!: Promise<void>;
    h.upstream.upgradeHandler = (_req, socket) => {
      upstreamEnded = new Promise((resolve) => socket.once('end', resolve));
      socket.write('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    };
    try {
      const refused = opened(await openSocket(browser, '/api/live'));
      expect(await refused.closed).toMatchObject({ code: WebSocketCloseCode.UPSTREAM_FAILED, reason: 'upstream_refused 403' });
      // The BFF's end of that connection closes: the upstream reads its end (it would wait for the BFF's timeout
      // otherwise, which was over, or for ever).
      await upstreamEnded;
    } finally {
      h.upstream.upgradeHandler = undefined;
    }
  });

  it('closes the browser\'s socket with 1014 when the upstream breaks off without a close frame', async () => {
    const browser = h.browser();
    await browser.login();
    h.upstream.onSocket = (ws) => ws.on('message', () => (ws as unknown as { _socket: { destroy(): void } })._socket.destroy());
    try {
      const socket = opened(await openSocket(browser, '/api/live'));
      const before = h.events.filter((e) => e.name === 'upstream_failed').length;
      socket.ws.send('break');
      expect(await socket.closed).toMatchObject({ code: 1014, reason: 'upstream_unavailable' });
      expect(h.events.filter((e) => e.name === 'upstream_failed').slice(before).map((e) => e.payload)).toEqual([
        expect.objectContaining({ api: '/api', error: 'upstream_unavailable', broken: true }),
      ]);
    } finally {
      h.upstream.onSocket = undefined;
    }
  });

  it('cuts the browser\'s connection (1006) when the upstream breaks off in the middle of a frame', async () => {
    const browser = h.browser();
    await browser.login();
    h.upstream.onSocket = (ws) => ws.on('message', () => {
      const raw = (ws as unknown as { _socket: { write(b: Buffer): void; destroy(): void } })._socket;
      // A binary frame announcing 4,096 bytes, of which 3 come.
      raw.write(Buffer.from([0x82, 0x7e, 0x10, 0x00, 1, 2, 3]));
      setTimeout(() => raw.destroy(), 50);
    });
    try {
      const socket = opened(await openSocket(browser, '/api/live'));
      socket.ws.send('break');
      expect((await socket.closed).code).toBe(1006);
    } finally {
      h.upstream.onSocket = undefined;
    }
  });

  it('renews the token once when the upstream rejects it at the handshake', async () => {
    const browser = h.browser();
    await browser.login();
    let rejected = 0;
    h.upstream.upgradeHandler = (req, socket, head) => {
      h.upstream.upgradeHandler = undefined;
      rejected++;
      void req;
      void head;
      socket.end('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer error="invalid_token"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    };
    const before = h.auth0.admin.counts().token.refresh_token?.ok ?? 0;
    const socket = opened(await openSocket(browser, '/api/live'));
    expect(rejected).toBe(1);
    expect((h.auth0.admin.counts().token.refresh_token?.ok ?? 0) - before).toBe(1);
    const [a, b] = h.upstream.upgrades.slice(-2).map((u) => u.headers.authorization);
    expect(a).not.toBe(b);
    expect((await roundTrip(socket, 'ok')).data.toString()).toBe('ok');
    socket.ws.close();
  });

  it('holds the upstream back while the browser does not read (backpressure), and loses nothing', async () => {
    const browser = h.browser();
    await browser.login();
    const chunk = randomBytes(256 * 1024);
    const result = { sent: 0, stalled: false };
    let done!: () => void;
    const flooded = new Promise<void>((resolve) => (done = resolve));
    h.upstream.onSocket = (ws) => {
      void (async () => {
        // The upstream sends as fast as the BFF takes it; when the BFF stops reading, its own buffer grows.
        while (result.sent < 512) {
          if (ws.bufferedAmount > 16 * 1024 * 1024) {
            result.stalled = true;
            break;
          }
          ws.send(chunk);
          result.sent++;
          await new Promise((r) => setImmediate(r));
        }
        done();
      })();
    };
    try {
      const socket = opened(await openSocket(browser, '/api/flood'));
      socket.ws.pause();
      await flooded;
      expect(result.stalled, `the upstream sent all ${result.sent} messages without waiting`).toBe(true);
      socket.ws.resume();
      await waitFor(() => socket.messages.length === result.sent, 'every message arrives once the browser reads', 20_000);
      expect(socket.messages.every((m) => m.data.equals(chunk))).toBe(true);
      socket.ws.close();
    } finally {
      h.upstream.onSocket = undefined;
    }
  });

  it('never shows a token to the browser or in the logs', async () => {
    const tokens = h.upstream.upgrades.map((u) => String(u.headers.authorization).replace(/^Bearer /, '')).filter((t) => t.length > 20);
    expect(tokens.length).toBeGreaterThan(0);
    for (const token of tokens) {
      for (const line of h.logs) expect(line).not.toContain(token);
    }
  });
});

describe('WebSockets and session timeouts (no request needed)', () => {
  let h: Harness;
  beforeAll(async () => {
    // Idle 600 s, absolute 900 s: a browser message rolls the idle expiry (at most once a minute).
    h = await startHarness({ redis: true, bff: { session: { secrets: ['test-session-secret-test-session-secret'], idleTimeout: 600, absoluteTimeout: 900 } } });
  });
  afterAll(() => h?.close());

  it('closes at the idle timeout, counting what the browser sends as activity but not what the upstream pushes; then at the absolute timeout', async () => {
    const active = h.browser();
    await active.login();
    const quiet = h.browser();
    await quiet.login();
    h.upstream.onSocket = (ws) => ws.on('message', (data) => ws.send(data));
    const a = opened(await openSocket(active, '/api/live'));
    const q = opened(await openSocket(quiet, '/api/live'));
    const pushes = h.upstream.sockets.slice(-2);

    h.clock.advance(400_000);
    for (const s of pushes) s.ws.send('news');
    // The browser's automatic pong to the upstream's ping is no activity of the user's either.
    const pong = new Promise((resolve) => pushes[1]?.ws.once('pong', resolve));
    pushes[1]?.ws.ping();
    await pong;
    await waitFor(() => q.messages.length === 1 && a.messages.length === 1, 'the pushes arrive');
    await roundTrip(a, 'I am here');

    h.clock.advance(300_000); // 700 s after login: past the quiet session's idle expiry, not the active one's
    const closedQuiet = await q.closed;
    expect(closedQuiet.code).toBe(WebSocketCloseCode.SESSION_ENDED);
    expect(h.events).toContainEqual({ name: 'logout', payload: expect.objectContaining({ reason: 'idle_timeout', sessions: 1 }) });
    // The watch has run at 700 s; give it one more round: the active session stays.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(a.ws.readyState).toBe(a.ws.OPEN);
    expect((await roundTrip(a, 'still')).data.toString()).toBe('still');

    h.clock.advance(250_000); // 950 s: past the absolute lifetime, whatever the activity
    expect((await a.closed).code).toBe(WebSocketCloseCode.SESSION_ENDED);
    expect(h.events).toContainEqual({ name: 'logout', payload: expect.objectContaining({ reason: 'absolute_timeout' }) });
    expect((await active.user()).status).toBe(401);
    h.upstream.onSocket = undefined;
  });

  it('does not bring back a session past its idle expiry for a message sent before the watch\'s next round', async () => {
    const browser = h.browser();
    await browser.login();
    h.upstream.onSocket = (ws) => ws.on('message', (data) => ws.send(data));
    const socket = opened(await openSocket(browser, '/api/live'));
    const seen = h.events.length;
    h.clock.advance(601_000);
    // At once: the watch goes round once a second, and the message is there first.
    socket.ws.send('too late');
    expect((await socket.closed).code).toBe(WebSocketCloseCode.SESSION_ENDED);
    expect(h.events.slice(seen)).toContainEqual({ name: 'logout', payload: expect.objectContaining({ reason: 'idle_timeout', sessions: 1 }) });
    expect((await browser.user()).status).toBe(401);
    h.upstream.onSocket = undefined;
  });
});

describe.each(REDIS_CLIENT_MODES)('WebSockets across two instances sharing Redis ($mode)', ({ options }) => {
  let h: Harness;
  let listener: ReturnType<typeof createClient>;
  const signals: string[] = [];
  beforeAll(async () => {
    h = await startHarness({ redis: true, instances: 2, ...options });
    listener = createClient({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
    await listener.connect();
    await listener.subscribe(`${h.prefix}session-ended`, (message) => void signals.push(message));
  });
  afterAll(async () => {
    await listener?.close();
    await h?.close();
  });

  /** The BFF session id inside the browser's signed cookie. */
  const sessionIdOf = (browser: Browser): string => {
    const value = decodeURIComponent(/(?:^|; )bff=([^;]+)/.exec(browser.jar.header(browser.url))?.[1] ?? '');
    return value.slice(2, value.lastIndexOf('.'));
  };

  /** The BFF instances' subscribed connections (the harness names its clients after the test's prefix). */
  async function subscriberIds(): Promise<string[]> {
    const name = `bfftest-${h.prefix.split(':')[1]}`;
    const list = String(await listener.duplicate().connect().then(async (c) => {
      try {
        return await c.sendCommand(['CLIENT', 'LIST', 'TYPE', 'pubsub']);
      } finally {
        await c.close();
      }
    }));
    return list.split('\n').filter((line) => line.includes(` name=${name} `)).map((line) => /(?:^|\s)id=(\d+)/.exec(line)?.[1] as string);
  }

  it('closes a socket held by one instance when the session ends through the other', async () => {
    const browser = h.browser(0);
    const socket = await socketHeldByInstance1(browser);
    const id = sessionIdOf(browser);
    const { body } = await browser.user();
    const started = performance.now();
    await browser.request(body.logoutUrl);
    const closed = await socket.closed;
    expect(closed.code).toBe(WebSocketCloseCode.SESSION_ENDED);
    console.log(`[websocket] closed ${Math.round(closed.at - started)} ms after the logout request was sent to the other instance`);
    expect(closed.at - started).toBeLessThan(5_000);
    // The signal carries a digest of the session, never its id (a bearer secret).
    await waitFor(() => signals.length > 0, 'the signal went through Redis');
    expect(id.length).toBeGreaterThan(20);
    expect(signals.join(' ')).not.toContain(id);
  });

  it('closes a socket whose session ended unheard (its signal lost) once its subscription is back', async () => {
    const browser = h.browser(0);
    await browser.login();
    const id = sessionIdOf(browser);
    browser.use(1);
    const socket = opened(await openSocket(browser, '/api/live'));
    await waitFor(async () => (await subscriberIds()).length > 0, 'instance 1 subscribed');
    // The session's records disappear without a signal, as if the instance had missed it...
    await listener.duplicate().connect().then(async (c) => {
      await c.del([`${h.prefix}tok:{${id}}`, `${h.prefix}sess:{${id}}`]);
      // ...because its subscription dropped: node-redis reconnects it, and the instance checks its sessions.
      for (const clientId of await subscriberIds()) await c.sendCommand(['CLIENT', 'KILL', 'ID', clientId]);
      await c.close();
    });
    expect((await socket.closed).code).toBe(WebSocketCloseCode.SESSION_ENDED);
  });
});

describe('WebSockets and a session end that moves earlier', () => {
  const nowS = () => Math.floor(Date.now() / 1000);
  const BOB = { sub: 'oidc|bob', username: 'bob', password: 'bob-password', session_expiry: nowS() + 2 * 3_600 };
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: true, auth0: { users: [BOB] } });
  });
  afterAll(() => h?.close());

  it('closes at the earlier end a later ID token brings (session_expiry), without a request', async () => {
    const browser = h.browser();
    await browser.login(undefined, BOB);
    expect((await browser.user()).body.expiresAt).toBe(BOB.session_expiry);
    const socket = opened(await openSocket(browser, '/api/live'));
    expect((await roundTrip(socket, 'a')).data.toString()).toBe('a');

    // The enterprise identity provider's session now ends in ten minutes: the next exchange's ID token says so.
    const earlier = nowS() + 600;
    h.auth0.admin.setSessionExpiry(BOB.sub, earlier);
    h.clock.advance(2 * 60_000);
    expect((await browser.api('/api/items')).status).toBe(200);
    expect((await browser.request('/auth/user?touch=false').then((r) => r.json())).expiresAt).toBe(earlier);

    h.clock.advance(12 * 60_000); // past the earlier end, long before the first one
    expect(await socket.closed).toMatchObject({ code: WebSocketCloseCode.SESSION_ENDED });
    expect(h.events).toContainEqual({ name: 'logout', payload: expect.objectContaining({ reason: 'absolute_timeout' }) });
  });
});

describe('WebSockets with sessions in memory (one process)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: false });
  });
  afterAll(() => h?.close());

  it('closes the session\'s sockets at logout', async () => {
    const browser = h.browser();
    await browser.login();
    const socket = opened(await openSocket(browser, '/api/live'));
    const { body } = await browser.user();
    await browser.request(body.logoutUrl);
    expect((await socket.closed).code).toBe(WebSocketCloseCode.SESSION_ENDED);
  });
});

describe('WebSockets: the allowed origins, session.external, and closing the BFF', () => {
  let h: Harness;
  let external: Harness;
  beforeAll(async () => {
    // The list replaces the default (baseURL's origin): a SPA served from another origin.
    h = await startHarness({ redis: false, bff: { websocket: { allowedOrigins: ['https://spa.example.test'] } } });
    const appSession = session({ secret: SESSION_SECRET, resave: false, saveUninitialized: false, name: 'app.sid' });
    external = await startHarness({
      redis: true,
      bff: { session: { external: true } },
      app: (bff) => express().use(appSession).use(bff),
      // Upgrades never reach Express: the app runs its session middleware on them before the BFF.
      attach: (bff, server) => server.on('upgrade', (req, socket, head) => {
        appSession(req as express.Request, {} as ServerResponse as express.Response, () => {
          if (!bff.handleUpgrade(req, socket, head)) socket.destroy();
        });
      }),
    });
  });
  afterAll(async () => {
    await h?.close();
    await external?.close();
  });

  it('accepts the origins listed in websocket.allowedOrigins, and only those', async () => {
    const browser = h.browser();
    await browser.login();
    expect(await openSocket(browser, '/api/live')).toMatchObject({ kind: 'refused', status: 403 });
    const socket = opened(await openSocket(browser, '/api/live', { origin: 'https://spa.example.test' }));
    expect((await roundTrip(socket, 'hi')).data.toString()).toBe('hi');
    socket.ws.close();
  });

  it('takes the session from the app\'s express-session (session.external) when the app runs it on the upgrade', async () => {
    const browser = external.browser();
    await browser.login();
    expect(browser.jar.header(browser.url)).toMatch(/app\.sid=/);
    const socket = opened(await openSocket(browser, '/api/live'));
    expect(external.upstream.upgrades.at(-1)?.headers.authorization).toMatch(/^Bearer /);
    const { body } = await browser.user();
    await browser.request(body.logoutUrl);
    expect((await socket.closed).code).toBe(WebSocketCloseCode.SESSION_ENDED);
  });

  it('closes its sockets with 1001 when the BFF closes', async () => {
    const browser = h.browser();
    await browser.login();
    const socket = opened(await openSocket(browser, '/api/live', { origin: 'https://spa.example.test' }));
    await h.bffs[0]?.close();
    expect(await socket.closed).toMatchObject({ code: WebSocketCloseCode.GOING_AWAY, reason: 'bff_closing' });
  });
});

describe('WebSockets behind a proxy the app trusts', () => {
  it('name the client that proxy reports in X-Forwarded-For, as the app\'s API calls do', async () => {
    const h = await startHarness({ app: (bff) => express().set('trust proxy', 'loopback').use(bff) });
    try {
      const browser = h.browser();
      await browser.login();
      const headers = { 'x-forwarded-for': '203.0.113.9' };
      expect((await browser.api('/api/items', { headers })).status).toBe(200);
      const socket = opened(await openSocket(browser, '/api/live', { headers }));
      socket.ws.close();
      expect(h.upstream.requests.at(-1)?.headers['x-forwarded-for']).toBe('203.0.113.9');
      expect(h.upstream.upgrades.at(-1)?.headers['x-forwarded-for']).toBe('203.0.113.9');
    } finally {
      await h.close();
    }
  });

  it('name it too on an instance whose first request is the handshake (sockets reconnecting after a deploy)', async () => {
    const h = await startHarness({ redis: true, instances: 2, app: (bff) => express().set('trust proxy', 'loopback').use(bff) });
    try {
      const browser = h.browser(0);
      await browser.login();
      // Instance 1 has served no HTTP request yet: its app is known only as its server's.
      const socket = opened(await openSocket(browser.use(1), '/api/live', { headers: { 'x-forwarded-for': '203.0.113.9' } }));
      socket.ws.close();
      expect(h.upstream.upgrades.at(-1)?.headers['x-forwarded-for']).toBe('203.0.113.9');
    } finally {
      await h.close();
    }
  });
});

describe('WebSockets while the BFF closes', () => {
  it('refuses a handshake taken while close() runs, and one that reaches bff.handleUpgrade after it, with 502 JSON', async () => {
    const h = await startHarness({ redis: true, attach: () => {} });
    try {
      const bff = h.bffs[0]!;
      let closing: Promise<void> | undefined;
      h.servers[0]!.on('upgrade', (req, socket, head) => {
        if (!bff.handleUpgrade(req, socket, head)) return void socket.destroy();
        // The handshake is taken, and its session is being read: the BFF closes now.
        closing ??= bff.close();
      });
      const browser = h.browser();
      await browser.login();

      const during = await openSocket(browser, '/api/live');
      await closing;
      const after = await openSocket(browser, '/api/live');

      for (const handshake of [during, after]) {
        expect(handshake).toMatchObject({ kind: 'refused', status: 502 });
        expect(JSON.parse((handshake as { body: string }).body)).toEqual({ error: 'upstream_unavailable', error_description: 'The BFF is shutting down.' });
      }
      expect(h.upstream.upgrades).toHaveLength(0);
      // No failure of the upstream's, which nobody asked: no event, no warning (every deploy has such refusals).
      expect(h.events.filter((e) => e.name === 'upstream_failed')).toEqual([]);
      expect(h.logs.filter((l) => l.startsWith('warn') || l.startsWith('error'))).toEqual([]);
    } finally {
      await h.close();
    }
  });
});
