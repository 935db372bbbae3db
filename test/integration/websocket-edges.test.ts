import type { Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocketCloseCode } from '../../src/index.js';
import { SessionConnections } from '../../src/realtime/registry.js';
import { closeDeletingKeys, startHarness, stubbedRedis, waitFor, type Browser, type Harness } from '../support/harness.js';
import { closeFrameOf, frame, OPCODE, rawClient, rawUpstream, type RawClient, type RawUpstreamSocket } from '../support/raw-websocket.js';
import type { WebSocket } from 'ws';
import { openSocket, opened, roundTrip, type Handshake } from '../support/ws-client.js';

/** Longer than the tunnel's close grace period (2 s), with room for a loaded machine. */
const PAST_GRACE_MS = 10_000;

/**
 * Whether the BFF still holds the connection it registered last with its session. A tunnel lets go of its
 * registration only once both its connections (the browser's and the upstream's) have closed.
 */
const track = vi.spyOn(SessionConnections.prototype, 'track');
function lastRegistration(): () => boolean {
  const call = track.mock.calls.length - 1;
  const member = track.mock.calls[call]?.[2];
  const result = track.mock.results[call];
  if (member === undefined || result?.type !== 'return' || result.value === undefined) throw new Error('nothing was registered');
  const { members } = result.value.session;
  return () => members.has(member);
}

/** A logged-in browser's socket to an upstream that echoes, with the upstream's side of it. */
async function echoSocket(h: Harness, path: string): Promise<{ socket: Extract<Handshake, { kind: 'open' }>; upstreamSide: WebSocket }> {
  const browser = h.browser();
  await browser.login();
  let upstreamSide: WebSocket | undefined;
  h.upstream.onSocket = (ws) => {
    upstreamSide = ws;
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  };
  const socket = opened(await openSocket(browser, path));
  await waitFor(() => upstreamSide !== undefined, 'the upstream has the socket');
  return { socket, upstreamSide: upstreamSide! };
}

async function logout(browser: Browser): Promise<void> {
  const { body } = await browser.user();
  await browser.request(body.logoutUrl);
}

