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
