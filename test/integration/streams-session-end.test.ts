/**
 * Long responses end with their session (DESIGN invariant 12) also when the session ends under a fault of the
 * store: a logout or a refused ORT that could not read which sessions share the Auth0 session, a signal to the
 * other instances that did not go out at once, and a download whose first byte comes late.
 */
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { closeDeletingKeys, startHarness, stubbedRedis, USER, waitFor, type Browser, type Harness } from '../support/harness.js';

/** Whether a response was read to its end or broken off: `settled` turns true either way. */
function watch(response: Promise<Response>): { settled: boolean } {
  const state = { settled: false };
  const done = () => void (state.settled = true);
  response.then(async (res) => {
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    for (;;) if ((await reader.read()).done) break;
  }).then(done, done);
  return state;
}

const sse = (browser: Browser, path: string) => browser.api(path, { headers: { accept: 'text/event-stream' } });

describe('long responses when their session ends under a fault of the store', () => {
  let h: Harness;
  /** Upstream answers still open. */
  const open = new Set<ServerResponse>();
  /** While true, reads of the sid and sub indexes fail (on a cluster, their master may fail over alone). */
  let indexDown = false;
  /** How many PUBLISHes fail next (a blip of the connection). */
  let failPublishes = 0;

  beforeAll(async () => {
    h = await startHarness({
      instances: 2,
      bff: { redisCommandTimeout: 300 },
      apis: (upstream) => [{ mount: '/api', upstream, timeout: 10_000 }],
      redisConnect: stubbedRedis((client) => {
        const zRange = client.zRange.bind(client);
        const publish = client.publish.bind(client);
        Object.assign(client, {
          zRange: (...args: Parameters<typeof zRange>) => (indexDown ? Promise.reject(new Error('CLUSTERDOWN The cluster is down')) : zRange(...args)),
          publish: (...args: Parameters<typeof publish>) => (failPublishes > 0 && failPublishes-- > 0 ? Promise.reject(new Error('Socket closed unexpectedly')) : publish(...args)),
        });
      }),
    });
  });
  afterAll(() => closeDeletingKeys(h));
  beforeEach(async () => {
    indexDown = false;
    failPublishes = 0;
    h.auth0.admin.reset();
    await h.auth0.admin.endSession({ sub: USER.sub });
    for (const res of open) res.destroy();
    h.upstream.handler = (_req, res) => {
      open.add(res);
      res.once('close', () => open.delete(res));
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': connected\n\n');
    };
  });

  it('breaks off the stream of a session whose logout could not read the Auth0 session\'s other sessions', async () => {
    const browser = h.browser(0);
    await browser.login();
    const stream = watch(sse(browser, '/api/events'));
    await waitFor(() => open.size === 1, 'the stream to open');
    const { body } = await browser.user();
    indexDown = true;
    // The ORT is revoked: the browser is logged out (and the store is told later).
    expect((await browser.request(body.logoutUrl)).status).toBe(302);
    await waitFor(() => stream.settled && open.size === 0, 'the stream to end with its session');
  });

  it('breaks off the stream of a session whose ORT Auth0 refused while the Auth0 session\'s other sessions could not be read', async () => {
    const browser = h.browser(0);
    await browser.login();
    const stream = watch(sse(browser, '/api/events'));
    await waitFor(() => open.size === 1, 'the stream to open');
    await h.auth0.admin.endSession({ sub: USER.sub });
    h.clock.advance(120_000);
    indexDown = true;
    const res = await browser.api('/api/items', { headers: { accept: 'application/json' } });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'session_ended' });
    await waitFor(() => stream.settled && open.size === 0, 'the stream to end with its session');
  });

  it('ends a stream on the other instance soon although the first signal to it failed', async () => {
    const browser = h.browser(1);
    await browser.login();
    const stream = watch(sse(browser, '/api/events'));
    await waitFor(() => open.size === 1, 'the stream to open');
    const { body } = await browser.use(0).user();
    failPublishes = 1;
    expect((await browser.request(body.logoutUrl)).status).toBe(302);
    // Not at the other instance's next check of its sessions, a minute later.
    await waitFor(() => stream.settled && open.size === 0, 'the stream on the other instance to end', 10_000);
  });

  it('breaks off a download whose first byte has not come yet when its session ends', async () => {
    const browser = h.browser(0);
    await browser.login();
    h.upstream.handler = (_req, res) => {
      open.add(res);
      res.once('close', () => open.delete(res));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '1000000' });
      res.flushHeaders();
    };
    const download = watch(browser.api('/api/report.bin'));
    await waitFor(() => open.size === 1, 'the download to start');
    const { body } = await browser.user();
    expect((await browser.request(body.logoutUrl)).status).toBe(302);
    await waitFor(() => download.settled && open.size === 0, 'the download to end with its session');
  });
});