describe('WebSockets through the BFF: connections that misbehave', () => {
  let h: Harness;
  const upstreams: RawUpstreamSocket[] = [];
  const clients: RawClient[] = [];
  const connect = (browser: Browser, path: string): RawClient => {
    const client = rawClient(browser, path);
    clients.push(client);
    return client;
  };
  /** The BFF's side of every browser connection, to read what it holds. */
  const bffSides: Socket[] = [];
  const bffSideOf = (client: RawClient): Socket => {
    const socket = bffSides.find((s) => s.remotePort === client.socket.localPort);
    if (socket === undefined) throw new Error('no such connection');
    return socket;
  };
  beforeAll(async () => {
    h = await startHarness({
      redis: true,
      apis: (upstream) => [
        { mount: '/api', upstream },
        { mount: '/api/billing', upstream: `${upstream}/billing-service`, websocket: false },
      ],
    });
    h.servers[0]?.on('connection', (socket) => bffSides.push(socket));
  });
  afterEach(() => {
    h.upstream.upgradeHandler = undefined;
    for (const { socket } of [...upstreams, ...clients]) socket.destroy();
    upstreams.length = 0;
    clients.length = 0;
  });
  afterAll(() => h?.close());

  it('holds the upstream back when the session ends in the middle of a frame the browser does not read', async () => {
    const browser = h.browser();
    await browser.login();
    h.upstream.upgradeHandler = rawUpstream(upstreams);
    const client = connect(browser, '/api/big');
    expect(await client.status).toBe(101);
    client.socket.pause(); // a browser on a slow link, or a busy tab
    await waitFor(() => upstreams.length === 1, 'the upstream has the socket');
    const bffSide = bffSideOf(client);
    const upstream = upstreams[0]!.socket;

    // One binary frame of 1 GiB, sent as fast as the BFF takes it.
    upstream.write(Buffer.from([0x82, 127, 0, 0, 0, 0, 0x40, 0, 0, 0]));
    const piece = Buffer.alloc(1024 * 1024, 7);
    let waiting = false;
    let stop = false;
    void (async () => {
      while (!stop && !upstream.destroyed) {
        if (upstream.write(piece)) continue;
        waiting = true;
        await new Promise((resolve) => upstream.once('drain', resolve));
        waiting = false;
      }
    })();
    await waitFor(() => waiting, 'the BFF holds the upstream back while the browser does not read');

    await logout(browser);
    // The BFF cuts the connections once the grace period is over; what it buffers meanwhile stays bounded.
    let peak = 0;
    await waitFor(() => {
      peak = Math.max(peak, bffSide.writableLength);
      return bffSide.destroyed || peak > 64 * 1024 * 1024;
    }, 'the BFF cuts the browser\'s connection, or piles up the frame', PAST_GRACE_MS);
    stop = true;
    expect(peak, 'bytes the BFF buffered for the browser').toBeLessThan(4 * 1024 * 1024);
  });

  it('lets go of both connections when the browser ends its side without a close handshake and the upstream never answers', async () => {
    const browser = h.browser();
    await browser.login();
    h.upstream.upgradeHandler = rawUpstream(upstreams);
    const client = connect(browser, '/api/stuck');
    expect(await client.status).toBe(101);
    const registered = lastRegistration();
    await waitFor(() => upstreams.length === 1, 'the upstream has the socket');
    client.socket.end(); // a TCP FIN, as a killed tab or a dropped client may send

    await waitFor(() => upstreams[0]!.frames.closeCodes.length > 0, 'the upstream is told');
    expect(upstreams[0]!.frames.closeCodes).toEqual([WebSocketCloseCode.GOING_AWAY]);
    await waitFor(() => !registered(), 'the BFF closed both connections', PAST_GRACE_MS);
    expect(bffSideOf(client).destroyed).toBe(true);
  });

  it('lets go of both connections when the browser ends its side during the handshake and the upstream never answers', async () => {
    const browser = h.browser();
    await browser.login();
    let client!: RawClient;
    const accept = rawUpstream(upstreams);
    // The upstream answers only once the browser has sent its FIN: the BFF then joins it to a browser that is gone.
    h.upstream.upgradeHandler = (req, socket, head) => void client.socket.end(() => accept(req, socket, head));
    client = connect(browser, '/api/abandoned');
    await waitFor(() => upstreams.length === 1, 'the upstream has the socket');
    const registered = lastRegistration();
    await waitFor(() => !registered(), 'the BFF closed both connections', PAST_GRACE_MS);
    expect(bffSideOf(client).destroyed).toBe(true);
  });

  it('refuses a handshake under a nested mount without WebSockets (400), instead of sending it to the outer API', async () => {
    const browser = h.browser();
    await browser.login();
    const before = h.upstream.upgrades.length;
    const answer = await openSocket(browser, '/api/billing/live');
    if (answer.kind === 'open') answer.ws.terminate();
    expect(answer).toMatchObject({ kind: 'refused', status: 400 });
    if (answer.kind !== 'refused') return;
    expect(JSON.parse(answer.body)).toMatchObject({ error: 'invalid_request' });
    expect(answer.headers['cache-control']).toBe('no-store');
    expect(h.upstream.upgrades.length).toBe(before);
  });

  it('sends the upstream no close frame of its own after the browser\'s, when the session ends meanwhile', async () => {
    const browser = h.browser();
    await browser.login();
    h.upstream.upgradeHandler = rawUpstream(upstreams);
    const client = connect(browser, '/api/closing');
    expect(await client.status).toBe(101);
    client.socket.write(closeFrameOf(1000, true));
    await waitFor(() => upstreams[0]?.frames.frames.length === 1, 'the upstream has the browser\'s close frame');

    // The upstream has not answered yet when the session ends.
    await logout(browser);
    await waitFor(() => client.frames.closeCodes.length > 0, 'the browser is told');
    expect(client.frames.closeCodes).toEqual([WebSocketCloseCode.SESSION_ENDED]);
    // Everything the BFF sent the upstream arrived before its connection ended.
    await upstreams[0]!.ended;
    expect(upstreams[0]!.frames.frames.map((f) => f.opcode)).toEqual([OPCODE.close]);
    expect(upstreams[0]!.frames.closeCodes).toEqual([1000]);
  });
});

