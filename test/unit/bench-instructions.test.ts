import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { callerCounts, functionCounts, functionName, sendCalls, totalInstructions } from '../../bench/lib/instructions.js';
import { ROOT } from '../../bench/lib/procs.js';

// The end of a callgrind output file as callgrind_control --dump writes it (valgrind 3.19).
const DUMP = ['events: Ir', 'fn=0x0000000000108a40', '0 12', '', 'summary: 562259081', '', '', 'totals: 562259081', ''].join('\n');

describe('bench instruction counts', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
    server = undefined;
  });

  async function listen(handler: RequestListener): Promise<string> {
    server = createServer(handler);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('reads the instructions of a callgrind dump from its totals line, or its summary line', () => {
    expect(totalInstructions(DUMP)).toBe(562_259_081);
    expect(totalInstructions('events: Ir\nsummary: 1234\n')).toBe(1234);
    expect(() => totalInstructions('events: Ir\n')).toThrow(/totals or summary/);
  });

  it('counts the instructions of each function, naming compiled JavaScript from the perf map', () => {
    // A dump written with --dump-instr=yes --compress-pos=no (valgrind 3.19), and V8's perf map of the same process.
    const dump = [
      'events: Ir',
      'ob=/usr/bin/node',
      'fn=Builtins_LoadIC_Megamorphic',
      '0x1000 300',
      '0x1004 100',
      'ob=???',
      'fn=0x0000000020000000',
      '0x20000000 40',
      '0x20000010 60',
      'cob=/usr/bin/node',
      'cfn=Builtins_LoadIC_Megamorphic',
      'calls=2 0x1000',
      // The inclusive cost of those calls: the callee's, not the caller's own.
      '0x20000014 400',
      '0x20000040 20',
      'fn=0x0000000030000000',
      '0x30000000 8',
      'totals: 528',
      '',
    ].join('\n');
    const perfMap = [
      '20000000 30 JS:*handle file:///tmp/x/node_modules/.cache/express-ort-bff-bench/ab12/working-tree/src/proxy/api-proxy.js:74:14',
      '20000040 10 JS:~answerStarting example/lifecycle.js:105:1',
      // Code made later at the same address replaces what was there.
      '20000040 10 JS:*onRequest example/lifecycle.js:45:17',
      '',
    ].join('\n');
    const counts = functionCounts(dump, perfMap, 4);
    expect(Object.fromEntries(counts)).toEqual({
      'Builtins_LoadIC_Megamorphic [node]': 100,
      'handle src/proxy/api-proxy.js:74': 25,
      'onRequest example/lifecycle.js:45': 5,
      // No code named there: callgrind's own name for it, and its object.
      '0x0000000030000000 [???]': 2,
    });
  });

  it('counts who calls a function: the inclusive cost of each caller\'s calls, the caller named from the perf map', () => {
    const dump = [
      'events: Ir',
      'ob=/usr/bin/node',
      'fn=Builtins_KeyedLoadIC',
      '0x1100 30',
      'cfn=Builtins_LoadIC_Megamorphic',
      'calls=1 0x1000',
      '0x1104 90',
      'ob=???',
      'fn=0x0000000020000000',
      '0x20000000 40',
      'cob=/usr/bin/node',
      'cfn=Builtins_LoadIC_Megamorphic',
      'calls=2 0x1000',
      '0x20000014 400',
      'cfn=Builtins_StringEqual',
      'calls=1 0x1200',
      '0x20000018 70',
      // Another piece of code, in the same callgrind function: named by its own address.
      'cob=/usr/bin/node',
      'cfn=Builtins_LoadIC_Megamorphic',
      'calls=1 0x1000',
      '0x20000044 200',
      // A line of the function's own cost after a call is not a call's.
      '0x20000048 1000',
      'totals: 1830',
      '',
    ].join('\n');
    const perfMap = [
      '20000000 30 JS:*handle src/proxy/api-proxy.js:74:14',
      '20000040 10 JS:*onRequest example/lifecycle.js:45:17',
      '',
    ].join('\n');
    expect(Object.fromEntries(callerCounts(dump, perfMap, 2, /Megamorphic/))).toEqual({
      'Builtins_LoadIC_Megamorphic [node] < Builtins_KeyedLoadIC [node]': 45,
      'Builtins_LoadIC_Megamorphic [node] < handle src/proxy/api-proxy.js:74': 200,
      'Builtins_LoadIC_Megamorphic [node] < onRequest example/lifecycle.js:45': 100,
    });
  });

  it('names a function the same in every process: no directory of the run, no column, no tier', () => {
    expect(functionName(`JS:*'parseHeaders file://${ROOT}node_modules/undici/lib/core/util.js:436:23`)).toBe('parseHeaders undici/lib/core/util.js:436');
    expect(functionName(`JS:^load file://${ROOT}src/session/sessions.js:59:9`)).toBe('load src/session/sessions.js:59');
    expect(functionName('JS:wasm-function[20]-20-turbofan')).toBe('wasm-function[20]');
    expect(functionName('Builtins_StringEqual [node]')).toBe('Builtins_StringEqual [node]');
  });

  it('sends exactly the calls asked for, with the headers given, a few at a time', async () => {
    const seen: Array<string | undefined> = [];
    let inFlight = 0;
    let most = 0;
    const url = await listen((req, res) => {
      seen.push(req.headers.cookie);
      most = Math.max(most, ++inFlight);
      setImmediate(() => {
        inFlight--;
        res.end('{}');
      });
    });
    await sendCalls(`${url}/api/items`, { count: 50, concurrency: 4, headers: { cookie: 'bff=1' } });
    expect(seen).toHaveLength(50);
    expect(new Set(seen)).toEqual(new Set(['bff=1']));
    expect(most).toBeLessThanOrEqual(4);
  });

  it('fails on an answer that is not a 200: a count of error answers would count the wrong work', async () => {
    const url = await listen((_req, res) => {
      res.statusCode = 401;
      res.end('{"error":"login_required"}');
    });
    await expect(sendCalls(`${url}/api/items`, { count: 3, concurrency: 1, headers: {} })).rejects.toThrow(/answered 401: \{"error":"login_required"\}/);
  });
});
