import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, waitFor, type Browser, type Harness } from '../support/harness.js';

/** What a browser got: `error` is set when its connection broke before a complete answer. */
interface RawAnswer {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
  error?: string;
}

/** An API call sent with node:http, its body written by `writeBody` (which may trickle it), the answer read whole. */
function send(browser: Browser, path: string, options: { method?: string; headers?: Record<string, string>; writeBody?: (req: ReturnType<typeof request>) => void } = {}): Promise<RawAnswer> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (answer: RawAnswer) => {
      if (settled) return;
      settled = true;
      resolve(answer);
    };
    const req = request(new URL(path, browser.url), {
      method: options.method ?? 'GET',
      agent: false,
      headers: { cookie: browser.jar.header(browser.url) ?? '', 'x-csrf': '1', ...options.headers },
    }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', (e) => done({ status: res.statusCode ?? 0, headers: res.headers, body, error: e.message }));
      res.on('aborted', () => done({ status: res.statusCode ?? 0, headers: res.headers, body, error: 'aborted' }));
    });
    req.on('error', (e) => done({ status: 0, headers: {}, body: '', error: e.message }));
    if (options.writeBody) options.writeBody(req);
    else req.end();
  });
}

/** Writes `pieces` pieces of `size` bytes, `gapMs` apart, then ends: an upload over a slow link. */
const trickle = (pieces: number, size: number, gapMs: number) => (req: ReturnType<typeof request>) => {
  let sent = 0;
  const next = (): void => {
    if (req.destroyed) return;
    if (sent === pieces) return void req.end();
    sent++;
    req.write(Buffer.alloc(size, 'a'));
    setTimeout(next, gapMs);
  };
  next();
};

/** An HTTP upstream of the test's own; `close` ends the connections it still holds. */
async function httpUpstream(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const server = createServer(handler);
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A TCP upstream that writes `answer()` (raw bytes, HTTP or not) for every request head, then closes. */
async function rawUpstream(answer: () => string): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let head = '';
    socket.on('data', (c: Buffer) => {
      head += c.toString('latin1');
      if (head.includes('\r\n\r\n')) socket.end(Buffer.from(answer(), 'latin1'));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** An event stream through the BFF that the upstream holds open, read by a browser that stays. */
function openStream(browser: Browser, path: string): ReturnType<typeof request> {
  const req = request(new URL(path, browser.url), { agent: false, headers: { cookie: browser.jar.header(browser.url) ?? '', 'x-csrf': '1', accept: 'text/event-stream' } }, (res) => res.resume());
  req.on('error', () => {});
  req.end();
  return req;
}

const upstreamFailures = (h: Harness, from: number) => h.events.slice(from).filter((e) => e.name === 'upstream_failed').map((e) => e.payload);

describe('uploads slower than the API\'s timeout', () => {
  let h: Harness;
  let up: Awaited<ReturnType<typeof httpUpstream>>;
  const received = new Map<string, number>();
  beforeAll(async () => {
    // Reads the whole body, then answers at once; under /silent it never answers.
    up = await httpUpstream((req, res) => {
      let length = 0;
      req.on('data', (c: Buffer) => (length += c.length));
      req.on('end', () => {
        received.set(req.url ?? '', length);
        if (req.url?.startsWith('/silent')) return;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ received: length }));
      });
    });
    // The default bodyTimeout (300 s, longer than `timeout`): the BFF bounds the wait for the answer itself.
    h = await startHarness({ apis: () => [{ mount: '/api', upstream: up.url, timeout: 300 }] });
  });
  afterAll(async () => {
    await h?.close();
    await up?.close();
  });

  it('passes on an upload that takes longer than the timeout, whole, and the upstream\'s answer to it', async () => {
    const browser = h.browser();
    await browser.login();
    // About a second of upload against a 300 ms timeout.
    const answer = await send(browser, '/api/upload', { method: 'POST', headers: { 'content-length': '700' }, writeBody: trickle(7, 100, 150) });
    expect(answer).toMatchObject({ status: 200 });
    expect(JSON.parse(answer.body)).toEqual({ received: 700 });
    expect(received.get('/upload')).toBe(700);
  });

  it('still answers 504 upstream_timeout when the upstream has the whole body and does not answer', async () => {
    const browser = h.browser();
    await browser.login();
    const before = h.events.length;
    const answer = await send(browser, '/api/silent', { method: 'POST', headers: { 'content-length': '400' }, writeBody: trickle(4, 100, 150) });
    expect(answer.status).toBe(504);
    expect(JSON.parse(answer.body)).toEqual({ error: 'upstream_timeout', error_description: expect.any(String) });
    expect(answer.headers['cache-control']).toBe('no-store');
    // The whole body went up first: the timeout counted from then.
    expect(received.get('/silent')).toBe(400);
    expect(upstreamFailures(h, before)).toEqual([expect.objectContaining({ api: '/api', error: 'upstream_timeout' })]);
  });
});