describe('WebSockets of browsers that vanish without a word', () => {
  let h: Harness;
  const upstreams: RawUpstreamSocket[] = [];
  const clients: RawClient[] = [];
  const bffSides: Socket[] = [];
  const PING_MS = 300;
  beforeAll(async () => {
    h = await startHarness({ redis: true, bff: { websocket: { pingInterval: PING_MS } } });
    h.servers[0]?.on('connection', (socket) => bffSides.push(socket));
  });
  afterEach(() => {
    h.upstream.upgradeHandler = undefined;
    h.upstream.onSocket = undefined;
    for (const { socket } of [...upstreams, ...clients]) socket.destroy();
    upstreams.length = 0;
    clients.length = 0;
  });
  afterAll(() => h?.close());

  it('pings a browser that sends nothing, and closes both connections when it answers nothing (1001 browser_gone to the upstream)', async () => {
    const browser = h.browser();
    await browser.login();
    // An upstream that is there: it answers the BFF's pings.
    h.upstream.upgradeHandler = rawUpstream(upstreams, { answerPings: true });
    // A browser on a bare socket that answers nothing: as one asleep or gone off the network, which sends no FIN.
    const client = rawClient(browser, '/api/asleep');
    clients.push(client);
    expect(await client.status).toBe(101);
    const registered = lastRegistration();
    await waitFor(() => upstreams.length === 1, 'the upstream has the socket');
    const bffSide = bffSides.find((s) => s.remotePort === client.socket.localPort);

    await waitFor(() => client.frames.frames.some((f) => f.opcode === 0x9), 'the BFF pings the browser');
    await waitFor(() => upstreams[0]!.frames.closeCodes.length > 0, 'the upstream is told the browser is gone', PAST_GRACE_MS);
    expect(upstreams[0]!.frames.closeCodes).toEqual([WebSocketCloseCode.GOING_AWAY]);
    expect(upstreams[0]!.frames.frames.at(-1)?.payload.subarray(2).toString()).toBe('browser_gone');
    await waitFor(() => !registered() && bffSide?.destroyed === true, 'the BFF let go of both connections', PAST_GRACE_MS);
  });

  it('keeps the socket of a browser that answers the pings, however long it sends nothing else, and its frames intact', async () => {
    const { socket, upstreamSide } = await echoSocket(h, '/api/quiet');
    let pings = 0;
    socket.ws.on('ping', () => pings++);
    let pongsUpstream = 0;
    upstreamSide.on('pong', () => pongsUpstream++);
    // Browsers answer pings by themselves (as the ws client does): many intervals pass without a data frame.
    await waitFor(() => pings >= 4, 'the BFF pings the quiet browser again and again', PAST_GRACE_MS);
    expect(socket.ws.readyState).toBe(socket.ws.OPEN);
    // An unsolicited pong is no harm to the upstream (RFC 6455 5.5.3); frames still pass unchanged both ways.
    expect(pongsUpstream).toBeGreaterThan(0);
    const big = Buffer.alloc(200_000, 3);
    expect((await roundTrip(socket, big)).data.equals(big)).toBe(true);
    expect((await roundTrip(socket, 'still here')).data.toString()).toBe('still here');
    socket.ws.close(1000);
    expect((await socket.closed).code).toBe(1000);
  });
});

