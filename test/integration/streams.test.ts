import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, waitFor, type Browser, type Harness } from '../support/harness.js';

/** Reads a response body to its end: the text, and the error if it was broken off. */
async function readAll(res: Response): Promise<{ text: string; error?: unknown; at: number }> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return { text, at: performance.now() };
      text += decoder.decode(value, { stream: true });
    }
  } catch (error) {
    return { text, error, at: performance.now() };
  }
}

/**
 * Longer than undici takes to enforce a 300 ms timeout (its timers tick twice a second and fire up to a second
 * late), so that a silence this long is cut wherever a 300 ms limit applies.
 */
const QUIET_MS = 2_500;

const sse = (browser: Browser, path: string) => browser.api(path, { headers: { accept: 'text/event-stream' } });

/** An upstream answer that sends `first`, stays silent for `quietMs`, then sends `last` and ends. */
function quietThenEnd(contentType: string, first: string, quietMs: number, last: string) {
  return (_req: unknown, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
    res.write(first);
    setTimeout(() => res.end(last), quietMs);
  };
}

describe('event streams and long responses', () => {
  let h: Harness;
  /** Upstream answers still open (a stream the BFF broke off closes its upstream request too). */
  const open = new Set<ServerResponse>();
  beforeAll(async () => {
    h = await startHarness({
      redis: true,
      instances: 2,
      apis: (upstream) => [
        // Only the wait for the headers is short: a body may be quiet for longer.
        { mount: '/api', upstream, timeout: 300 },
        { mount: '/strict', upstream, timeout: 300, bodyTimeout: 300 },
        { mount: '/feeds', upstream, timeout: 300, eventStreamTimeout: 300 },
      ],
    });
  });
  afterAll(() => h?.close());

  it('keeps an event stream open through a silence longer than the API\'s timeout', async () => {
    const browser = h.browser();
    await browser.login();
    h.upstream.handler = quietThenEnd('text/event-stream', ': connected\n\n', QUIET_MS, 'data: after the silence\n\n');
    const res = await sse(browser, '/api/events');
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const { text, error } = await readAll(res);
    expect(error).toBeUndefined();
    expect(text).toBe(': connected\n\ndata: after the silence\n\n');
  });

  it('keeps a download open through a silence longer than the wait for its headers, and cuts one quiet for longer than bodyTimeout', async () => {
    const browser = h.browser();
    await browser.login();
    h.upstream.handler = quietThenEnd('application/octet-stream', 'part one,', QUIET_MS, 'part two');
    const slow = await readAll(await browser.api('/api/report'));
    expect(slow).toMatchObject({ text: 'part one,part two' });
    expect(slow.error).toBeUndefined();

    h.upstream.handler = quietThenEnd('application/octet-stream', 'part one,', QUIET_MS, 'part two');
    const cut = await readAll(await browser.api('/strict/report'));
    expect(cut.error).toBeDefined();
    expect(cut.text).toBe('part one,');
    // Event streams are not held to bodyTimeout (their own limit, eventStreamTimeout, is off by default).
    h.upstream.handler = quietThenEnd('text/event-stream', ': connected\n\n', QUIET_MS, 'data: later\n\n');
    expect(await readAll(await sse(browser, '/strict/events'))).toMatchObject({ text: ': connected\n\ndata: later\n\n' });
    // ... unless it is set.
    h.upstream.handler = quietThenEnd('text/event-stream', ': connected\n\n', QUIET_MS, 'data: later\n\n');
    const limited = await readAll(await sse(browser, '/feeds/events'));
    expect(limited.error).toBeDefined();
    expect(limited.text).toBe(': connected\n\n');
  });

  it('ends an event stream and a download held by one instance when the session ends through the other', async () => {
    const browser = h.browser(0);
    await browser.login();
    h.upstream.handler = (req, res) => {
      open.add(res);
      res.once('close', () => open.delete(res));
      res.writeHead(200, { 'content-type': req.url?.includes('events') ? 'text/event-stream' : 'application/octet-stream' });
      res.write(req.url?.includes('events') ? ': connected\n\n' : 'chunk,');
    };
    browser.use(1);
    const reads = [readAll(await sse(browser, '/api/events')), readAll(await browser.api('/api/download'))];
    await waitFor(() => open.size === 2, 'both answers are streaming');
    browser.use(0);
    const { body } = await browser.user();
    const started = performance.now();
    await browser.request(body.logoutUrl);
    const [events, download] = await Promise.all(reads);
    // Broken off, not ended: the download must not look complete.
    expect(events?.error).toBeDefined();
    expect(download?.error).toBeDefined();
    expect(download?.text).toBe('chunk,');
    console.log(`[streams] ended ${Math.round(Math.max(events!.at, download!.at) - started)} ms after the logout request was sent to the other instance`);
    expect(Math.max(events!.at, download!.at) - started).toBeLessThan(5_000);
    // The upstream's requests ended too.
    await waitFor(() => open.size === 0, 'the upstream requests are closed');
    // An EventSource reconnecting now learns why.
    const again = await sse(browser, '/api/events');
    expect(again.status).toBe(401);
  });

  it('ends an event stream at the session\'s idle timeout, with no request to notice it', async () => {
    const browser = h.browser();
    await browser.login();
    h.upstream.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': connected\n\n');
    };
    const read = readAll(await sse(browser, '/api/events'));
    h.clock.advance(3 * 24 * 3600 * 1000 + 1_000);
    const { error } = await read;
    expect(error).toBeDefined();
    expect(h.events).toContainEqual({ name: 'logout', payload: expect.objectContaining({ reason: 'idle_timeout' }) });
  });

  it('breaks streaming responses off when the BFF closes', async () => {
    const browser = h.browser(1);
    await browser.login();
    h.upstream.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': connected\n\n');
    };
    const read = readAll(await sse(browser, '/api/events'));
    await h.bffs[1]?.close();
    expect((await read).error).toBeDefined();
  });

  it('breaks off, rather than waits for, an event stream whose answer begins after the BFF began to close', async () => {
    const own = await startHarness({ redis: true });
    try {
      const browser = own.browser();
      await browser.login();
      let reached!: () => void;
      const atUpstream = new Promise<void>((resolve) => (reached = resolve));
      let answer!: () => void;
      own.upstream.handler = (_req, res) => {
        reached();
        answer = () => {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write(': connected\n\n');
        };
      };
      const call = browser.api('/api/events', { headers: { accept: 'text/event-stream' } }).then(readAll, (error: unknown) => ({ error }));
      await atUpstream;
      const closing = own.bffs[0]!.close();
      answer();
      // close() ends although the upstream never ends the stream, and the browser sees it broken off.
      await closing;
      expect((await call).error).toBeDefined();
    } finally {
      await own.close();
    }
  });
});

