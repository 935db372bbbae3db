import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

/**
 * Express's compiled 'trust proxy' setting (`app.get('trust proxy fn')`): whether the address at `hop` (0 is the
 * socket's peer, 1 the last X-Forwarded-For entry, ...) is a proxy of the app's own.
 */
export type TrustProxy = (address: string, hop: number) => boolean;

/**
 * Where the app's trust setting is left on a request the BFF answers without Express, when it is set: `bff.wrap(app)`'s
 * API calls, and WebSocket handshakes (which never go through Express).
 */
export const WRAPPED_TRUST = Symbol('express-ort-bff.trust-proxy');

interface ExpressApp {
  get?(setting: string): unknown;
}

/** The app's 'trust proxy' setting as Express compiled it, or undefined when it is off (Express's default). */
export function appTrust(app: unknown): TrustProxy | undefined {
  const get = (app as ExpressApp | undefined)?.get;
  if (typeof get !== 'function' || !get.call(app, 'trust proxy')) return undefined;
  const trust = get.call(app, 'trust proxy fn');
  return typeof trust === 'function' ? (trust as TrustProxy) : undefined;
}

/**
 * The browser's address as the app sees it (what Express's `req.ip` gives): the socket's peer; with 'trust proxy',
 * the X-Forwarded-For entries are walked from the nearest, and the first address not trusted is the client's (the
 * farthest one when every hop is trusted). Under `app.use(bff)` the app is the request's; under `bff.wrap(app)`,
 * the wrapped app's.
 */
export function clientAddress(req: IncomingMessage, headers: IncomingHttpHeaders = req.headers): string | undefined {
  const peer = req.socket.remoteAddress;
  const trust = appTrust((req as { app?: unknown }).app) ?? (req as { [WRAPPED_TRUST]?: TrustProxy })[WRAPPED_TRUST];
  if (trust === undefined || peer === undefined) return peer;
  const header = headers['x-forwarded-for'];
  if (!header) return peer;
  const hops = forwardedAddresses(Array.isArray(header) ? header.join(',') : header);
  let address = peer;
  for (let hop = 0; hop < hops.length; hop++) {
    if (!trust(address, hop)) return address;
    address = hops[hops.length - 1 - hop] as string;
  }
  return address;
}

/**
 * The addresses an X-Forwarded-For value lists, read as Express reads them: each entry without the spaces around
 * it, empty entries (`a,,b`, a trailing comma) skipped rather than taken for an address.
 */
function forwardedAddresses(header: string): string[] {
  const addresses: string[] = [];
  for (const entry of header.split(',')) {
    let start = 0;
    let end = entry.length;
    while (start < end && entry.charCodeAt(start) === 32) start++;
    while (end > start && entry.charCodeAt(end - 1) === 32) end--;
    if (end > start) addresses.push(entry.slice(start, end));
  }
  return addresses;
}

/**
 * The Express app that answers the server's requests, when no request has come through the BFF yet to tell it
 * (the first request after a restart is often a WebSocket reconnecting): `app.listen()` and
 * `http.createServer(app)` make the app the server's request listener.
 */
export function serverApp(req: IncomingMessage): unknown {
  const server = (req.socket as { server?: { listeners?: (event: string) => unknown[] } }).server;
  const listeners = typeof server?.listeners === 'function' ? server.listeners('request') : [];
  return listeners.find((listener) => typeof listener === 'function' && typeof (listener as { handle?: unknown }).handle === 'function' && typeof (listener as { get?: unknown }).get === 'function');
}
