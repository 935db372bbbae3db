/**
 * WebSocket load for the bench, run as its own process (pinned to the load generator's core): `connections`
 * sockets, each keeping `inFlight` messages of `size` bytes on their way to an echo server, for `seconds`.
 * Prints one JSON line: { messages, seconds, errors }. Env: WS_URL, WS_COOKIE, WS_ORIGIN, WS_CONNECTIONS,
 * WS_IN_FLIGHT, WS_SIZE, WS_SECONDS.
 */
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';

const url = process.env.WS_URL as string;
const connections = Number(process.env.WS_CONNECTIONS ?? 4);
const inFlight = Number(process.env.WS_IN_FLIGHT ?? 32);
const size = Number(process.env.WS_SIZE ?? 128);
const seconds = Number(process.env.WS_SECONDS ?? 3);
const payload = randomBytes(size);
const headers = process.env.WS_COOKIE ? { cookie: process.env.WS_COOKIE } : {};

let counting = false;
let running = true;
let messages = 0;
let errors = 0;

const sockets = await Promise.all(Array.from({ length: connections }, () => new Promise<WebSocket>((resolve, reject) => {
  const ws = new WebSocket(url, { headers, perMessageDeflate: false, ...(process.env.WS_ORIGIN ? { origin: process.env.WS_ORIGIN } : {}) });
  ws.once('open', () => resolve(ws));
  ws.once('error', reject);
  ws.once('unexpected-response', (_req, res) => {
    let body = '';
    res.on('data', (c: Buffer) => (body += c.toString()));
    res.on('end', () => reject(new Error(`handshake answered ${res.statusCode}: ${body.slice(0, 300)}`)));
  });
})));
for (const ws of sockets) {
  ws.on('message', () => {
    if (counting) messages++;
    if (running) ws.send(payload);
  });
  ws.on('error', () => errors++);
  ws.on('close', (code) => {
    if (running) errors++;
    void code;
  });
  for (let i = 0; i < inFlight; i++) ws.send(payload);
}
// A short warm-up, then the measured window.
await new Promise((r) => setTimeout(r, 500));
counting = true;
const started = performance.now();
await new Promise((r) => setTimeout(r, seconds * 1000));
counting = false;
const elapsed = (performance.now() - started) / 1000;
running = false;
for (const ws of sockets) ws.close(1000);
process.stdout.write(`${JSON.stringify({ messages, seconds: elapsed, errors })}\n`);
setTimeout(() => process.exit(0), 200).unref();
