import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import express from 'express';
import { createClient } from 'redis';
import { WebSocketServer, type WebSocket } from 'ws';
import { createBff, serverOptions, type Bff, type BffOptions, type RedisClient } from '../../src/index.js';
import type { BffEvents } from '../../src/events/events.js';
import { CookieJar, scriptedLogin, startLocalAuth0, type LocalAuth0, type LocalAuth0Client, type LocalAuth0Options } from '../../src/local-auth0/index.js';

export const USER = { username: 'alice', password: 'alice-password', sub: 'auth0|alice', email: 'alice@example.com', name: 'Alice Example' };
export const AUDIENCE = 'https://api.example.test';
export const CLIENT_ID = 'bff-client';
export const CLIENT_SECRET = 'bff-client-secret-for-tests-only';
export const SESSION_SECRET = 'test-session-secret-test-session-secret';
/**
 * What a token looks like, for checks that none reached an answer, a log line or a span: a JWT's header and payload
 * (`eyJ...` twice), or the emulator's ORT (`ORT` and its long random id). Not a bare `eyJ` or `ORT`, which random
 * ids in answers (a logout link's `sid`, a `sessionRef`) contain once in a few thousand runs.
 */
export const TOKEN_SHAPED = /eyJ[\w-]*\.eyJ[\w-]*\.|ORT[\w-]{20,}/;

/** A clock the tests move forward instead of sleeping. */
export class TestClock {
  private offset = 0;
  readonly now = (): number => Date.now() + this.offset;
  advance(ms: number): void {
    this.offset += ms;
  }
}

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/**
 * The example upstream API: records what it receives; a test may replace how it answers. It also takes
 * WebSockets: by default each one echoes what it gets; `onSocket` replaces that, `upgradeHandler` the handshake.
 */
export interface Upstream {
  url: string;
  requests: RecordedRequest[];
  handler: ((req: IncomingMessage, res: ServerResponse, body: string) => void) | undefined;
  /** WebSocket handshakes received (the headers the BFF sent). */
  upgrades: RecordedRequest[];
  /** Every WebSocket accepted, with the close code it ended with (once it did). */
  sockets: Array<{ ws: WebSocket; url: string; closeCode?: number }>;
  onSocket: ((ws: WebSocket, req: IncomingMessage) => void) | undefined;
  upgradeHandler: ((req: IncomingMessage, socket: Duplex, head: Buffer) => void) | undefined;
  close(): Promise<void>;
}

export async function startUpstream(): Promise<Upstream> {
  const upstream: Upstream = { url: '', requests: [], handler: undefined, upgrades: [], sockets: [], onSocket: undefined, upgradeHandler: undefined, close: async () => {} };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      upstream.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (upstream.handler) return upstream.handler(req, res, body);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ok: true, method: req.method, url: req.url, body }));
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  // Under a path with "deflate", the upstream agrees to compress (permessage-deflate) when the client offers it.
  const deflating = new WebSocketServer({ noServer: true, perMessageDeflate: true });
  // Upgraded connections are no longer the server's to close: remember every connection, to end them all at close.
  const connections = new Set<Socket>();
  server.on('connection', (socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
  });
  server.on('upgrade', (req, socket, head) => {
    upstream.upgrades.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: '' });
    if (upstream.upgradeHandler) return upstream.upgradeHandler(req, socket, head);
    (req.url?.includes('deflate') ? deflating : wss).handleUpgrade(req, socket, head, (ws) => {
      const entry: Upstream['sockets'][number] = { ws, url: req.url ?? '' };
      upstream.sockets.push(entry);
      ws.on('close', (code) => void (entry.closeCode = code));
      if (upstream.onSocket) return upstream.onSocket(ws, req);
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
  });
  await listen(server);
  upstream.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  upstream.close = async () => {
    for (const server of [wss, deflating]) {
      for (const client of server.clients) client.terminate();
      server.close();
    }
    for (const socket of connections) socket.destroy();
    await closeServer(server);
  };
  return upstream;
}

