/**
 * Contestant "ceiling": the least any proxy adding a token can do. A bare node:http server (no Express, no
 * session, no checks) forwards `/api/*` through undici's dispatch API with a static Authorization header and
 * streams the answer back. It is the reference the library is measured against: as fast as a proxy reasonably
 * gets on this stack, so it must stay well written, never a straw man. Env: PORT, UPSTREAM_API_URL,
 * CEILING_TOKEN_BYTES, CEILING_FORWARDED and CEILING_APP with REDIS_URL (optional).
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { Pool, type Dispatcher } from 'undici';

// CEILING_TOKEN_BYTES: a static token of that many bytes instead (a real access token is about 900), to measure
// what a token's size costs a proxy (`BENCHMARKS.md`, "What is left").
const tokenBytes = Number(process.env.CEILING_TOKEN_BYTES ?? 0);
const AUTHORIZATION = `Bearer ${tokenBytes > 0 ? 'x'.repeat(tokenBytes) : 'static-bench-token'}`;
const MOUNT = '/api';
// CEILING_FORWARDED=1: also the four X-Forwarded-* headers the library sends, so that with CEILING_TOKEN_BYTES set
// to the library's token size this proxy sends the upstream what the library sends (`npm run bench -- --instructions`).
const FORWARDED = process.env.CEILING_FORWARDED === '1';
const FORWARDED_HOST = `127.0.0.1:${process.env.PORT}`;
// CEILING_APP=1: what is not under /api goes to an app in the same process (bench/servers/beside-app.ts: Express,
// log lines, Redis at REDIS_URL, fetch), as when the proxy is part of the app it serves. No proxied call goes
// through it. Loaded only then: the ceiling itself stays a process with nothing but the proxy.
const app = process.env.CEILING_APP === '1'
  ? await (await import('./beside-app.js')).besideApp({
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    key: `ceiling-app:${process.pid}:nothing`,
    fetchUrl: process.env.UPSTREAM_API_URL as string,
  })
  : undefined;
// The same upstream pool settings as the library's, so the two differ only in what runs per request.
const pool = new Pool(process.env.UPSTREAM_API_URL as string, { connections: 128, keepAliveTimeout: 30_000 });

/** RFC 9110 7.6.1 hop-by-hop headers; on requests also the browser's host and credentials (the token replaces them). */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'];
const DROP_RESPONSE = new Set(HOP_BY_HOP);
const DROP_REQUEST = new Set([...HOP_BY_HOP, 'host', 'cookie', 'authorization']);

function withoutHopByHop(headers: IncomingHttpHeaders, drop: Set<string>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  // Headers named in Connection are hop-by-hop too; the usual values name none that is not dropped already.
  const connection = headers.connection;
  const named = connection === undefined || connection === 'keep-alive' || connection === 'close'
    ? undefined
    : new Set(connection.split(',').map((t) => t.trim().toLowerCase()));
  for (const name in headers) {
    if (drop.has(name) || named?.has(name)) continue;
    const value = headers[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** Streams one upstream answer into the response: backpressure through the controller, no Readable per answer. */
class Relay implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  /** The upstream's Content-Length while nothing of the body was written: an answer in one chunk leaves in one write. */
  private wholeLength = -1;

  constructor(private readonly res: ServerResponse) {
    // `on`: the end of the answer takes it off, and a response closes once (`once` wraps it in two more objects).
    res.on('close', this.onClientClose);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.res.destroyed) controller.abort(new Error('the client went away'));
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    // Interim answers (100, 103) are not the response.
    if (statusCode < 200) return;
    this.res.writeHead(statusCode, withoutHopByHop(headers, DROP_RESPONSE));
    const length = headers['content-length'];
    if (typeof length === 'string') this.wholeLength = Number(length);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (chunk.length === this.wholeLength) {
      this.res.end(chunk);
      return;
    }
    this.wholeLength = -1;
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    this.res.off('close', this.onClientClose);
    if (!this.res.writableEnded) this.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.res.off('close', this.onClientClose);
    fail(this.res, error);
  }

  private readonly onClientClose = (): void => {
    if (!this.res.writableFinished && this.controller !== undefined && !this.controller.aborted) this.controller.abort(new Error('the client went away'));
  };
}

/** Before the answer began: 502. After: the connection is broken off, so a cut answer is not taken for a whole one. */
function fail(res: ServerResponse, error: Error): void {
  if (res.headersSent) res.destroy(error);
  else if (!res.destroyed) res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway');
}

function forward(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  const next = url.charCodeAt(MOUNT.length);
  if (!url.startsWith(MOUNT) || !(Number.isNaN(next) || next === 47 /* / */ || next === 63 /* ? */)) {
    if (app !== undefined) return app(req, res);
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    return;
  }
  const rest = url.slice(MOUNT.length);
  const headers = withoutHopByHop(req.headers, DROP_REQUEST);
  headers.authorization = AUTHORIZATION;
  if (FORWARDED) {
    headers['x-forwarded-for'] = req.socket.remoteAddress ?? 'unknown';
    headers['x-forwarded-proto'] = 'http';
    headers['x-forwarded-host'] = FORWARDED_HOST;
    headers['x-forwarded-prefix'] = MOUNT;
  }
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
  try {
    pool.dispatch({
      path: rest.startsWith('/') ? rest : `/${rest}`,
      method: req.method as Dispatcher.HttpMethod,
      headers,
      body: hasBody ? req : null,
    }, new Relay(res));
  } catch (error) {
    fail(res, error as Error);
  }
}

// With an app, the server makes its requests and responses as the app's, as the example's does (`serverOptions`:
// Express then changes no prototype; BENCHMARKS.md, "An app's requests in classes of their own").
// Loaded only then, like the app.
const options = app === undefined ? {} : (await import('../../src/entry/server-options.js')).serverOptions(app);
createServer(options, forward).listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
