import { createServer, IncomingMessage, ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { serverOptions } from '../../src/index.js';
import { runProbe } from '../support/run-probe.js';

interface ProbeResult {
  answered: Record<string, number>;
  responses: Record<string, number>;
  requests: Record<string, number>;
  fastResponses: number;
  fastRequests: number;
  prototypeChangeRemembered: boolean;
}

/** test/support/server-options-probe.ts: how many hidden classes V8 gave the last ten answers of each kind. */
function probe(entry: 'wrap' | 'use', withOptions: boolean): ProbeResult {
  return runProbe<ProbeResult>('test/support/server-options-probe.ts', {
    nodeArgs: ['--allow-natives-syntax'],
    env: { PROBE_ENTRY: entry, PROBE_OPTIONS: withOptions ? '1' : '0' },
  }).result;
}

const ALL_ANSWERED = { '/page': 13, '/healthz': 13, '/api/items': 13 };
const ONE_EACH = { '/page': 1, '/healthz': 1, '/api/items': 1 };

const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

describe('the hidden classes of the requests and responses Express routes', () => {
  it('are forgotten after a prototype change by the V8 of Node 20 and 22, and kept by Node 24\'s', () => {
    expect(probe('wrap', false).prototypeChangeRemembered).toBe(NODE_MAJOR >= 24);
  });

  it('are new for every app and BFF route without serverOptions in front of an app through bff.wrap, where V8 forgets them', () => {
    const result = probe('wrap', false);
    expect(result.answered).toEqual(ALL_ANSWERED);
    // Where V8 keeps them (Node 24), each route comes out in one hidden class anyway.
    const routed = result.prototypeChangeRemembered ? 1 : 10;
    const expected = { '/page': routed, '/healthz': routed, '/api/items': 1 };
    expect(result.responses).toEqual(expected);
    expect(result.requests).toEqual(expected);
  });

  it('are new for every request, API calls included, without serverOptions under app.use(bff), where V8 forgets them', () => {
    const result = probe('use', false);
    expect(result.answered).toEqual(ALL_ANSWERED);
    const routed = result.prototypeChangeRemembered ? 1 : 10;
    const expected = { '/page': routed, '/healthz': routed, '/api/items': routed };
    expect(result.responses).toEqual(expected);
    expect(result.requests).toEqual(expected);
  });

  for (const entry of ['wrap', 'use'] as const) {
    it(`are one per route with serverOptions(app), the app's routes, the BFF's and API calls alike (${entry === 'wrap' ? 'bff.wrap(app)' : 'app.use(bff)'})`, () => {
      const result = probe(entry, true);
      expect(result.answered).toEqual(ALL_ANSWERED);
      expect(result.responses).toEqual(ONE_EACH);
      expect(result.requests).toEqual(ONE_EACH);
      // As many fields inline as Node's own classes hold: none turned into a dictionary.
      expect([result.fastResponses, result.fastRequests]).toEqual([39, 39]);
    });
  }
});

describe('serverOptions(app)', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
    server = undefined;
  });

  it('makes a server whose requests and responses are the Express app\'s, answering as app.listen would', async () => {
    const app = express();
    app.set('json spaces', 0);
    app.get('/who', (req, res) => {
      res.json({
        appRequest: Object.getPrototypeOf(req) === app.request,
        appResponse: Object.getPrototypeOf(res) === app.response,
        nodeClasses: req instanceof IncomingMessage && res instanceof ServerResponse,
        sameApp: req.app === app,
        query: req.query,
      });
    });
    server = createServer(serverOptions(app), app);
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/who?x=1`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ appRequest: true, appResponse: true, nodeClasses: true, sameApp: true, query: { x: '1' } });
  });

  it('leaves a sub-app mounted under a path to change the prototype of the requests it routes, as the README says', async () => {
    const app = express();
    const sub = express();
    sub.get('/who', (req, res) => void res.json({ subRequest: Object.getPrototypeOf(req) === sub.request, appRequest: Object.getPrototypeOf(req) === app.request }));
    app.use('/sub', sub);
    server = createServer(serverOptions(app), app);
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/sub/who`);
    expect(await res.json()).toEqual({ subRequest: true, appRequest: false });
  });

  it('gives the same classes for the same app, and other classes for another app', () => {
    const app = express();
    const first = serverOptions(app);
    expect(first.IncomingMessage).toBeTypeOf('function');
    expect(first.ServerResponse).toBeTypeOf('function');
    expect(serverOptions(app)).toEqual(first);
    expect(serverOptions(express()).ServerResponse).not.toBe(first.ServerResponse);
  });

  it('is empty for a listener that is not an Express app', () => {
    expect(serverOptions((_req, res) => res.end())).toEqual({});
    const notExpress = Object.assign((_req: IncomingMessage, res: ServerResponse) => res.end(), { request: {}, response: {} });
    expect(serverOptions(notExpress)).toEqual({});
  });
});
