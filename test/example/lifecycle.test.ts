import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Agent } from 'undici';
import { describe, expect, it } from 'vitest';
import { readConfig } from '../../example/config.js';
import { startExample, type ExampleLogger } from '../../example/server.js';
import { loginThroughEmulator } from '../../bench/lib/login.js';
import { freePort, npmStartArgs } from '../../bench/lib/procs.js';
import { deadPort, refusesConnections } from '../support/harness.js';
import { closeServer, listen, waitFor } from '../support/harness.js';

const SESSION_SECRET = 'lifecycle-test-session-secret-0123456789';
const quiet: ExampleLogger = { info: () => {}, warn: () => {}, error: () => {} };

describe('the example while it starts', () => {
  it('stops with a message naming REDIS_URL when that Redis does not answer, instead of retrying forever', async () => {
    const redisPort = await deadPort();
    const warnings: string[] = [];
    const starting = startExample(readConfig({ PORT: '0', REDIS_URL: `redis://127.0.0.1:${redisPort}` }), {
      logger: { ...quiet, warn: (message: string) => warnings.push(message) },
      host: '127.0.0.1',
    });
    await expect(starting).rejects.toThrow(/the Redis server of REDIS_URL did not answer: .*ECONNREFUSED/);
    expect(warnings.length).toBeGreaterThan(0);
  });

  it('answers 503 JSON to a request that arrives before it is ready, instead of never answering', async () => {
    // An issuer whose discovery document is held back: the example has started listening, and waits for it.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let asked = false;
    const issuer = createServer((_req, res) => {
      asked = true;
      void released.then(() => res.writeHead(503).end());
    });
    await listen(issuer);
    const port = await freePort();
    const starting = startExample(readConfig({
      PORT: String(port), ISSUER_URL: `http://127.0.0.1:${(issuer.address() as AddressInfo).port}/`, CLIENT_ID: 'id',
      CLIENT_SECRET: 'secret', AUDIENCE: 'https://api.example.test', SESSION_SECRET, UPSTREAM_API_URL: 'http://127.0.0.1:9/',
    }), { logger: quiet, host: '127.0.0.1' });
    try {
      await waitFor(() => asked, 'the example asks the issuer for its metadata', 10_000);
      for (const path of ['/healthz', '/', '/api/data']) {
        const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5_000) });
        expect(res.status).toBe(503);
        expect(res.headers.get('retry-after')).toBe('1');
        expect(await res.json()).toMatchObject({ error: 'starting', error_description: expect.any(String) });
      }
    } finally {
      release();
      const example = await starting;
      // Started: the app answers now (the page), and /healthz says why it is not healthy yet.
      expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);
      expect(await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()).toMatchObject({ error: 'idp_unavailable' });
      await example.close();
      await closeServer(issuer);
    }
  });
});

/**
 * An upstream that answers every call after `delayMs`, echoing the caller's request id, and remembers what it
 * got. Once `hold()` is called it answers nothing more until `release()`: the test decides how long calls stay in
 * flight, whatever the machine's speed.
 */
async function startSlowUpstream(delayMs: number) {
  const received = new Set<string>();
  let open = 0;
  let held: Array<() => void> | undefined;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const id = String(req.headers['x-request-id']);
    received.add(id);
    open++;
    req.resume();
    const answer = () => {
      open--;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id }));
    };
    setTimeout(() => (held ? held.push(answer) : answer()), delayMs);
  });
  await listen(server);
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    open: () => open,
    hold: () => void (held ??= []),
    release: () => {
      for (const answer of held?.splice(0) ?? []) answer();
      held = undefined;
    },
    close: () => closeServer(server),
  };
}

type Outcome = { id: string; status?: number; body?: string; error?: string; sentAfterStop: boolean };

