/** Child processes of the bench: servers pinned to a core with taskset, and the load generator. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { compiledScript, type Runtime } from './compiled.js';

export const ROOT = new URL('../../', import.meta.url).pathname;
/** Imported after tsx by every server that runs through tsx: source maps off, as in production (see the file). */
const PRODUCTION_RUNTIME = join(ROOT, 'bench/lib/production-runtime.ts');

/**
 * What `npm start` runs after `node` (package.json's start script): the example's node options, then its entry.
 * The lifecycle test starts the example with exactly these, and the bench gives every server the options.
 */
export function npmStartArgs(): string[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts?: { start?: string } };
  const [command, ...args] = (pkg.scripts?.start ?? '').trim().split(/\s+/);
  if (command !== 'node') throw new Error(`package.json's start script does not run node: ${pkg.scripts?.start}`);
  return args;
}

/** The node options `npm start` gives the example (V8 flags): those of {@link npmStartArgs} before `--import`. */
export function npmStartNodeOptions(): string[] {
  const args = npmStartArgs();
  const end = args.findIndex((arg) => arg === '--import' || !arg.startsWith('--'));
  return end === -1 ? args : args.slice(0, end);
}

/** Pinning needs taskset and two cores (servers on core 1, the load generator on core 0). */
export const canPin = cpus().length >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0;

export function pinned(core: number | undefined, command: string, args: string[]): [string, string[]] {
  return core !== undefined && canPin ? ['taskset', ['-c', String(core), command, ...args]] : [command, args];
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/** CPU time (user + system) a process has used so far, in ms; NaN where /proc cannot tell. */
export function cpuMsOf(pid: number): number {
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th, in clock ticks.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

/** Ports this process has handed out: two servers of this process must not be given the same one. */
const handedOut = new Set<number>();

/** Where `freePort` looks: below the system's ephemeral range, and below where a Redis Cluster node's bus port goes. */
const PICK_FROM = 10_000;
const PICK_BELOW = 20_000;

/** The low end of the range the system gives ephemeral ports from (Linux), or undefined where it cannot be read. */
function ephemeralLow(): number | undefined {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) ? low : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a listening socket can take the port on 127.0.0.1 now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port the system chose for a moment's listening socket (it may hand it out again at once). */
function systemPort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A port free on 127.0.0.1 now, for a server that will listen on it later (a child process still starting, a
 * Redis server to be restarted on the same port), and not one handed out before in this process.
 *
 * Taken below the system's ephemeral range (10000-19999 when that range starts above them, as Linux's default
 * 32768-60999 does): neither a server listening on port 0 nor an outgoing connection, of this process or of any
 * test running alongside, is ever given such a port, so it stays free until its server listens. A port the system
 * picks instead could be handed to any of those meanwhile. (A Redis Cluster node's bus port, its port + 10000,
 * stays below that range too.) Elsewhere, the system's pick.
 */
export async function freePort(): Promise<number> {
  const low = ephemeralLow();
  if (low !== undefined && low >= PICK_BELOW) {
    const span = PICK_BELOW - PICK_FROM;
    const start = Math.floor(Math.random() * span);
    for (let i = 0; i < span; i++) {
      const port = PICK_FROM + ((start + i) % span);
      if (handedOut.has(port) || !(await bindable(port))) continue;
      handedOut.add(port);
      return port;
    }
  }
  for (;;) {
    const port = await systemPort();
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

export interface ServerProcess {
  name: string;
  url: string;
  port: number;
  pid: number;
  logFile: string;
  stop(): Promise<void>;
}

export interface StartOptions {
  name: string;
  /**
   * Script path relative to the repository root (or absolute), run with `node --import tsx`, or with the
   * `compiled` runtime, the JavaScript tsc compiled from it with plain `node`.
   */
  script: string;
  /** Default: tsx. */
  runtime?: Runtime;
  port: number;
  env: Record<string, string>;
  core?: number;
  nodeArgs?: string[];
  logDir: string;
  /**
   * A path answering once the server is up (any HTTP status below 500 counts: the example answers 503 while it
   * starts, before the BFF is attached). Default `/`.
   */
  readyPath?: string;
  /**
   * What the ready path must answer, for servers started on a port chosen beforehand: another process on the
   * machine may take that port first, and its answers must not be taken for this server's.
   */
  readyBody?: (body: string) => boolean;
  /** A command the server runs under (`valgrind --tool=callgrind ...`), between the pinning and node. */
  wrapper?: string[];
  /** How long the server may take to answer its ready path. Default 60 s. */
  readyTimeoutMs?: number;
}

export async function startServer(options: StartOptions): Promise<ServerProcess> {
  const logFile = join(options.logDir, `${options.name}.log`);
  const log = createWriteStream(logFile);
  const runtime = options.runtime ?? { kind: 'tsx' };
  const entry = runtime.kind === 'compiled' ? [compiledScript(runtime, options.script)] : ['--import', 'tsx', '--import', PRODUCTION_RUNTIME, options.script];
  const node = [process.execPath, ...(options.nodeArgs ?? []), ...entry];
  const [command, args] = options.wrapper === undefined || options.wrapper.length === 0
    ? pinned(options.core, node[0] as string, node.slice(1))
    : pinned(options.core, options.wrapper[0] as string, [...options.wrapper.slice(1), ...node]);
  const child: ChildProcess = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'production', ...options.env, PORT: String(options.port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => {
    exited = true;
    resolve();
  }));
  const url = `http://127.0.0.1:${options.port}`;
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  const until = Date.now() + readyTimeoutMs;
  // A server given longer to start (under valgrind) is also given longer to answer its first requests.
  const attemptMs = readyTimeoutMs > 60_000 ? 10_000 : 1_000;
  for (;;) {
    if (exited) throw new Error(`${options.name} exited at start; its log (${logFile}):\n${tail(logFile)}`);
    try {
      const res = await fetch(`${url}${options.readyPath ?? '/'}`, { signal: AbortSignal.timeout(attemptMs) });
      const body = await res.text();
      if (res.status >= 500) throw new Error(`${options.name} is still starting (${res.status})`);
      if (options.readyBody === undefined || options.readyBody(body)) break;
      throw new Error(`${url}${options.readyPath ?? '/'} is not ${options.name} yet`);
    } catch {
      if (Date.now() > until) {
        child.kill('SIGKILL');
        throw new Error(`${options.name} did not answer within ${readyTimeoutMs / 1000} s; its log (${logFile}):\n${tail(logFile)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    name: options.name,
    url,
    port: options.port,
    pid: child.pid as number,
    logFile,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exit;
      clearTimeout(timer);
    },
  };
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-30).join('\n');
  } catch {
    return '(no log)';
  }
}