describe.each([
  ['with the default bodyTimeout', {}],
  ['with a bodyTimeout shorter than the timeout', { bodyTimeout: 200 }],
])('an API whose every connection is held by a long stream, %s', (_name, extra) => {
  let h: Harness;
  let up: Awaited<ReturnType<typeof httpUpstream>>;
  const held = new Set<ServerResponse>();
  const seen: string[] = [];
  const streams: Array<ReturnType<typeof request>> = [];
  beforeAll(async () => {
    up = await httpUpstream((req, res) => {
      seen.push(req.url ?? '');
      if (req.url?.startsWith('/events')) {
        held.add(res);
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(': open\n\n');
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end('{"quick":true}');
    });
    h = await startHarness({ apis: () => [{ mount: '/api', upstream: up.url, timeout: 300, ...extra }] });
  });
  afterAll(async () => {
    for (const s of streams) s.destroy();
    await h?.close();
    await up?.close();
  });

  it('answers a call that gets no connection within the timeout 504 upstream_timeout, and never sends it later', async () => {
    const browser = h.browser();
    await browser.login();
    // An API's pool has 128 connections (api-proxy.ts): as many open streams take them all.
    for (let i = 0; i < 128; i++) streams.push(openStream(browser, `/api/events/${i}`));
    await waitFor(() => held.size === 128, 'every connection holds a stream', 15_000);
    const before = h.events.length;

    const answer = await Promise.race([
      send(browser, '/api/queued'),
      // Only for a clear failure: with the fix, the answer comes after the 300 ms timeout.
      new Promise<'still waiting'>((r) => setTimeout(() => r('still waiting'), 20_000)),
    ]);
    expect(answer).not.toBe('still waiting');
    expect(answer).toMatchObject({ status: 504, headers: { 'cache-control': 'no-store' } });
    expect(JSON.parse((answer as RawAnswer).body)).toMatchObject({ error: 'upstream_timeout' });
    expect(upstreamFailures(h, before)).toEqual([expect.objectContaining({ api: '/api', error: 'upstream_timeout' })]);

    // A connection frees: the call answered already is dropped, the next one goes through.
    held.values().next().value?.end();
    await waitFor(async () => (await send(browser, '/api/after')).status === 200, 'a call goes through once a connection is free');
    expect(seen).not.toContain('/queued');
  });
});

describe('upstream answers that are not valid HTTP, and answers without content', () => {
  let h: Harness;
  let raw: Awaited<ReturnType<typeof rawUpstream>>;
  let rawAnswer = '';
  let browser: Browser;
  beforeAll(async () => {
    raw = await rawUpstream(() => rawAnswer);
    h = await startHarness({ apis: (upstream) => [{ mount: '/api', upstream }, { mount: '/raw', upstream: raw.url, timeout: 1_000 }, { mount: '/based', upstream: `${upstream}/v1/` }] });
    browser = h.browser();
    await browser.login();
  });
  afterAll(async () => {
    await h?.close();
    await raw?.close();
  });
  beforeEach(() => {
    h.upstream.handler = undefined;
    h.logs.length = 0;
  });

  it.each([
    ['a header value with a control character', 'HTTP/1.1 200 OK\r\nx-odd: a\x01b\r\ncontent-length: 2\r\n\r\n{}'],
    ['a Content-Length that is no number', 'HTTP/1.1 200 OK\r\ncontent-length: abc\r\n\r\n{}'],
  ])('answers %s as 502 upstream_unavailable, reported as an upstream failure, not a 500 of the BFF', async (_name, bytes) => {
    rawAnswer = bytes;
    const before = h.events.length;
    const answer = await send(browser, '/raw/malformed');
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.body)).toEqual({ error: 'upstream_unavailable', error_description: expect.any(String) });
    expect(answer.headers['cache-control']).toBe('no-store');
    expect(upstreamFailures(h, before)).toEqual([expect.objectContaining({ api: '/raw', error: 'upstream_unavailable', cause: expect.stringMatching(/^(HPE_\w+|HTTPParserError)$/) })]);
    expect(h.logs.filter((l) => l.startsWith('error'))).toEqual([]);
  });

  it('answers an answer whose headers exceed Node\'s limit (16 KiB) as 502 upstream_unavailable, as the README says', async () => {
    rawAnswer = `HTTP/1.1 200 OK\r\ncontent-security-policy: ${'a'.repeat(17_000)}\r\ncontent-length: 2\r\n\r\n{}`;
    const before = h.events.length;
    const answer = await send(browser, '/raw/big-headers');
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.body)).toMatchObject({ error: 'upstream_unavailable' });
    expect(upstreamFailures(h, before)).toEqual([expect.objectContaining({ api: '/raw', error: 'upstream_unavailable', cause: 'UND_ERR_HEADERS_OVERFLOW' })]);
  });

  it('gives the browser Node\'s reason phrase where the API\'s is one Node cannot write', async () => {
    rawAnswer = 'HTTP/1.1 200 O\x01K\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}';
    const before = h.events.length;
    const answer = await new Promise<string>((resolve, reject) => {
      const url = new URL(browser.url);
      const socket = connect(Number(url.port), url.hostname);
      let text = '';
      socket.on('data', (c: Buffer) => {
        text += c.toString('latin1');
        if (text.endsWith('{}')) socket.end(() => resolve(text));
      });
      socket.on('error', reject);
      socket.write(`GET /raw/odd-reason HTTP/1.1\r\nhost: x\r\ncookie: ${browser.jar.header(browser.url) ?? ''}\r\nx-csrf: 1\r\n\r\n`);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(upstreamFailures(h, before)).toEqual([]);
  });

  it('sends the mount itself to the upstream\'s base path, and the mount with a slash to the base path with its slash', async () => {
    h.upstream.requests.length = 0;
    for (const path of ['/based', '/based/', '/based?page=2', '/based/?page=2', '/based/items/']) {
      expect((await send(browser, path)).status, path).toBe(200);
    }
    expect(h.upstream.requests.map((r) => r.url)).toEqual(['/v1', '/v1/', '/v1?page=2', '/v1/?page=2', '/v1/items/']);
  });

  it('passes a 304 that names the representation\'s Content-Length on, and the browser\'s connection stays usable', async () => {
    h.upstream.handler = (req, res) => {
      if (req.headers['if-none-match'] !== '"v1"') return void res.end('{"fresh":true}');
      // RFC 9110 8.6: a 304 may carry the Content-Length a 200 would have had.
      res.writeHead(304, { etag: '"v1"', 'content-length': '42' });
      res.end();
    };
    const before = h.events.length;
    const url = new URL(browser.url);
    const socket = connect(Number(url.port), url.hostname);
    let text = '';
    let closed = false;
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('close', () => (closed = true));
    socket.on('error', () => {});
    try {
      const cookie = browser.jar.header(browser.url) ?? '';
      socket.write(`GET /api/items/1 HTTP/1.1\r\nhost: x\r\ncookie: ${cookie}\r\nx-csrf: 1\r\nif-none-match: "v1"\r\n\r\n`);
      await waitFor(() => closed || text.includes('\r\n\r\n'), 'the 304 arrives');
      expect(text).toMatch(/^HTTP\/1\.1 304 /);
      expect(text).toMatch(/\r\netag: "v1"\r\n/i);
      // The same connection, again: a 304 answered whole leaves it usable.
      socket.write(`GET /api/items/1 HTTP/1.1\r\nhost: x\r\ncookie: ${cookie}\r\nx-csrf: 1\r\n\r\n`);
      await waitFor(() => closed || text.endsWith('{"fresh":true}'), 'the second answer arrives');
      expect(closed).toBe(false);
      const answers = text.split(/(?=HTTP\/1\.1 )/);
      expect(answers).toHaveLength(2);
      expect(answers[0]?.endsWith('\r\n\r\n')).toBe(true);
      expect(answers[1]).toMatch(/^HTTP\/1\.1 200 /);
    } finally {
      socket.destroy();
    }
    expect(upstreamFailures(h, before)).toEqual([]);
  });
});