export interface HarnessOptions {
  redis?: boolean;
  instances?: number;
  bff?: Partial<BffOptions>;
  /** Options of one instance, over `bff` (instances that differ: a rollout of a new key, of new settings). */
  instanceBff?: (instance: number) => Partial<BffOptions>;
  /**
   * The proxied APIs, given the upstream's URL and the emulator (an API that checks its tokens needs the issuer).
   * Default: /api -> the upstream.
   */
  apis?: (upstreamUrl: string, auth0: LocalAuth0) => BffOptions['apis'] | Promise<BffOptions['apis']>;
  auth0?: Partial<LocalAuth0Options>;
  /** Changes to the BFF's client registration at the emulator. */
  client?: Partial<LocalAuth0Client>;
  /**
   * Builds the app around the BFF (default: `express().use(bff)`, or a bare `express()` under the `wrap` entry; a
   * home page is added).
   */
  app?: (bff: Bff) => express.Express;
  /**
   * How the server reaches the BFF: `app.use(bff)` ('use') or `http.createServer(bff.wrap(app))` ('wrap'; with
   * session.external, which wrap refuses, the app itself). Default: {@link TEST_ENTRY}.
   */
  entry?: Entry;
  /** Routes WebSocket handshakes to the BFF (default: `bff.attach(server)`). */
  attach?: (bff: Bff, server: Server) => void;
  /** Redis URL for the BFF (default REDIS_URL or the local server). */
  redisUrl?: string;
  /**
   * Gives every instance a Redis client of its own with RESP3 client-side caching (as the example and README
   * recommend), so that one instance's cache must be invalidated by Redis when another changes a session.
   * Default: one plain client shared by the instances.
   */
  redisClientSideCache?: { ttl?: number };
  /**
   * Connects a Redis client of another kind (a cluster or Sentinel client of a topology the test started), given
   * `redisClientSideCache`; implies `redis`. The harness then leaves the keys to that topology's owner.
   */
  redisConnect?: (options: { clientSideCache?: { ttl?: number } }) => Promise<RedisClient>;
}

export type Entry = 'use' | 'wrap';

/**
 * The entry the harness serves the BFF through unless a test names one: BFF_TEST_ENTRY, which vitest's `wrap`
 * project sets to run the proxy, session and fault tests again through `bff.wrap(app)`; else `app.use(bff)`.
 */
export const TEST_ENTRY: Entry = process.env.BFF_TEST_ENTRY === 'wrap' ? 'wrap' : 'use';

/**
 * Both ways an app may connect to Redis: a plain client, and RESP3 client-side caching (the README's setup), where
 * each instance answers session reads from its own memory until Redis invalidates them. Spread `options` into
 * `startHarness`.
 */
export const REDIS_CLIENT_MODES: ReadonlyArray<{ mode: string; options: Pick<HarnessOptions, 'redisClientSideCache'> }> = [
  { mode: 'plain Redis clients', options: {} },
  { mode: 'client-side caching', options: { redisClientSideCache: {} } },
];

export interface Harness {
  auth0: LocalAuth0;
  upstream: Upstream;
  clock: TestClock;
  /** One URL per BFF instance (all share Redis when `redis` is on). */
  urls: string[];
  bffs: Bff[];
  /** The BFF instances' HTTP servers. */
  servers: Server[];
  redis: RedisClient | undefined;
  /** Every Redis client the instances use (one, unless `redisClientSideCache` gives each its own). */
  redisClients: RedisClient[];
  prefix: string;
  events: Array<{ name: keyof BffEvents; payload: unknown }>;
  logs: string[];
  browser(instance?: number): Browser;
  redisKeys(): Promise<string[]>;
  close(): Promise<void>;
}

