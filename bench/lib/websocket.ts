/**
 * WebSockets in the bench: message throughput through the BFF next to a direct connection to the same echo
 * upstream, and how soon the BFF closes a session's sockets after a logout, on the instance that logged out and on
 * another one sharing Redis.
 */
import { spawn } from 'node:child_process';
import WebSocket from 'ws';
import { ROOT, pinned } from './procs.js';
import { median, round } from './stats.js';

export interface WsTarget {
  key: string;
  label: string;
  url: string;
  cookie?: string;
  origin?: string;
  /** The process whose CPU time is read around each run (the BFF's, or the upstream's for the direct runs). */
  pid: number;
}

export interface WsThroughput {
  size: number;
  connections: number;
  inFlight: number;
  /** Per target: median messages echoed per second, MB/s of payload both ways, CPU us per message. */
  targets: Record<string, { label: string; messagesPerSec: number; mbPerSec: number; cpuUsPerMessage: number; errors: number; rounds: number[] }>;
  /** Through the BFF over direct, per round, median. */
  bffVsDirect: number;
}

export interface WsSessionEnd {
  sockets: number;
  repeats: number;
  /** ms from sending the logout request until each socket saw its 4401 close: median and max over every socket. */
  sameInstance: { medianMs: number; maxMs: number };
  otherInstance: { medianMs: number; maxMs: number };
  allClosedWith4401: boolean;
}

/** One load run by the pinned client process. */
function runWsLoad(target: WsTarget, options: { connections: number; inFlight: number; size: number; seconds: number }): Promise<{ messages: number; seconds: number; errors: number }> {
  const [command, args] = pinned(0, process.execPath, ['--import', 'tsx', 'bench/load/ws-echo-client.ts']);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: ROOT,
      env: {
        ...process.env,
        WS_URL: target.url,
        WS_COOKIE: target.cookie ?? '',
        WS_ORIGIN: target.origin ?? '',
        WS_CONNECTIONS: String(options.connections),
        WS_IN_FLIGHT: String(options.inFlight),
        WS_SIZE: String(options.size),
        WS_SECONDS: String(options.seconds),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    // 'close': the output is read to the end (see runLoad).
    child.once('close', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(line) as { messages: number; seconds: number; errors: number });
      } catch {
        reject(new Error(`the WebSocket load client failed (exit ${code}): ${err.slice(0, 800)}`));
      }
    });
  });
}

/** Echo throughput for each message size, the targets alternating within each round. */
export async function measureWsThroughput(
  targets: WsTarget[],
  settings: { rounds: number; seconds: number; sizes: number[]; connections: number; inFlight: number },
  cpuMsOf: (pid: number) => number,
  say: (message: string) => void,
): Promise<WsThroughput[]> {
  const results: WsThroughput[] = [];
  for (const size of settings.sizes) {
    const perTarget = new Map(targets.map((t) => [t.key, [] as Array<{ rate: number; cpuUs: number; errors: number }>]));
    for (let r = 0; r < settings.rounds; r++) {
      const order = r % 2 === 0 ? targets : [...targets].reverse();
      for (const target of order) {
        const cpuBefore = cpuMsOf(target.pid);
        const run = await runWsLoad(target, { connections: settings.connections, inFlight: settings.inFlight, size, seconds: settings.seconds });
        // The warm-up half second is in the CPU time too: count its messages at the measured rate.
        const cpuUs = ((cpuMsOf(target.pid) - cpuBefore) * 1000) / Math.max(1, run.messages * ((run.seconds + 0.5) / run.seconds));
        const rate = run.messages / run.seconds;
        perTarget.get(target.key)?.push({ rate, cpuUs, errors: run.errors });
        say(`websocket ${size} B round ${r + 1}/${settings.rounds} ${target.key.padEnd(8)} ${Math.round(rate)} msg/s  CPU ${cpuUs.toFixed(1)} us/msg${run.errors ? `  ERRORS ${run.errors}` : ''}`);
      }
    }
    const [direct, bff] = targets.map((t) => perTarget.get(t.key) ?? []);
    results.push({
      size,
      connections: settings.connections,
      inFlight: settings.inFlight,
      targets: Object.fromEntries(targets.map((t) => {
        const runs = perTarget.get(t.key) ?? [];
        const rate = median(runs.map((x) => x.rate));
        return [t.key, {
          label: t.label,
          messagesPerSec: round(rate, 0),
          mbPerSec: round((rate * size * 2) / 1e6, 1),
          cpuUsPerMessage: round(median(runs.map((x) => x.cpuUs)), 2),
          errors: runs.reduce((n, x) => n + x.errors, 0),
          rounds: runs.map((x) => round(x.rate, 0)),
        }];
      })),
      bffVsDirect: round(median((bff ?? []).map((x, i) => x.rate / ((direct ?? [])[i]?.rate ?? Number.NaN))), 2),
    });
  }
  return results;
}

