/**
 * The example BFF: `createBff({...})` in front of an Express app through `bff.wrap(app)` (the faster entry), the page in ./spa, and, in demo mode, the local Auth0 emulator
 * and the example API in the same process. `startExample` is what `npm start` runs, and what the tests and the
 * benchmark start.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import express, { type ErrorRequestHandler, type Response } from 'express';
import { createClient } from 'redis';
// In your app: `from 'express-ort-bff'` (and `'express-ort-bff/local-auth0'` for the emulator).
import { createBff, serverOptions, type Bff, type Logger, type RedisClient } from '../src/index.js';
import type { LocalAuth0 } from '../src/local-auth0/index.js';
import { baseUrlOf, chooseClientAuthMethod, exampleBffOptions, type IdpSettings } from '../src/config/example-env.js';
import type { ExampleConfig } from './config.js';
import type { Demo } from './demo.js';
import { ServerLifecycle } from './lifecycle.js';
import { startTelemetry } from './telemetry.js';

/** Settings that are not part of the environment contract: for tests and embedding. */
export interface StartOptions {
  /** Demo mode: the emulator's access token lifetime in seconds. Default 30. */
  accessTokenTtl?: number;
  /** Prefix of the BFF's Redis keys (the library's default is `bff:`): tests keep their keys apart with it. */
  redisPrefix?: string;
  /** Address to listen on. Default: every interface. */
  host?: string;
  /** Where the example and the library log. Default: the console. */
  logger?: ExampleLogger;
}

export interface ExampleLogger extends Logger {
  info(message: string, details?: Record<string, unknown>): void;
}

export interface RunningExample {
  /** The public URL (BASE_URL): what the browser opens. */
  url: string;
  /** Where this instance itself answers (differs from `url` behind a load balancer). */
  localUrl: string;
  /** Demo mode: the emulator, its admin handle included. */
  auth0?: LocalAuth0;
  /** Demo mode: the login to type into the emulator's form. */
  demoLogin?: { username: string; password: string };
  /** The upstream behind `/api`. */
  apiUrl: string;
  /** Where Prometheus scrapes the BFF's metrics (METRICS_PORT). */
  metricsUrl?: string;
  bff: Bff;
  /**
   * Stops everything it started. By default at once: calls still open are ended. With `gracePeriodMs`, it first
   * stops accepting connections and lets the requests it accepted finish, for up to that long (what SIGTERM does).
   */
  close(options?: CloseOptions): Promise<void>;
}

export interface CloseOptions {
  /** Milliseconds the requests in flight may take to finish before their connections are closed. Default 0. */
  gracePeriodMs?: number;
}

export { chooseClientAuthMethod };

const SPA_DIR = fileURLToPath(new URL('./spa/', import.meta.url));
/** Attempts at the first connection to REDIS_URL before the start gives up (a few hundred milliseconds when refused). */
const FIRST_CONNECT_TRIES = 4;

export const consoleLogger: ExampleLogger = {
  debug: (message, details) => console.log(`debug: ${message}${details ? ` ${JSON.stringify(details)}` : ''}`),
  info: (message, details) => console.log(`${message}${details ? ` ${JSON.stringify(details)}` : ''}`),
  warn: (message, details) => console.warn(`warn: ${message}${details ? ` ${JSON.stringify(details)}` : ''}`),
  error: (message, details) => console.error(`error: ${message}${details ? ` ${JSON.stringify(details)}` : ''}`),
};

/**
 * Starts the example for a validated configuration (see `readConfig`). Everything it started is stopped by
 * `close()`, or at once when starting fails halfway.
 *
 * @example
 * ```ts
 * const example = await startExample(readConfig({ PORT: '0' }));
 * console.log(example.url, example.demoLogin);
 * await example.close();
 * ```
 */