/** Starts the emulator, an upstream and one or more BFF instances on loopback, with their own Redis prefix. */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const count = options.instances ?? 1;
  const entry = options.entry ?? TEST_ENTRY;
  // Under the wrap entry the app is made first, and the server makes its requests and responses as the app's
  // (`serverOptions(app)`), as the README shows; under `app.use(bff)` a plain server, as `app.listen` makes.
  const wrapped = entry === 'wrap' && options.app === undefined && options.bff?.session?.external !== true;
  const apps = Array.from({ length: count }, () => (wrapped ? express() : undefined));
  const servers = await Promise.all(apps.map(async (app) => {
    const server = createServer(app ? serverOptions(app) : {});
    await listen(server);
    return server;
  }));
  const urls = servers.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`);
  const clock = new TestClock();
  const upstream = await startUpstream();
  const auth0 = await startLocalAuth0({
    clients: [{
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      redirectUris: urls.map((u) => `${u}/auth/callback`),
      postLogoutRedirectUris: urls.map((u) => `${u}/`),
      backchannelLogoutUri: `${urls[0]}/auth/backchannel-logout`,
      ...options.client,
    }],
    users: [{ sub: USER.sub, username: USER.username, password: USER.password, email: USER.email, name: USER.name }],
    apis: [{ audience: AUDIENCE }, { audience: 'https://other-api.example.test' }],
    ...options.auth0,
  });
  const redisClients: RedisClient[] = [];
  const prefixId = randomUUID();
  const connectRedis = async (): Promise<RedisClient> => {
    const cache = options.redisClientSideCache;
    if (options.redisConnect) {
      const client = await options.redisConnect(cache ? { clientSideCache: cache } : {});
      redisClients.push(client);
      return client;
    }
    const client = createClient({
      url: options.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      socket: { connectTimeout: 2_000, reconnectStrategy: () => 100 },
      // A test can find its own connections (and only those) in CLIENT LIST.
      name: `bfftest-${prefixId}`,
      ...(cache ? { RESP: 3, clientSideCache: { maxEntries: 1_000, evictPolicy: 'FIFO', ...cache } } : {}),
    });
    client.on('error', () => {});
    await client.connect();
    redisClients.push(client as unknown as RedisClient);
    return client as unknown as RedisClient;
  };
  const redis = options.redis || options.redisConnect ? await connectRedis() : undefined;
  const prefix = `bfftest:${prefixId}:`;
  const events: Harness['events'] = [];
  const logs: string[] = [];
  // Debug lines reach `logs` only with `bff: { logLevel: 'debug' }` (a logger without levels gets info and up).
  const logger = {
    debug: (m: string, d?: object) => logs.push(`debug ${m} ${d ? JSON.stringify(d) : ''}`),
    info: (m: string, d?: object) => logs.push(`info ${m} ${d ? JSON.stringify(d) : ''}`),
    warn: (m: string, d?: object) => logs.push(`warn ${m} ${d ? JSON.stringify(d) : ''}`),
    error: (m: string, d?: object) => logs.push(`error ${m} ${d ? JSON.stringify(d) : ''}`),
  };

  const apis = options.apis ? await options.apis(upstream.url, auth0) : [{ mount: '/api', upstream: upstream.url }];
  const instanceRedis = await Promise.all(servers.map((_, i) =>
    redis && options.redisClientSideCache && i > 0 ? connectRedis() : Promise.resolve(redis)));
  const bffs = servers.map((server, i) => {
    const bff = createBff({
      issuer: auth0.issuer,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      audience: AUDIENCE,
      // Every instance serves one public URL in production; here each has its own so the tests can reach it.
      baseURL: urls[i] as string,
      session: { secrets: [SESSION_SECRET] },
      apis,
      redis: instanceRedis[i],
      redisPrefix: prefix,
      clock: clock.now,
      logger,
      tokens: { exchangeDeadline: 1_500, attemptTimeout: 500 },
      ...options.bff,
      ...options.instanceBff?.(i),
    });
    for (const name of ['login', 'refresh', 'refresh_failed', 'client_token', 'client_token_failed', 'logout', 'revocation_failed', 'backchannel_logout_rejected', 'upstream_failed', 'store_failed'] as const) {
      bff.events.on(name, (payload: unknown) => events.push({ name, payload }));
    }
    const app = options.app ? options.app(bff) : apps[i] ?? (entry === 'wrap' ? express() : express().use(bff));
    app.get('/', (_req, res) => void res.send('home'));
    server.on('request', entry === 'wrap' && options.bff?.session?.external !== true ? bff.wrap(app) : app);
    if (options.attach) options.attach(bff, server);
    else bff.attach(server);
    return bff;
  });
  // Discovery has the harness's 500 ms attempt timeout; on a loaded machine the first try may miss it, and the BFF
  // tries again (each ready() call starts another attempt). A real failure still fails here, after 20 s.
  await Promise.all(bffs.map((b) => readyWithin(b, 20_000)));

  return {
    auth0, upstream, clock, urls, bffs, servers, redis, redisClients, prefix, events, logs,
    browser: (instance = 0) => new Browser(urls, instance),
    redisKeys: async () => (redis ? scanKeys(redis, `${prefix}*`) : []),
    close: async () => {
      // Browsers' connections first: a stream still open through the proxy ends with them, and the pools can close.
      // The BFFs close their WebSockets (which the servers no longer count as HTTP connections) before the servers stop.
      for (const s of servers) s.closeAllConnections();
      await Promise.all(bffs.map((b) => b.close()));
      await Promise.all(servers.map((s) => closeServer(s)));
      await upstream.close();
      await auth0.stop();
      if (redis) {
        for (const client of redisClients) void (client as unknown as { destroy(): unknown }).destroy();
        if (options.redisConnect) return;
        // Clean up over a connection of our own: the BFF's may point at a relay a test has cut.
        const cleaner = createClient({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
        await cleaner.connect();
        for await (const batch of cleaner.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) if (batch.length) await cleaner.del(batch);
        await cleaner.close();
      }
    },
  };
}

/** A client of the test Redis, as a test makes one. */
const plainClient = () => createClient({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
type PlainClient = ReturnType<typeof plainClient>;

/**
 * A `redisConnect` giving the BFF a plain client of the test Redis whose commands `change` may replace (to stall
 * one, or lose its answer). A harness given `redisConnect` leaves its keys to the test: see `closeDeletingKeys`.
 */
export function stubbedRedis(change: (client: PlainClient) => void): NonNullable<HarnessOptions['redisConnect']> {
  return async () => {
    const client = plainClient();
    client.on('error', () => {});
    await client.connect();
    change(client);
    return client as unknown as RedisClient;
  };
}

/** Deletes every key of the harness, then closes it: for a harness made with `redisConnect`. */
export async function closeDeletingKeys(h: Harness | undefined): Promise<void> {
  if (h?.redis) {
    const keys = await scanKeys(h.redis, `${h.prefix}*`);
    if (keys.length > 0) await (h.redis as unknown as { del(keys: string[]): Promise<number> }).del(keys);
  }
  await h?.close();
}

/** Every key matching a pattern, on a plain client, a Sentinel client, or every master of a cluster. */
export async function scanKeys(client: RedisClient, match: string): Promise<string[]> {
  type Scanner = { scanIterator(o: object): AsyncIterable<string[]> };
  const cluster = client as unknown as { masters?: unknown[]; nodeClient?(node: unknown): Promise<Scanner> };
  const scanners = cluster.masters && cluster.nodeClient
    ? await Promise.all(cluster.masters.map((m) => (cluster.nodeClient as (node: unknown) => Promise<Scanner>)(m)))
    : [client as unknown as Scanner];
  const keys: string[] = [];
  for (const scanner of scanners) for await (const batch of scanner.scanIterator({ MATCH: match, COUNT: 500 })) keys.push(...batch);
  return keys;
}

/** A scripted browser: a cookie jar and fetch, never following redirects by itself. */
export class Browser {
  readonly jar = new CookieJar();
  constructor(private readonly urls: string[], private instance: number) {}

  get url(): string {
    return this.urls[this.instance] as string;
  }
  /** Talk to another instance from now on, with the same cookies (replicas behind one URL). */
  use(instance: number): this {
    this.instance = instance;
    return this;
  }

  async request(path: string, init: RequestInit = {}): Promise<Response> {
    const url = path.startsWith('http') ? path : `${this.url}${path}`;
    const cookie = this.jar.header(url);
    const headers = new Headers(init.headers);
    if (cookie) headers.set('cookie', cookie);
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.jar.setFrom(url, res);
    return res;
  }

  /** An API call the way the SPA makes it. */
  api(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (!headers.has('x-csrf')) headers.set('x-csrf', '1');
    return this.request(path, { ...init, headers });
  }

  /** Logs in through the emulator's form; returns the callback answer (a 302 on success). */
  async login(returnTo?: string, user: { username: string; password: string } = USER): Promise<Response> {
    const start = await this.request(`/auth/login${returnTo === undefined ? '' : `?returnTo=${encodeURIComponent(returnTo)}`}`);
    if (start.status !== 302) throw new Error(`login did not redirect: ${start.status} ${await start.text()}`);
    const { callbackUrl } = await scriptedLogin(start.headers.get('location') as string, user, { jar: this.jar, stopAt: `${this.url}/auth/callback` });
    return this.request(callbackUrl);
  }

  async user(): Promise<{ status: number; body: any }> {
    const res = await this.request('/auth/user');
    return { status: res.status, body: await res.json() };
  }
}

export function listen(server: Server): Promise<void> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
}

export function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A loopback port for a server a test starts on a port it must name (below the ephemeral range: see there). */
export { freePort } from '../../bench/lib/procs.js';

/** A loopback port nobody listens on: an upstream or issuer that is down. */
export async function deadPort(): Promise<number> {
  // Below the ephemeral range that every test server's port 0 draws from, so no server of a test running alongside
  // can take it meanwhile (a port freed a moment ago could be handed out again at once).
  // Not one of fetch's "bad ports" either (1, 7, 9, ...), which fetch refuses before connecting.
  for (const port of [2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18]) if (await refusesConnections(port)) return port;
  throw new Error('every candidate port below 1024 takes connections on 127.0.0.1: no dead port for the test');
}

/** Whether nothing listens on a loopback port: a connection to it is refused. */
export function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

async function readyWithin(bff: Bff, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await bff.ready();
    } catch (error) {
      if (Date.now() > until) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Waits for a condition, polling; fails with the message when it does not hold within the time. */
export async function waitFor(condition: () => boolean | Promise<boolean>, message: string, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await condition()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting: ${message}`);
}
