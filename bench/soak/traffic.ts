/** The soak's users: logging in through the emulator, calling the API through both instances, logging out. */
import { Pool } from 'undici';
import { loginThroughEmulator, mapLimit } from '../lib/login.js';
import type { ServerProcess } from '../lib/procs.js';

export const PASSWORD = 'soak-password';

/** A BFF instance and the load generator's connections to it. */
export interface Instance {
  server: ServerProcess;
  pool: Pool;
}

/** Enough connections for every session to have a call in flight at once. */
export function newPool(url: string, sessions: number): Pool {
  return new Pool(url, { connections: Math.min(256, sessions) });
}

export interface Session {
  user: string;
  cookie: string;
}

/** Logs users u0, u1, ... in, alternately through each instance. */
export async function loginAll(instances: Instance[], count: number): Promise<Session[]> {
  return mapLimit(Array.from({ length: count }, (_, i) => i), 8, async (i) => ({
    user: `u${i}`,
    cookie: await loginThroughEmulator((instances[i % 2] as Instance).server.url, { username: `u${i}`, password: PASSWORD }),
  }));
}

export interface LoadFigures {
  calls: number;
  gets: number;
  posts: number;
  byStatus: Record<number, number>;
  networkErrors: number;
  p50Ms: number;
  p99Ms: number;
  /** When each session's last call started (epoch ms), by user. */
  lastCallAt: Map<string, number>;
}

/** Every session calls `/api/data` in turn on both instances, a GET twice, then a POST with a body. */
export async function drive(instances: Instance[], sessions: Session[], durationSec: number, thinkMs: number): Promise<LoadFigures> {
  const figures: LoadFigures = { calls: 0, gets: 0, posts: 0, byStatus: {}, networkErrors: 0, p50Ms: 0, p99Ms: 0, lastCallAt: new Map() };
  const latencies: number[] = [];
  const until = performance.now() + durationSec * 1000;
  await Promise.all(sessions.map(async (session, s) => {
    // Start spread over one think time, as users would.
    await sleep(Math.random() * thinkMs);
    for (let n = s; performance.now() < until; n++) {
      const post = n % 3 === 2;
      const instance = instances[n % 2] as Instance;
      figures.lastCallAt.set(session.user, Date.now());
      const started = performance.now();
      try {
        const res = await instance.pool.request({
          path: '/api/data', method: post ? 'POST' : 'GET',
          headers: { cookie: session.cookie, 'x-csrf': '1', ...(post ? { 'content-type': 'application/json' } : {}) },
          ...(post ? { body: JSON.stringify({ n, at: Date.now() }) } : {}),
        });
        await res.body.arrayBuffer();
        figures.byStatus[res.statusCode] = (figures.byStatus[res.statusCode] ?? 0) + 1;
      } catch {
        figures.networkErrors++;
      }
      latencies.push(performance.now() - started);
      figures.calls++;
      if (post) figures.posts++;
      else figures.gets++;
      await sleep(Math.random() * 2 * thinkMs);
    }
  }));
  latencies.sort((a, b) => a - b);
  figures.p50Ms = latencies[Math.floor(latencies.length * 0.5)] ?? 0;
  figures.p99Ms = latencies[Math.floor(latencies.length * 0.99)] ?? 0;
  return figures;
}

/** Logs every session out through its logout URL; resolves to the number that failed. */
export async function logoutAll(instances: Instance[], sessions: Session[]): Promise<number> {
  const outcomes = await mapLimit(sessions, 16, async (session, i) => {
    const { pool } = instances[i % 2] as Instance;
    const user = await pool.request({ path: '/auth/user', method: 'GET', headers: { cookie: session.cookie } });
    const body = (await user.body.json()) as { logoutUrl?: string };
    if (user.statusCode !== 200 || body.logoutUrl === undefined) return false;
    const res = await pool.request({ path: body.logoutUrl, method: 'GET', headers: { cookie: session.cookie } });
    await res.body.arrayBuffer();
    return res.statusCode === 302;
  });
  return outcomes.filter((ok) => !ok).length;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