/**
 * Opens `sockets` sockets of one session on each of two instances, logs the session out through the first, and
 * times each socket's close from the moment the logout request was sent.
 */
export async function measureSessionEnd(
  instances: [string, string],
  login: (repeat: number) => Promise<string>,
  settings: { repeats: number; sockets: number },
  say: (message: string) => void,
): Promise<WsSessionEnd> {
  const same: number[] = [];
  const other: number[] = [];
  let all4401 = true;
  for (let r = 0; r < settings.repeats; r++) {
    const cookie = await login(r);
    const open = (base: string) => new Promise<{ closed: Promise<{ code: number; at: number }> }>((resolve, reject) => {
      const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/api/session-end`, { headers: { cookie }, origin: base });
      const closed = new Promise<{ code: number; at: number }>((done) => ws.once('close', (code) => done({ code, at: performance.now() })));
      ws.once('open', () => resolve({ closed }));
      ws.once('error', reject);
    });
    const opened = await Promise.all(instances.flatMap((base) => Array.from({ length: settings.sockets }, () => open(base))));
    const user = await fetch(`${instances[0]}/auth/user`, { headers: { cookie } });
    const { logoutUrl } = (await user.json()) as { logoutUrl: string };
    const started = performance.now();
    const res = await fetch(`${instances[0]}${logoutUrl}`, { headers: { cookie }, redirect: 'manual' });
    await res.arrayBuffer();
    const closes = await Promise.all(opened.map((o) => o.closed));
    closes.forEach((c, i) => {
      if (c.code !== 4401) all4401 = false;
      (i < settings.sockets ? same : other).push(c.at - started);
    });
    say(`session end ${r + 1}/${settings.repeats}: ${settings.sockets} sockets on the instance that logged out closed within ${Math.round(Math.max(...same.slice(-settings.sockets)))} ms, ${settings.sockets} on the other within ${Math.round(Math.max(...other.slice(-settings.sockets)))} ms`);
  }
  return {
    sockets: settings.sockets,
    repeats: settings.repeats,
    sameInstance: { medianMs: round(median(same), 1), maxMs: round(Math.max(...same), 1) },
    otherInstance: { medianMs: round(median(other), 1), maxMs: round(Math.max(...other), 1) },
    allClosedWith4401: all4401,
  };
}

export function wsThroughputRows(results: WsThroughput[], keys: [string, string]): string[][] {
  return [['WebSocket echo (messages/s, both ways)', 'direct msg/s', 'through the BFF msg/s', 'BFF / direct', 'direct MB/s', 'BFF MB/s', 'BFF CPU us/msg', 'errors'],
    ...results.map((r) => {
      const [d, b] = keys.map((k) => r.targets[k]);
      return [`${r.size} B messages, ${r.connections} sockets x ${r.inFlight} in flight`, String(d?.messagesPerSec), String(b?.messagesPerSec), r.bffVsDirect.toFixed(2), String(d?.mbPerSec), String(b?.mbPerSec), String(b?.cpuUsPerMessage), String((d?.errors ?? 0) + (b?.errors ?? 0))];
    })];
}

export function sessionEndRows(s: WsSessionEnd): string[][] {
  return [['sockets closed after a logout (ms from the logout request)', 'median', 'max', 'all 4401'],
    [`${s.sockets} sockets on the instance that logged out, ${s.repeats} repeats`, s.sameInstance.medianMs.toFixed(1), s.sameInstance.maxMs.toFixed(1), s.allClosedWith4401 ? 'yes' : 'NO'],
    [`${s.sockets} sockets on another instance (Redis pub/sub)`, s.otherInstance.medianMs.toFixed(1), s.otherInstance.maxMs.toFixed(1), s.allClosedWith4401 ? 'yes' : 'NO']];
}