describe('an API that lets reads through without the anti-forgery header (csrf: unsafe-methods), and its connections', () => {
  let h: Harness;
  const held = new Set<ServerResponse>();
  beforeAll(async () => {
    h = await startHarness({
      redis: true,
      apis: (upstream) => [
        { mount: '/api', upstream },
        { mount: '/live', upstream, csrf: 'unsafe-methods' },
        // One connection to the upstream: a stream that holds it makes the next call wait for it.
        { mount: '/one', upstream, timeout: 300, connections: 1 },
        { mount: '/two', upstream, timeout: 300, connections: 2 },
      ],
    });
  });
  afterAll(async () => {
    for (const res of held) res.end();
    await h?.close();
  });

  /** Answers an event stream that stays open (held), and anything else at once. */
  const streamsStayOpen = (req: { headers: Record<string, unknown> }, res: ServerResponse) => {
    if (req.headers.accept === 'text/event-stream') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': connected\n\n');
      held.add(res);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  };

  /** What a native EventSource sends: the cookie, Accept, and no header of the app's own. */
  const eventSource = (browser: Browser, path: string) => browser.request(path, { headers: { accept: 'text/event-stream', 'cache-control': 'no-cache' } });

  it('streams to a native EventSource (no custom header) with the user\'s token, and still refuses other methods without the header', async () => {
    const browser = h.browser();
    await browser.login();
    h.upstream.handler = streamsStayOpen;
    const stream = await eventSource(browser, '/live/events');
    expect(stream.status).toBe(200);
    const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe(': connected\n\n');
    expect(h.upstream.requests.at(-1)?.headers.authorization).toMatch(/^Bearer /);
    await reader.cancel();

    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const res = await browser.request('/live/things', { method, body: method === 'DELETE' ? undefined : '{}', headers: { 'content-type': 'application/json' } });
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({ error: 'csrf_required' });
    }
    // The default stays: every method of the other APIs needs the header.
    const other = await eventSource(browser, '/api/events');
    expect(other.status).toBe(403);
    expect(await other.json()).toMatchObject({ error: 'csrf_required' });
    // Without a session, the read is refused as any call is.
    expect((await eventSource(h.browser(), '/live/events')).status).toBe(401);
  });

  it('holds an upstream connection per open stream: with one, the next call waits for it (504); with two, it is answered', async () => {
    const browser = h.browser();
    await browser.login();
    h.upstream.handler = streamsStayOpen;
    for (const mount of ['/one', '/two']) {
      const stream = await sse(browser, `${mount}/events`);
      expect(stream.status).toBe(200);
      const call = await browser.api(`${mount}/items`);
      expect([mount, call.status]).toEqual([mount, mount === '/one' ? 504 : 200]);
      await stream.body?.cancel();
    }
  });
});
