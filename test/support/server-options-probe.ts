/**
 * Run by test/unit/server-options.test.ts in a child `node --allow-natives-syntax --import tsx`: a server in front
 * of an Express app through `bff.wrap(app)` (or `app.use(bff)` with PROBE_ENTRY=use), made with
 * `serverOptions(app)` (PROBE_OPTIONS=1) or without. It
 * answers rounds of three requests: an app route that adds to `res.locals` and sets a cookie, a BFF route
 * (`/healthz`, through the BFF's own Express router), and an API call (straight to the proxy). Prints a line
 * `result: <JSON>`: for each kind, how many hidden classes V8 gave the last ten requests and responses once they
 * were answered (kept alive to be compared), how many of all of them kept fast properties, and whether V8 remembers the hidden class of a field added after an
 * `Object.setPrototypeOf` (`prototypeChangeRemembered`: the flaw that `serverOptions` works around where it is false).
 */
import { createServer, get, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { serverOptions } from '../../src/index.js';
import { probeBff, startChildUpstream } from './probe-parts.js';

const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;
const hasFastProperties = new Function('object', 'return %HasFastProperties(object)') as (object: object) => boolean;

/** Whether two objects of one class, given another prototype, then a field, end in the same hidden class. */
function prototypeChangeRemembered(): boolean {
  class Made { a = 1; b = 2; }
  const prototype = Object.create(Made.prototype) as object;
  const [first, second] = [new Made(), new Made()].map((made) => {
    Object.setPrototypeOf(made, prototype);
    (made as { added?: number }).added = 1;
    return made;
  }) as [Made, Made];
  return haveSameMap(first, second);
}

/** How many hidden classes among these objects. */
function hiddenClasses(objects: object[]): number {
  const representatives: object[] = [];
  for (const object of objects) {
    if (!representatives.some((seen) => haveSameMap(seen, object))) representatives.push(object);
  }
  return representatives.length;
}

const upstream = await startChildUpstream();
const bff = probeBff(upstream.url);
const app = express();
const routes = express.Router();
routes.get('/page', (_req, res) => {
  res.locals.visited = true;
  res.cookie('seen', '1', { httpOnly: true });
  res.json({ ok: true });
});

// PROBE_ENTRY=use: `app.use(bff)` in front of the app's routes, and the app itself as the listener.
const useEntry = process.env.PROBE_ENTRY === 'use';
if (useEntry) app.use(bff);
app.use(routes);
const answered = new Map<string, Array<{ req: IncomingMessage; res: ServerResponse }>>();
const wrapped = useEntry ? app : bff.wrap(app);
const server = createServer(process.env.PROBE_OPTIONS === '1' ? serverOptions(app) : {}, (req, res) => {
  const path = req.url as string;
  res.on('finish', () => {
    const list = answered.get(path) ?? [];
    list.push({ req, res });
    answered.set(path, list);
  });
  wrapped(req, res);
});
const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));

const call = (path: string) => new Promise<void>((resolve, reject) => {
  get({ host: '127.0.0.1', port, path, headers: { 'x-csrf': '1' }, agent: false }, (res) => {
    res.resume();
    res.on('end', resolve);
  }).on('error', reject);
});

const paths = ['/page', '/healthz', '/api/items'];
for (let round = 0; round < 13; round++) {
  for (const path of paths) await call(path);
}
// The 'finish' listeners of the last answers run before their connections end; the calls resolve on the end.
const byKind = (pick: 'req' | 'res') => Object.fromEntries(paths.map((path) => [path, hiddenClasses((answered.get(path) ?? []).slice(-10).map((answer) => answer[pick]))]));
const result = {
  answered: Object.fromEntries(paths.map((path) => [path, answered.get(path)?.length ?? 0])),
  responses: byKind('res'),
  requests: byKind('req'),
  // Not dictionaries: the classes of serverOptions hold as many fields as Node's own.
  fastResponses: [...answered.values()].flat().filter((answer) => hasFastProperties(answer.res)).length,
  fastRequests: [...answered.values()].flat().filter((answer) => hasFastProperties(answer.req)).length,
  prototypeChangeRemembered: prototypeChangeRemembered(),
};
server.close();
upstream.stop();
await bff.close();
process.stdout.write(`result: ${JSON.stringify(result)}\n`, () => process.exit(0));
