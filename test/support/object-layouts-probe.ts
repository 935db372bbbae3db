/**
 * Run by test/unit/object-layouts.test.ts in a child `node --allow-natives-syntax --expose-gc --import tsx`: six
 * API calls through a BFF (`bff.wrap`, an API with the `none` token policy, its upstream in another process), a
 * garbage collection with none of their objects alive (which spoils the layout of a class whose seventh object is
 * made next: src/proxy/object-layouts.ts), then 20 more calls. Prints a line `result: <JSON>`: how many of the 20
 * calls' responses (Node's `ServerResponse`, the BFF's answer to the browser) and undici requests (the call to the
 * upstream) kept fast properties (not a dictionary), and how many requests and responses were announced while the
 * BFF was created; and V8's description of the last call's `ForwardHandler` (where its fields are).
 *
 * PROBE_BFF=0: no BFF; the server answers with the proxy's own parts (an undici Pool, a `ForwardHandler`), to show
 * what the BFF prevents. PROBE_LISTENER=1: with listeners on `undici:request:create` and
 * `http.server.response.created` already while the BFF is created.
 */
import { subscribe } from 'node:diagnostics_channel';
import { createServer, get, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { ForwardHandler } from '../../src/proxy/forward.js';
import { probeBff, startChildUpstream } from './probe-parts.js';

const hasFastProperties = new Function('object', 'return %HasFastProperties(object)') as (object: object) => boolean;
const debugPrint = new Function('object', '%DebugPrint(object)') as (object: object) => void;
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');

const childUpstream = await startChildUpstream();

let requests: boolean[] = [];
const onRequest = ({ request }: { request: object }) => requests.push(hasFastProperties(request));
let announcedAtStart = 0;
const countAnnounced = () => announcedAtStart++;
if (process.env.PROBE_LISTENER === '1') {
  subscribe('undici:request:create', countAnnounced);
  subscribe('http.server.response.created', countAnnounced);
}
const withBff = process.env.PROBE_BFF !== '0';
const upstream = childUpstream.url;
const bff = withBff && probeBff(upstream);
const startAnnounced = announcedAtStart;
subscribe('undici:request:create', onRequest as (message: unknown) => void);

let responses: boolean[] = [];
// The calls' handlers, emptied before the collection.
const handlers: object[] = [];
const original = ForwardHandler.prototype.onRequestStart;
ForwardHandler.prototype.onRequestStart = function (this: ForwardHandler, controller) {
  handlers.push(this);
  return original.call(this, controller);
};
const pool = new Pool(upstream);
const wrapped = bff
  ? bff.wrap((_req: IncomingMessage, res: ServerResponse) => res.end())
  : (_req: IncomingMessage, res: ServerResponse) => pool.dispatch({ path: '/items', method: 'GET', headers: {} }, new ForwardHandler(res, false, () => {}));
const server = createServer((req, res) => {
  res.on('finish', () => responses.push(hasFastProperties(res)));
  wrapped(req, res);
});
const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));

const call = () => new Promise<void>((resolve, reject) => {
  get({ host: '127.0.0.1', port, path: '/api/items', headers: { 'x-csrf': '1' }, agent: false }, (res) => {
    res.resume();
    res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`the BFF answered ${res.statusCode}`))));
  }).on('error', reject);
});

for (let i = 0; i < 6; i++) await call();
handlers.length = 0;
await new Promise((resolve) => setTimeout(resolve, 20));
for (let i = 0; i < 3; i++) gc();
responses = [];
requests = [];
for (let i = 0; i < 20; i++) await call();

// V8 prints it with C's buffered stdout: it may come after the result line.
debugPrint(handlers.at(-1) as object);
server.close();
childUpstream.stop();
process.stdout.write(`result: ${JSON.stringify({
  announcedAtStart: startAnnounced,
  responses: responses.length,
  fastResponses: responses.filter(Boolean).length,
  requests: requests.length,
  fastRequests: requests.filter(Boolean).length,
})}\n`, () => process.exit(0));