describe('WebSockets of upstreams that vanish without a word', () => {
  let h: Harness;
  const upstreams: RawUpstreamSocket[] = [];
  const clients: RawClient[] = [];
  const PING_MS = 300;
  const timers: NodeJS.Timeout[] = [];
  beforeAll(async () => {
    h = await startHarness({ redis: true, bff: { websocket: { pingInterval: PING_MS } } });
  });
  afterEach(() => {
    h.upstream.upgradeHandler = undefined;
    h.upstream.onSocket = undefined;
    for (const timer of timers.splice(0)) clearInterval(timer);
    for (const { socket } of [...upstreams, ...clients]) socket.destroy();
    upstreams.length = 0;
    clients.length = 0;
  });
  afterAll(() => h?.close());

  /**
   * A logged-in browser's socket to a raw upstream. With `browserPings` the browser pings often, so that it is never
   * the side in doubt (an upstream that answers them is heard from, and needs no ping of the BFF's own).
   */
  async function socketTo(upstream: ReturnType<typeof rawUpstream>, path: string, browserPings = true) {
    const browser = h.browser();
    await browser.login();
    h.upstream.upgradeHandler = upstream;
    const socket = opened(await openSocket(browser, path));
    // Pings are no message: they leave the socket quiet, and the upstream's side is still looked at.
    // Its pings carry a word: the BFF's own are empty.
    if (browserPings) timers.push(setInterval(() => socket.ws.readyState === socket.ws.OPEN && socket.ws.ping('browser'), 50));
    await waitFor(() => upstreams.length === 1, 'the upstream has the socket');
    return { browser, socket };
  }

  it('pings an upstream that sends nothing, and when it answers nothing closes the browser\'s socket with 1014 upstream_unavailable and reports it', async () => {
    // An upstream whose host or network path went away: no FIN, no answer to anything.
    const { browser, socket } = await socketTo(rawUpstream(upstreams), '/api/feed');
    const registered = lastRegistration();
    const events = h.events.length;

    await waitFor(() => upstreams[0]!.frames.frames.some((f) => f.opcode === OPCODE.ping && f.payload.length === 0), 'the BFF pings the upstream');
    const ping = upstreams[0]!.frames.frames.find((f) => f.opcode === OPCODE.ping && f.payload.length === 0)!;
    expect(ping.masked).toBe(true); // as every frame toward a server is (RFC 6455 5.3)
    const closed = await socket.closed;
    expect(closed).toMatchObject({ code: WebSocketCloseCode.UPSTREAM_FAILED, reason: 'upstream_unavailable' });
    await waitFor(() => !registered(), 'the BFF let go of both connections', PAST_GRACE_MS);
    await upstreams[0]!.ended;
    expect(h.events.slice(events)).toContainEqual({
      name: 'upstream_failed',
      payload: expect.objectContaining({ api: '/api', error: 'upstream_unavailable', cause: 'PING_TIMEOUT', broken: true }),
    });
    expect(h.logs.filter((l) => l.startsWith('warn The API answered no ping on a quiet WebSocket: its connection was cut'))).toHaveLength(1);
    // The session lives on: the upstream's absence logs nobody out.
    expect((await browser.user()).status).toBe(200);
  });

  it('cuts the browser\'s connection (1006) when the upstream vanished in the middle of a frame: no close frame can follow', async () => {
    const { socket } = await socketTo(rawUpstream(upstreams), '/api/half');
    // The first 10 of a 100-byte message's bytes, then nothing.
    upstreams[0]!.socket.write(frame(OPCODE.text, Buffer.alloc(100, 'a'), false).subarray(0, 10));
    await waitFor(() => upstreams[0]!.frames.frames.some((f) => f.opcode === OPCODE.ping && f.payload.length === 0), 'the BFF pings the upstream');
    expect((await socket.closed).code).toBe(1006);
    expect(socket.messages).toEqual([]);
  });

  it('keeps the socket of an upstream that answers the pings, however long it sends nothing else; its pongs reach the browser harmlessly', async () => {
    // The browser sends nothing and answers the BFF's pings by itself, as browsers do.
    const { socket } = await socketTo(rawUpstream(upstreams, { answerPings: true }), '/api/quiet', false);
    let pongs = 0;
    socket.ws.on('pong', () => pongs++);
    const bffPings = () => upstreams[0]!.frames.frames.filter((f) => f.opcode === OPCODE.ping && f.payload.length === 0).length;
    await waitFor(() => bffPings() >= 3, 'the BFF pings the quiet upstream again and again', PAST_GRACE_MS);
    expect(socket.ws.readyState).toBe(socket.ws.OPEN);
    expect(upstreams[0]!.frames.closeCodes).toEqual([]);
    // An unsolicited pong is no harm to the browser (RFC 6455 5.5.3); frames still pass both ways.
    expect(pongs).toBeGreaterThan(0);
    socket.ws.send('still here');
    await waitFor(() => upstreams[0]!.frames.frames.some((f) => f.opcode === OPCODE.text && f.payload.toString() === 'still here'), 'the upstream gets the message');
    upstreams[0]!.socket.write(frame(OPCODE.text, Buffer.from('and here'), false));
    await waitFor(() => socket.messages.some((m) => m.data.toString() === 'and here'), 'the browser gets the answer');
    socket.ws.close(1000);
  });

  it('does not take an upstream for gone while the browser keeps sending it messages', async () => {
    // Intervals of a second, a message every 50 ms: only a stall of the whole process for most of two intervals in
    // a row could pass for silence.
    const slow = await startHarness({ redis: true, bff: { websocket: { pingInterval: 1_000 } } });
    const mine: RawUpstreamSocket[] = [];
    try {
      const browser = slow.browser();
      await browser.login();
      slow.upstream.upgradeHandler = rawUpstream(mine);
      const socket = opened(await openSocket(browser, '/api/upload'));
      await waitFor(() => mine.length === 1, 'the upstream has the socket');
      const sender = setInterval(() => socket.ws.send('tick'), 50);
      timers.push(sender);
      // Several intervals of a silent upstream that reads (an absence: nothing to wait for but the time).
      await new Promise((resolve) => setTimeout(resolve, 3_500));
      expect(socket.ws.readyState).toBe(socket.ws.OPEN);
      expect(mine[0]!.frames.closeCodes).toEqual([]);
      // Once the browser stops, the silent upstream is pinged and, answering nothing, cut.
      clearInterval(sender);
      expect((await socket.closed).code).toBe(WebSocketCloseCode.UPSTREAM_FAILED);
    } finally {
      for (const { socket } of mine) socket.destroy();
      await slow.close();
    }
  });

  it('pings no upstream that is saying goodbye: its close handshake ends as the endpoints say, however late the browser answers', async () => {
    const browser = h.browser();
    await browser.login();
    let upstreamSide: WebSocket | undefined;
    h.upstream.onSocket = (ws) => {
      upstreamSide = ws;
    };
    // A browser on a bare socket, slow to answer the upstream's close; it answers nothing else.
    const client = rawClient(browser, '/api/closing');
    clients.push(client);
    expect(await client.status).toBe(101);
    await waitFor(() => upstreamSide !== undefined, 'the upstream has the socket');
    const closed = new Promise<number>((resolve) => upstreamSide!.once('close', (code) => resolve(code)));
    // A ws server that sent its close frame answers no ping until the handshake is over.
    upstreamSide!.close(4000, 'bye');
    await waitFor(() => client.frames.closeCodes.includes(4000), 'the browser gets the upstream\'s close');
    // Several intervals before the browser answers (an absence: nothing to wait for but the time).
    await new Promise((resolve) => setTimeout(resolve, PING_MS * 4));
    client.socket.write(closeFrameOf(4000, true));
    // The upstream gets the browser's answer, not a cut connection (1006).
    expect(await closed).toBe(4000);
  });

  it('pings no upstream with `pingUpstream: false`, and leaves a silent one connected', async () => {
    const quiet = await startHarness({ redis: true, bff: { websocket: { pingInterval: PING_MS, pingUpstream: false } } });
    try {
      const browser = quiet.browser();
      await browser.login();
      const mine: RawUpstreamSocket[] = [];
      quiet.upstream.upgradeHandler = rawUpstream(mine);
      const socket = opened(await openSocket(browser, '/api/push-only'));
      let browserPings = 0;
      socket.ws.on('ping', () => browserPings++);
      await waitFor(() => mine.length === 1, 'the upstream has the socket');
      // The browser is still pinged, interval after interval; the upstream never.
      await waitFor(() => browserPings >= 3, 'the BFF pings the quiet browser', PAST_GRACE_MS);
      expect(mine[0]!.frames.frames.filter((f) => f.opcode === OPCODE.ping)).toEqual([]);
      expect(socket.ws.readyState).toBe(socket.ws.OPEN);
      socket.ws.close(1000);
      mine[0]!.socket.destroy();
    } finally {
      await quiet.close();
    }
  });
});