describe('an app that parses bodies before app.use(bff)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      // Only `app.use(bff)` can have the app's middleware run before the BFF: under `bff.wrap(app)` the BFF comes first.
      entry: 'use',
      app: (bff) => express().use(express.json()).use(bff),
    });
  });
  afterAll(() => h?.close());

  it('answers a body it can no longer forward 500 configuration_error naming the cause, logged once, and never sends an empty body', async () => {
    const browser = h.browser();
    await browser.login();
    h.logs.length = 0;
    h.upstream.requests.length = 0;
    for (let i = 0; i < 2; i++) {
      const res = await browser.api('/api/items', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
      expect(res.status).toBe(500);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const body = await res.json() as { error: string; error_description: string };
      expect(body.error).toBe('configuration_error');
      expect(body.error_description).toMatch(/body parser ran before the BFF.*after app\.use\(bff\)/);
    }
    expect(h.upstream.requests).toEqual([]);
    expect(h.logs.filter((l) => /body parser/.test(l))).toEqual([expect.stringMatching(/^error /)]);

    // What the parser left alone still goes through: calls without a body, and bodies of another type.
    expect((await browser.api('/api/items')).status).toBe(200);
    const text = await browser.api('/api/items', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
    expect(text.status).toBe(200);
    expect(h.upstream.requests.at(-1)?.body).toBe('hello');
  });
});