describe('npm start, stopped with SIGTERM under load', () => {
  it('stops accepting, answers every call it had accepted (never a 5xx), and exits within the grace period', async () => {
    const upstream = await startSlowUpstream(200);
    // What `npm start` runs after `node` (its V8 option included), with the node running the tests. On a port of
    // its own choosing (PORT=0, read from what it prints): a port found free here could be taken by another test's
    // server before the child, still starting, listens on it.
    const child: ChildProcess = spawn(process.execPath, npmStartArgs(), {
      cwd: fileURLToPath(new URL('../../', import.meta.url)),
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: '0', UPSTREAM_API_URL: upstream.url, SESSION_SECRET },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const agent = new Agent({ connections: 32, pipelining: 1 });
    try {
      // Started, or gone: on a busy machine, starting (tsx compiling the example) may take a while.
      await waitFor(() => /Ctrl-C stops it/.test(output) || child.exitCode !== null, 'the example starts', 60_000).catch((error: Error) => {
        throw new Error(`${error.message} (output so far: ${output})`);
      });
      expect(child.exitCode, `the example exited while starting: ${output}`).toBeNull();
      const base = /Open\s+(http:\/\/localhost:\d+)\s/.exec(output)?.[1] as string;
      expect(base, `the example's URL in what it printed: ${output}`).toBeDefined();
      const port = Number(new URL(base).port);
      const cookies = await Promise.all(Array.from({ length: 4 }, () => loginThroughEmulator(base, { username: 'demo', password: 'demo-password' })));

      const outcomes: Outcome[] = [];
      let stopSentAt = Infinity;
      let next = 0;
      const loop = async (worker: number) => {
        for (;;) {
          const id = `${worker}-${next++}`;
          const sentAfterStop = performance.now() > stopSentAt;
          const post = next % 3 === 0;
          try {
            const res = await fetch(`${base}/api/data`, {
              method: post ? 'POST' : 'GET',
              headers: { cookie: cookies[worker % cookies.length] as string, 'x-csrf': '1', 'x-request-id': id, ...(post ? { 'content-type': 'application/json' } : {}) },
              ...(post ? { body: JSON.stringify({ id }) } : {}),
              dispatcher: agent,
            } as RequestInit);
            outcomes.push({ id, status: res.status, body: await res.text(), sentAfterStop });
          } catch (error) {
            outcomes.push({ id, error: String((error as Error).cause ?? error), sentAfterStop });
            // Refused or cut before an answer: the server is gone for this browser.
            if (sentAfterStop) return;
          }
        }
      };
      const loops = Array.from({ length: 24 }, (_, i) => loop(i));
      await waitFor(() => upstream.open() >= 16, 'calls are in flight at the upstream', 10_000);
      upstream.hold();
      const inFlightAtStop = new Set(upstream.received);
      stopSentAt = performance.now();
      child.kill('SIGTERM');
      // It stops accepting at once, while the calls it accepted are still running.
      await waitFor(() => refusesConnections(port), 'the port refuses new connections', 5_000);
      expect(upstream.open()).toBeGreaterThanOrEqual(16);
      upstream.release();
      const code = await exited;
      const stoppedAfterMs = performance.now() - stopSentAt;
      await Promise.all(loops);

      expect(code).toBe(0);
      // Within the grace period of 10 s (the calls in flight were held for a moment), and the stop itself.
      expect(stoppedAfterMs).toBeLessThan(15_000);
      const answered = new Map(outcomes.filter((o) => o.status !== undefined).map((o) => [o.id, o]));
      // Never a 5xx, or any other failure status, for a call the server answered.
      expect(outcomes.filter((o) => o.status !== undefined && o.status !== 200)).toEqual([]);
      // Every call that reached the upstream (so the BFF had accepted it) came back with its own answer.
      for (const id of upstream.received) {
        expect(answered.get(id)?.body, `call ${id}`).toBe(JSON.stringify({ id }));
      }
      expect(inFlightAtStop.size).toBeGreaterThanOrEqual(16);
      // Calls that failed are only calls the server had not accepted: none of them reached the upstream.
      const failed = outcomes.filter((o) => o.error !== undefined);
      for (const o of failed) expect(upstream.received.has(o.id), `failed call ${o.id} (${o.error})`).toBe(false);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await agent.close();
      await upstream.close();
    }
  }, 120_000);
});
