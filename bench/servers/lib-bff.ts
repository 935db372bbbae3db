/**
 * This library in Redis mode: `app.use(createBff({...}))`, the same env contract as example/start.ts
 * (PORT, BASE_URL, ISSUER_URL, CLIENT_ID, CLIENT_SECRET, AUDIENCE, UPSTREAM_API_URL, REDIS_URL, SESSION_SECRET).
 * The bench uses it while example/start.ts does not exist, and always for the storm and memory runs, where
 * BENCH_ADMIN=1 adds bench-only routes under /__bench (a movable clock, refresh timings, heap after GC, and with
 * BENCH_EVENTS=1 the BFF's events).
 * BENCH_REDIS_PREFIX sets the Redis key prefix; DPOP_PRIVATE_KEY (a private JWK as JSON) turns DPoP on, as in the example.
 * BENCH_ENTRY picks how the BFF meets the app: `use` (default) `app.use(bff)` and `app.listen`; `wrap`
 * `http.createServer(bff.wrap(app))`, where the BFF answers its routes and API calls before Express runs.
 * BENCH_SERVER_OPTIONS=1 makes the server with `serverOptions(app)`: its requests and responses are the app's
 * from the start.
 */
import { createServer } from 'node:http';
import { getHeapCodeStatistics, writeHeapSnapshot } from 'node:v8';
import express from 'express';
import { createClient } from 'redis';
import { createBff, serverOptions, type RedisClient } from '../../src/index.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const admin = process.env.BENCH_ADMIN === '1';
const entry = process.env.BENCH_ENTRY ?? 'use';
if (entry !== 'use' && entry !== 'wrap') throw new Error(`BENCH_ENTRY must be use or wrap, not ${entry}`);
let clockOffsetMs = 0;

// The client the example and README recommend: RESP3 with client-side caching of the session read.
const redis = createClient({ url: env('REDIS_URL'), RESP: 3, clientSideCache: { ttl: 5_000, maxEntries: 10_000, evictPolicy: 'FIFO' } });
redis.on('error', (error: Error) => console.error('redis:', error.message));
await redis.connect();

const bff = createBff({
  issuer: env('ISSUER_URL'),
  clientId: env('CLIENT_ID'),
  clientSecret: env('CLIENT_SECRET'),
  audience: env('AUDIENCE'),
  baseURL: env('BASE_URL'),
  session: { secrets: [env('SESSION_SECRET')] },
  redis: redis as unknown as RedisClient,
  redisPrefix: process.env.BENCH_REDIS_PREFIX ?? 'bff:',
  apis: [{ mount: '/api', upstream: env('UPSTREAM_API_URL') }],
  ...(process.env.DPOP_PRIVATE_KEY ? { dpop: { key: JSON.parse(process.env.DPOP_PRIVATE_KEY) as JsonWebKey } } : {}),
  logger: { warn: (m) => console.error('warn', m), error: (m) => console.error('error', m) },
  ...(admin ? { clock: () => Date.now() + clockOffsetMs } : {}),
});
await bff.ready();

const app = express();
app.disable('x-powered-by');
if (entry === 'use') app.use(bff);
app.get('/', (_req, res) => void res.send('bff'));

if (admin) {
  const refreshes: number[] = [];
  bff.events.on('refresh', (event) => refreshes.push(event.durationMs));
  app.get('/__bench/ping', (_req, res) => void res.send('pong'));
  app.post('/__bench/clock', (req, res) => {
    clockOffsetMs += Number(req.query.advanceMs ?? 0);
    res.json({ offsetMs: clockOffsetMs });
  });
  // Exchange durations (ms) seen since the last call.
  app.post('/__bench/refreshes', (_req, res) => void res.json({ durationsMs: refreshes.splice(0) }));
  // With BENCH_EVENTS=1 (the soak), the BFF's events since the last call, each with the time it was emitted (for
  // the soak's accounting). Off otherwise: kept until asked for, they would be counted as the BFF's heap.
  if (process.env.BENCH_EVENTS === '1') {
    const events: Array<Record<string, unknown>> = [];
    for (const name of ['login', 'refresh', 'refresh_failed', 'logout', 'revocation_failed'] as const) {
      bff.events.on(name, (payload: object) => void events.push({ name, at: Date.now(), ...payload }));
    }
    app.post('/__bench/events', (_req, res) => void res.json({ events: events.splice(0) }));
  }
  app.get('/__bench/heap', async (_req, res) => {
    const gc = (globalThis as { gc?: () => void }).gc;
    // Between collections, let finalization callbacks run: AbortSignal.timeout() keeps its timer alive in a
    // FinalizationRegistry until the signal is collected and the callback has run, which a GC alone never does.
    if (gc) for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const { heapUsed, heapTotal, rss, external, arrayBuffers } = process.memoryUsage();
    // Compiled code grows as functions get hot, bounded by the program's size: not what sessions leave behind.
    // All of it, as V8 counts it: the machine code with its metadata, and the bytecode with its. Leaving out only
    // the code space (a seventh of that at start-up) counted about 0.4 MiB of freshly optimised code as growth
    // over a 10,000-session run.
    const code = getHeapCodeStatistics();
    const compiled = code.code_and_metadata_size + code.bytecode_and_metadata_size;
    res.json({ gc: gc !== undefined, heapUsed, heapUsedWithoutCode: heapUsed - compiled, heapTotal, rss, external, arrayBuffers });
  });
  // A heap snapshot written to ?dir (for finding what a heap growth is made of); answers the file name.
  app.post('/__bench/heap-snapshot', async (req, res) => {
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((resolve) => setTimeout(resolve, 20));
    res.json({ file: writeHeapSnapshot(`${String(req.query.dir ?? '.')}/bff-${Date.now()}.heapsnapshot`) });
  });
}

// `app.listen` is `http.createServer(app).listen`: one server either way, made as BENCH_SERVER_OPTIONS asks.
const options = process.env.BENCH_SERVER_OPTIONS === '1' ? serverOptions(app) : {};
const server = createServer(options, entry === 'wrap' ? bff.wrap(app) : app).listen(Number(env('PORT')), '127.0.0.1');
// WebSockets under /api through the BFF (the bench measures them, and how fast they close at logout).
bff.attach(server);
process.on('SIGTERM', () => {
  server.close();
  void bff.close().then(() => redis.close()).finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 2_000).unref();
});
