/**
 * The app a proxy shares its process with, for the ceiling's CEILING_APP=1 (bench/servers/ceiling.ts): what the
 * example's process does besides proxying, without any of the library's work on the proxied calls. An Express app
 * answers `GET /health` and a 404 for the rest, both JSON; each of its requests writes a log line to stdout, reads
 * a key from Redis through node-redis with client-side caching (as the README's setup and the example do), and
 * makes a call with `fetch` (as the library's calls to Auth0 do). None of it runs on a proxied call. What it
 * changes is what Node's own HTTP, stream and event code has seen by the time the proxied calls come
 * (`BENCHMARKS.md`, "A proxy in an app's process").
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import { createClient } from 'redis';

/**
 * The app's request handler. `fetchUrl` is where each request makes its call; `redisUrl` and `key` what it reads
 * (the key is only read: nothing is written).
 */
export async function besideApp(options: { redisUrl: string; key: string; fetchUrl: string }): Promise<(req: IncomingMessage, res: ServerResponse) => void> {
  const redis = createClient({ url: options.redisUrl, RESP: 3, clientSideCache: { ttl: 5_000, maxEntries: 10_000, evictPolicy: 'FIFO' } });
  redis.on('error', (error: Error) => console.error(`Redis: ${error.message}`));
  await redis.connect();
  const app = express();
  app.disable('x-powered-by');
  app.use((req, _res, next) => {
    console.log(JSON.stringify({ event: 'request', method: req.method, path: req.path }));
    next();
  });
  app.get('/health', async (_req, res, next) => {
    try {
      const [stored, upstream] = await Promise.all([redis.get(options.key), fetch(options.fetchUrl).then((r) => r.text())]);
      res.json({ status: 'ok', stored: stored !== null, upstream: upstream.length > 0 });
    } catch (error) {
      next(error);
    }
  });
  app.use((req, res) => void res.status(404).json({ error: 'not_found', error_description: `Nothing at ${req.path}.` }));
  return app;
}
