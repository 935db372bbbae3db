import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startServer, type ServerProcess } from '../../bench/lib/procs.js';

// The bench's ceiling (bench/servers/ceiling.ts) with CEILING_APP: an app (bench/servers/beside-app.ts) runs in the
// proxy's process, and the proxied calls are the ceiling's as before. `npm run bench -- --instructions`,
// `--allocations` and `--spread` measure it as a proxy in an app's process; this checks that it is what they say.
describe('the bench ceiling, CEILING_APP', () => {
  let upstream: Server;
  let upstreamUrl = '';
  const seen: IncomingHttpHeaders[] = [];
  const servers: ServerProcess[] = [];
  const logDir = mkdtempSync(join(tmpdir(), 'bench-ceiling-'));

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ path: req.url }));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
    rmSync(logDir, { recursive: true, force: true });
  });

  async function ceiling(env: Record<string, string>): Promise<ServerProcess> {
    const port = await freePort();
    const server = await startServer({ name: `ceiling-${port}`, script: 'bench/servers/ceiling.ts', port, logDir, env: { UPSTREAM_API_URL: upstreamUrl, ...env } });
    servers.push(server);
    return server;
  }

  it('runs the app beside the proxy (Express, Redis, fetch, a log line per request), and proxies /api as the ceiling does', async () => {
    const server = await ceiling({ CEILING_APP: '1', REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', CEILING_FORWARDED: '1', CEILING_TOKEN_BYTES: '40' });

    const upstreamBefore = seen.length;
    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(200);
    expect(health.headers.get('content-type')).toMatch(/^application\/json/);
    // It read its key from Redis (there is none: it only reads) and called the upstream with fetch.
    expect(await health.json()).toEqual({ status: 'ok', stored: false, upstream: true });
    expect(seen.length).toBe(upstreamBefore + 1);
    expect(seen.at(-1)?.authorization).toBeUndefined();
    await expect.poll(() => readFileSync(server.logFile, 'utf8')).toMatch(/"event":"request","method":"GET","path":"\/health"/);

    const missing = await fetch(`${server.url}/nothing-here`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: 'not_found', error_description: 'Nothing at /nothing-here.' });

    const before = seen.length;
    const proxied = await fetch(`${server.url}/api/items?x=1`, { headers: { cookie: 'session=abc' } });
    expect(proxied.status).toBe(200);
    expect(await proxied.json()).toEqual({ path: '/items?x=1' });
    // Only the proxied call reached the upstream, with what the same-sending ceiling sends.
    expect(seen.length).toBe(before + 1);
    const sent = seen.at(-1) as IncomingHttpHeaders;
    expect(sent.authorization).toBe(`Bearer ${'x'.repeat(40)}`);
    expect(sent.cookie).toBeUndefined();
    expect(sent['x-forwarded-prefix']).toBe('/api');
  });

  it('without it, answers nothing but /api, as the ceiling always has', async () => {
    const server = await ceiling({});
    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(404);
    expect(await health.text()).toBe('not found');
    const proxied = await fetch(`${server.url}/api/items`);
    expect(proxied.status).toBe(200);
    expect(seen.at(-1)?.authorization).toBe('Bearer static-bench-token');
  });
});