export async function startExample(config: ExampleConfig, options: StartOptions = {}): Promise<RunningExample> {
  const logger = options.logger ?? consoleLogger;
  const cleanup: Array<() => Promise<unknown>> = [];
  let gracePeriodMs = 0;
  const close = async (closeOptions: CloseOptions = {}) => {
    gracePeriodMs = closeOptions.gracePeriodMs ?? 0;
    for (const step of cleanup.splice(0).reverse()) {
      await step().catch((error: unknown) => logger.warn(`while stopping: ${(error as Error).message}`));
    }
  };

  try {
    // The app's routes are added once the BFF exists; the server makes its requests and responses as the app's
    // from the start (serverOptions: Express then changes no prototype, which keeps Node's HTTP code fast).
    const app = express();
    app.disable('x-powered-by');
    // Listen first: with PORT=0 the base URL (and so the emulator's redirect URIs) depend on the port we get.
    // Until the app is attached, requests get 503 JSON (not silence).
    const server = createServer(serverOptions(app));
    const lifecycle = new ServerLifecycle(server);
    await listen(server, config.port, options.host, `PORT ${config.port}`);
    const stopServer = async () => {
      await lifecycle.stop(gracePeriodMs);
      await lifecycle.closed;
    };
    cleanup.push(stopServer);
    const port = (server.address() as AddressInfo).port;
    const localUrl = `http://localhost:${port}`;
    const baseURL = baseUrlOf(config, port);

    let idp: IdpSettings & { jwksUri?: string };
    let demo: Demo | undefined;
    if (config.mode === 'demo') {
      // Loaded only in demo mode: a deployment copied from this example needs neither the emulator nor oidc-provider.
      const { startDemo } = await import('./demo.js');
      const started = await startDemo({
        baseURL,
        audience: config.audience,
        preferredPort: config.port === 0 || port >= 65535 ? 0 : port + 1,
        accessTokenTtl: options.accessTokenTtl,
        warn: (message) => logger.warn(message),
      });
      cleanup.push(() => started.auth0.stop());
      demo = started;
      idp = started.idp;
    } else {
      const metadata = await fetchMetadata(config.issuer, logger);
      idp = {
        issuer: config.issuer,
        clientId: config.clientId,
        clientSecret: config.clientSecret,
        clientAuthMethod: chooseClientAuthMethod(metadata),
        ...(typeof metadata?.jwks_uri === 'string' ? { jwksUri: metadata.jwks_uri } : {}),
      };
    }

    let apiUrl = config.upstreamApiUrl;
    if (apiUrl === undefined) {
      // Loaded only without UPSTREAM_API_URL: a BFF in front of an API of its own needs neither the example API nor
      // the WebSocket server it brings (ws), and keeps no heap for them (every full collection marks it all).
      const { startExampleApi } = await import('./api/server.js');
      const api = await startExampleApi({
        issuer: idp.issuer,
        audience: config.audience,
        ...(idp.jwksUri ? { jwksUri: idp.jwksUri } : {}),
        // With DPoP on, the example API takes only tokens bound to the BFF's key, each call with its proof.
        ...(config.dpopKey ? { dpop: true } : {}),
      });
      cleanup.push(() => api.close());
      apiUrl = api.url;
    }

    let redis: RedisClient | undefined;
    if (config.redisUrl !== undefined) {
      let connected = false;
      const client = createClient({
        url: config.redisUrl,
        socket: {
          connectTimeout: 5_000,
          // A Redis that does not answer at startup stops the start with a message, after a few tries, instead of
          // retrying forever before the example ever listens. Once connected, node-redis reconnects for as long as
          // it takes, backing off as it does by default.
          reconnectStrategy: (retries: number, cause: Error) => {
            if (!connected && retries >= FIRST_CONNECT_TRIES) return new Error(`the Redis server of REDIS_URL did not answer: ${cause.message}`);
            return Math.min(2 ** retries * 50, 2_000) + Math.floor(Math.random() * 200);
          },
        },
        // Client-side caching (Redis 6+): the session read on every API call is answered from this process's
        // memory until Redis says the session changed (an exchange, a roll of the idle expiry, a logout on any
        // instance). The ttl bounds how long a read is trusted when no invalidation can arrive (a hung connection).
        // FIFO eviction: node-redis's default, LRU, moves the entry on every read, a cost on every API call.
        RESP: 3,
        clientSideCache: { ttl: 5_000, maxEntries: 10_000, evictPolicy: 'FIFO' },
      });
      // node-redis reconnects by itself; without a listener an 'error' event would crash the process.
      client.on('error', (error: Error) => logger.warn(`Redis: ${error.message}`));
      await client.connect();
      connected = true;
      cleanup.push(() => client.close());
      redis = client as unknown as RedisClient;
    }

    // OpenTelemetry starts before the BFF is created: the BFF looks for an SDK once, then.
    const telemetry = await startTelemetry(config.telemetry, options.host);
    if (telemetry) cleanup.push(() => telemetry.shutdown());

    const bff = createBff({
      ...exampleBffOptions(config, idp, baseURL),
      apis: [{ mount: '/api', upstream: apiUrl }],
      ...(redis ? { redis } : {}),
      ...(options.redisPrefix === undefined ? {} : { redisPrefix: options.redisPrefix }),
      logger,
    });
    // Stopped in reverse: the browsers' HTTP requests first (no new ones; those accepted are answered within the
    // grace period, then their connections end), so that bff.close(), which waits for API calls in flight, is not
    // held up by one still waiting on the upstream; bff.close() closes the WebSockets (upgraded connections are
    // no longer the server's to end); then the server has stopped.
    cleanup.push(async () => {
      await lifecycle.stop(gracePeriodMs);
      await bff.close();
      await lifecycle.closed;
    });

    // The BFF answers its routes and the API calls in front of the app (bff.wrap below), before Express runs: the
    // fastest entry. app.use(bff) works as well; the README compares the two.
    if (demo) app.use(demo.routes(bff));
    app.use(express.static(SPA_DIR, { index: 'index.html', setHeaders: pageHeaders }));
    app.use((req, res) => sendJson(res, 404, 'not_found', `Nothing at ${req.path}.`));
    app.use(((error, _req, res, _next) => {
      logger.error('Unexpected error in the example', { error: (error as Error)?.message });
      sendJson(res, 500, 'server_error', 'Unexpected failure.');
    }) satisfies ErrorRequestHandler);
    lifecycle.serve(bff.wrap(app));
    // WebSockets under /api (the page's live feed at /api/live) go through the BFF too.
    bff.attach(server);

    try {
      await bff.ready();
    } catch (error) {
      if (config.mode === 'demo') throw error;
      // The library keeps retrying; until it succeeds /healthz answers 503 and logins wait.
      logger.warn(`The issuer's metadata could not be loaded yet (${(error as Error).message}); retrying in the background.`);
    }

    return {
      url: baseURL,
      localUrl,
      ...(demo ? { auth0: demo.auth0, demoLogin: demo.login } : {}),
      apiUrl,
      ...(telemetry?.metricsUrl === undefined ? {} : { metricsUrl: telemetry.metricsUrl }),
      bff,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The discovery document of the issuer, or undefined when it cannot be loaded now. */
async function fetchMetadata(issuer: string, logger: ExampleLogger): Promise<Record<string, unknown> | undefined> {
  const url = new URL('.well-known/openid-configuration', issuer);
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000), headers: { accept: 'application/json' } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return (await res.json()) as Record<string, unknown>;
  } catch (error) {
    logger.warn(`Could not read ${url.href} (${(error as Error).message}): assuming client_secret_post, as Auth0 applications use by default.`);
    return undefined;
  }
}

/** The page only runs its own script and talks to its own origin. */
function pageHeaders(res: Response): void {
  res.setHeader(
    'Content-Security-Policy',
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
      "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  );
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cache-Control', 'no-cache');
}

function sendJson(res: Response, status: number, error: string, description: string): void {
  if (res.headersSent) return void res.end();
  res.setHeader('Cache-Control', 'no-store');
  res.status(status).json({ error, error_description: description });
}

function listen(server: Server, port: number, host: string | undefined, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(error.code === 'EADDRINUSE' ? new Error(`${what} is already in use: set PORT to a free port`, { cause: error }) : error);
    });
    server.listen(port, host, () => resolve());
  });
}
