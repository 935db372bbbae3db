import type { IncomingHttpHeaders } from 'node:http';
import WebSocket from 'ws';
import type { Browser } from './harness.js';

/** How a handshake through the BFF ended, and (when it opened) everything the socket received afterwards. */
export type Handshake =
  | { kind: 'open'; ws: WebSocket; headers: IncomingHttpHeaders; messages: Array<{ data: Buffer; binary: boolean }>; closed: Promise<Closed> }
  | { kind: 'refused'; status: number; headers: IncomingHttpHeaders; body: string };

export interface Closed {
  code: number;
  reason: string;
  /** performance.now() when the close was seen. */
  at: number;
}

/**
 * Opens a WebSocket as the browser's page would: its cookies, and by default the page's Origin (the BFF's URL).
 * Resolves once it opened (a close right after still counts as opened) or the handshake was refused.
 */
export function openSocket(browser: Browser, path: string, options: { origin?: string | null; protocols?: string[]; headers?: Record<string, string> } = {}): Promise<Handshake> {
  const url = `${browser.url.replace(/^http/, 'ws')}${path}`;
  const cookie = browser.jar.header(browser.url);
  const origin = options.origin === undefined ? browser.url : options.origin;
  const ws = new WebSocket(url, options.protocols ?? [], {
    headers: { ...options.headers, ...(cookie ? { cookie } : {}) },
    ...(origin === null ? {} : { origin }),
  });
  const messages: Array<{ data: Buffer; binary: boolean }> = [];
  ws.on('message', (data: Buffer, binary) => messages.push({ data, binary }));
  const closed = new Promise<Closed>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString(), at: performance.now() }));
  });
  return new Promise((resolve, reject) => {
    ws.once('upgrade', (res) => {
      ws.once('open', () => resolve({ kind: 'open', ws, headers: res.headers, messages, closed }));
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ kind: 'refused', status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    ws.once('error', (error) => reject(error));
  });
}

/** The opened socket of a handshake, failing the test when it was refused. */
export function opened(handshake: Handshake): Extract<Handshake, { kind: 'open' }> {
  if (handshake.kind !== 'open') throw new Error(`the handshake was refused: ${handshake.status} ${handshake.body}`);
  return handshake;
}

/** Sends a message and waits for the echo (the harness's upstream echoes by default). */
export async function roundTrip(socket: Extract<Handshake, { kind: 'open' }>, data: string | Buffer): Promise<{ data: Buffer; binary: boolean }> {
  const before = socket.messages.length;
  socket.ws.send(data);
  const until = Date.now() + 10_000;
  while (socket.messages.length === before) {
    if (Date.now() > until) throw new Error('no echo');
    await new Promise((r) => setTimeout(r, 5));
  }
  return socket.messages[before] as { data: Buffer; binary: boolean };
}

/**
 * A browser logged in through instance 0 whose WebSocket is held by instance 1 (checked with a round trip); the
 * browser is back on instance 0 afterwards, where a logout then ends the session.
 */
export async function socketHeldByInstance1(browser: Browser, path = '/api/live'): Promise<Extract<Handshake, { kind: 'open' }>> {
  await browser.use(0).login();
  const socket = opened(await openSocket(browser.use(1), path));
  const echoed = await roundTrip(socket, 'via 1');
  if (echoed.data.toString() !== 'via 1') throw new Error(`the socket through instance 1 echoed ${echoed.data.toString()}`);
  browser.use(0);
  return socket;
}
