import { hasSubscribers } from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { ForwardHandler } from './forward.js';

/**
 * Makes a few of each object a proxied call makes (Node's response and request, undici's request, the call's
 * `ForwardHandler`) at once, before any call, so that V8 settles their layout with every field in the object.
 *
 * Why: V8 fixes how many fields a class's objects hold inline once seven of them were made ("slack tracking"), from
 * the fields the earlier ones got by then. A full garbage collection while none of them is alive forgets those
 * fields. If it falls between a process's sixth request and its seventh (six requests after a start, then a few
 * quiet seconds: V8's memory reducer collects in a quiet process), the layout is settled with no field inline, for
 * the life of the process:
 * - a class that adds fields under computed keys past the twelfth field outside the object (Node's
 *   `ServerResponse`, undici's `Request`: `this[kHandler] = handler`) then turns every such object into a
 *   dictionary, which every read and write of it pays for (in the bench, 15-18 thousand instructions more per
 *   proxied call, about 9 %);
 * - any other class keeps all its fields in a second allocation, one more indirection away.
 * Settled here, no collection can do that. Measured in BENCHMARKS.md ("Settled object layouts");
 * test/unit/object-layouts.test.ts makes the collection happen.
 *
 * Nothing is sent, and nobody is told: a response is made only while nobody listens to Node's
 * `http.server.response.created` channel (Node 22 and later tell it of every response made), and undici's request
 * stops just before its handler is stored while someone listens to `undici:request:create`, which it would tell
 * (its handler's field then lives outside the object, which costs far less than a dictionary). Once per process;
 * an undici without that file (another major) is left as it is.
 */
export function settleObjectLayouts(): void {
  if (settled) return;
  settled = true;
  const UndiciRequest = undiciRequestClass();
  const requestHandler = hasSubscribers('undici:request:create') ? {} : QUIET_HANDLER;
  const responses = settleServerObjects(IncomingMessage, ServerResponse);
  // Kept until all are made: a collection in between must not forget the fields of the first ones.
  const made: object[] = [];
  for (let i = 0; i < SLACK_TRACKED_OBJECTS + 1; i++) {
    if (UndiciRequest !== undefined) {
      try {
        // A proxied call's options (api-proxy.ts `forward`), without a body.
        made.push(new UndiciRequest('http://127.0.0.1', { path: '/', method: 'GET', headers: { accept: '*/*' }, body: null, bodyTimeout: null }, requestHandler));
      } catch {
        // The handler check while someone listens: the object had every field but the handler's.
      }
    }
    const res = responses[i] ?? new EventEmitter() as ServerResponse;
    made.push(new ForwardHandler(res, false, settleNothing));
  }
}

/** How many objects of a class V8 makes before it settles their layout (`Map::kSlackTrackingCounterStart`). */
const SLACK_TRACKED_OBJECTS = 7;

let settled = false;

/** What undici checks a dispatch handler for; never called, as nothing is dispatched. */
const QUIET_HANDLER = { onRequestStart() {} };

const settleNothing = (): void => {};

/** undici's request class, the one its `Pool` makes (the same file, so the same module). */
function undiciRequestClass(): (new (origin: string, options: object, handler: object) => object) | undefined {
  try {
    return createRequire(import.meta.url)('undici/lib/core/request.js') as new (origin: string, options: object, handler: object) => object;
  } catch {
    return undefined;
  }
}

/**
 * The same for the requests and responses a server makes (Node's own classes, or those of `serverOptions(app)`): a
 * few of each, settled at once, as an HTTP/1.1 GET and its response without a connection. Responses only while
 * nobody listens to `http.server.response.created`, as above. Returns the responses made.
 */
export function settleServerObjects(Request: typeof IncomingMessage, Response: typeof ServerResponse): ServerResponse[] {
  const withResponses = !hasSubscribers('http.server.response.created');
  const requests: IncomingMessage[] = [];
  const responses: ServerResponse[] = [];
  for (let i = 0; i < SLACK_TRACKED_OBJECTS + 1; i++) {
    const req = new Request(null as never);
    req.method = 'GET';
    req.httpVersionMajor = 1;
    req.httpVersionMinor = 1;
    requests.push(req);
    if (withResponses) responses.push(new Response(req));
  }
  return responses;
}