describe('WebSockets of browsers that read nothing for a while', () => {
  let h: Harness;
  const PING_MS = 300;
  const bffSides: Socket[] = [];
  beforeAll(async () => {
    h = await startHarness({ redis: true, bff: { websocket: { pingInterval: PING_MS } } });
    h.servers[0]?.on('connection', (socket) => bffSides.push(socket));
  });
  afterAll(() => h?.close());

  it('does not take a browser for gone while what the upstream sends waits for it (its pong waits behind)', async () => {
    const { socket, upstreamSide } = await echoSocket(h, '/api/feed');
    let received = 0;
    socket.ws.on('message', () => received++);
    // A busy tab, or a slow link: the browser reads nothing for a while, and answers no ping meanwhile.
    const browserSide = (socket.ws as unknown as { _socket: Socket })._socket;
    browserSide.pause();
    // The BFF pings it (2 bytes) before the upstream sends anything: then the pong waits behind what follows.
    const bffSide = bffSides.find((s) => s.remotePort === browserSide.localPort)!;
    const written = bffSide.bytesWritten;
    // (The upstream is pinged in the same check, after the browser: its 2-byte pong may follow.)
    await waitFor(() => bffSide.bytesWritten >= written + 2, 'the BFF pings the quiet browser');
    const piece = Buffer.alloc(1024 * 1024, 9);
    for (let i = 0; i < 24; i++) upstreamSide.send(piece);
    await waitFor(() => bffSide.writableLength > 0, 'the BFF holds what the browser does not read yet');
    // Several intervals without a byte from the browser (an absence: nothing to wait for but the time).
    await new Promise((resolve) => setTimeout(resolve, PING_MS * 5));
    browserSide.resume();
    await waitFor(() => received === 24, 'the browser gets everything', PAST_GRACE_MS);
    expect(socket.ws.readyState).toBe(socket.ws.OPEN);
    expect((await roundTrip(socket, 'still here')).data.toString()).toBe('still here');
    socket.ws.close(1000);
  });
});

