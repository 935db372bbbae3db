import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../../bench/lib/procs.js';

/**
 * redis-server processes of the tests' own, on free ports below the ephemeral range (never 6379), in temp directories,
 * stopped by their pid. Never the shared Redis.
 */
export interface RedisServer {
  readonly port: number;
  readonly pid: number;
  readonly dir: string;
  /** The last lines the server printed (its log goes to stdout): for failure messages. */
  output(): string;
  /** Whether the process has exited. */
  readonly exited: boolean;
  /** Sends a signal to this process only, and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Stops the process where it is (SIGSTOP), as a server that hangs; `resume` lets it go on (SIGCONT). */
  pause(): void;
  resume(): void;
}

const running = new Set<ChildProcess>();
// A test process that dies leaves nothing running behind it.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A TCP port nothing listens on now, below the ephemeral range (see there): it stays free across a restart. */
export { freePort };

/** A temp directory for one topology's files; removed by `removeDir`. */
export const makeDir = (name: string): Promise<string> => mkdtemp(join(tmpdir(), `bff-${name}-`));
export const removeDir = (dir: string): Promise<void> => rm(dir, { recursive: true, force: true });

/** Answers PING on that port (any reply but a connection error counts: a loading or sentinel server replies too). */
export function answersPing(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

/**
 * Starts `redis-server` with `args(port)` (plus a port it picks) and waits until it answers PING.
 * A port taken between picking and binding (another run on this machine) is retried with a new one.
 */
export async function startRedisServer(dir: string, args: (port: number) => string[], options: { sentinel?: boolean } = {}): Promise<RedisServer> {
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    try {
      return await spawnOn(port, dir, args(port), options.sentinel === true);
    } catch (error) {
      lastError = error as Error;
      if (!/Address already in use|bind/i.test(lastError.message)) throw lastError;
    }
  }
  throw lastError as Error;
}

async function spawnOn(port: number, dir: string, args: string[], sentinel: boolean): Promise<RedisServer> {
  const lines: string[] = [];
  const child = spawn('redis-server', [...args, ...(sentinel ? ['--sentinel'] : [])], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      running.delete(child);
      resolve();
    });
    child.once('error', (error) => {
      lines.push(String(error));
      exited = true;
      running.delete(child);
      resolve();
    });
  });
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(line);
    if (lines.length > 60) lines.splice(0, lines.length - 60);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);

  const server: RedisServer = {
    port,
    pid: child.pid ?? -1,
    dir,
    output: () => lines.join('\n'),
    get exited() {
      return exited;
    },
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
    async kill(signal = 'SIGTERM') {
      if (exited) return;
      child.kill('SIGCONT');
      child.kill(signal);
      const stopped = await Promise.race([exit.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5_000).unref())]);
      if (!stopped) {
        child.kill('SIGKILL');
        await exit;
      }
    },
  };

  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    if (exited) throw new Error(`redis-server on port ${port} exited at start:\n${server.output()}`);
    if (await answersPing(port)) return server;
    await new Promise((r) => setTimeout(r, 25));
  }
  await server.kill('SIGKILL');
  throw new Error(`redis-server on port ${port} did not answer within 10 s:\n${server.output()}`);
}

/** The options every test server gets: loopback only, no persistence, its files in the topology's directory. */
export const baseArgs = (port: number): string[] => [
  '--port', String(port),
  '--bind', '127.0.0.1',
  '--save', '',
  '--appendonly', 'no',
  '--daemonize', 'no',
  '--logfile', '',
  '--loglevel', 'notice',
  // A replica's first sync starts at once instead of after 5 s (the default waits for more replicas to join).
  '--repl-diskless-sync-delay', '0',
];
