import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { sendCalls, totalInstructions } from '../../bench/lib/instructions.js';

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