describe('WebSockets of browsers held back for an upstream that does not read', () => {
  let h: Harness;
  const upstreams: RawUpstreamSocket[] = [];
  beforeAll(async () => {
    h = await startHarness({ redis: true, bff: { websocket: { pingInterval: 200 } } });
  });
  afterAll(async () => {
    for (const { socket } of upstreams) socket.destroy();
    await h?.close();
  });

  it('does not take a browser whose pong it cannot read yet for gone', async () => {
    const browser = h.browser();
    await browser.login();
    const accept = rawUpstream(upstreams, { answerPings: true });
    h.upstream.upgradeHandler = (req, socket, head) => {
      accept(req, socket, head);
      socket.pause(); // an upstream busy elsewhere: it reads nothing for a while
    };
    const socket = opened(await openSocket(browser, '/api/upload'));
    let pings = 0;
    socket.ws.on('ping', () => pings++);
    // The browser sends more than the connections between it and the upstream hold: the BFF holds it back, and its
    // pongs wait behind what it sent.
    const piece = Buffer.alloc(1024 * 1024, 5);
    for (let i = 0; i < 32; i++) socket.ws.send(piece);
    await waitFor(() => socket.ws.bufferedAmount > 0, 'the browser is held back');
    await waitFor(() => pings >= 1, 'the BFF pings the browser, whose pong waits behind what it sent', PAST_GRACE_MS);
    // Several intervals with the pong unread (an absence: nothing to wait for but the time).
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(socket.ws.readyState).toBe(socket.ws.OPEN);
    // The upstream reads again: everything arrives, and the browser is still there.
    upstreams[0]!.socket.resume();
    await waitFor(() => upstreams[0]!.frames.frames.filter((f) => f.opcode === OPCODE.binary).length === 32, 'every message reaches the upstream', PAST_GRACE_MS);
    expect(upstreams[0]!.frames.closeCodes).toEqual([]);
    expect(socket.ws.readyState).toBe(socket.ws.OPEN);
    socket.ws.close(1000);
  });
});

describe('WebSocket handshakes the BFF refuses', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: true });
  });
  afterAll(() => h?.close());

  it('lets go of the connections of refused handshakes, also when the clients keep their side open', async () => {
    const server = h.servers[0]!;
    const connections = () => new Promise<number>((resolve, reject) => server.getConnections((error, n) => (error ? reject(error) : resolve(n))));
    const browser = h.browser(); // not logged in
    // Refused by the handshake handler (no session), and by `attach` (a URL outside the API mounts).
    const clients = [...Array.from({ length: 5 }, () => rawClient(browser, '/api/live')), ...Array.from({ length: 5 }, () => rawClient(browser, '/elsewhere'))];
    expect(await Promise.all(clients.map((c) => c.status))).toEqual([...Array(5).fill(401), ...Array(5).fill(400)]);
    try {
      await waitFor(async () => (await connections()) === 0, 'the BFF closed every refused connection');
    } finally {
      for (const client of clients) client.socket.destroy();
    }
  });
});

describe('WebSocket handshakes whose session ends while their token is renewed', () => {
  let h: Harness;
  /** While true, taking a session's exchange lock gets no answer from the store until the test fails it. */
  let stallLocks = false;
  const stalled: Array<(error: Error) => void> = [];
  beforeAll(async () => {
    h = await startHarness({
      bff: { redisCommandTimeout: 10_000 },
      redisConnect: stubbedRedis((client) => {
        const set = client.set.bind(client);
        Object.assign(client, {
          set: (...args: Parameters<typeof set>) => {
            if (!stallLocks || !String(args[0]).includes(':lock:')) return set(...args);
            return new Promise((_resolve, reject) => stalled.push(reject));
          },
        });
      }),
    });
  });
  afterAll(() => closeDeletingKeys(h));

  it('sends the upstream no handshake with the token of a session that ended meanwhile, and answers 401', async () => {
    const browser = h.browser();
    await browser.login();
    const { body } = await browser.user();
    // Past the token's refresh point, with more than half the margin left: a renewal that fails for the moment
    // (here the store, whose lock it takes first) is served by the token at hand.
    h.clock.advance(52_500);
    stallLocks = true;
    const upgradesBefore = h.upstream.upgrades.length;
    const handshake = openSocket(browser, '/api/live');
    await waitFor(() => stalled.length > 0, 'the renewal waits for its lock');
    expect((await browser.request(body.logoutUrl)).status).toBe(302);
    // Then the store fails the lock: the renewal gives up, and the token at hand would serve.
    stallLocks = false;
    for (const fail of stalled.splice(0)) fail(new Error('Socket closed unexpectedly'));
    const answer = await handshake;
    expect(answer).toMatchObject({ kind: 'refused', status: 401 });
    if (answer.kind === 'refused') expect(JSON.parse(answer.body)).toMatchObject({ error: 'session_ended' });
    expect(h.upstream.upgrades.length).toBe(upgradesBefore);
  });
});
