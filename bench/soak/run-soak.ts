/**
 * The soak: many sessions on two BFF instances sharing Redis, access tokens that live a few seconds, GETs and
 * POSTs for a while, then everyone logs out. It measures what a user and an operator would notice (failed calls,
 * wrong logouts, exchanges per expiry, tokens an API refused, heap, keys left) and checks each against its target.
 * `npm run soak` runs it at full volume (bench/soak.ts); test/soak runs it at CI size.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { cpuMsOf, freePort, startServer, type ServerProcess } from '../lib/procs.js';
import { exchangeAccounting, type BffEvent } from './exchanges.js';
import { drive, loginAll, logoutAll, newPool, PASSWORD, type Instance } from './traffic.js';

export interface SoakSettings {
  /** Sessions calling at once, each its own user, spread over both instances. */
  sessions: number;
  /** Seconds of full load. */
  durationSec: number;
  /** Mean pause (ms) between one session's calls: random from 0 to twice this. */
  thinkMs: number;
  /** The emulator's access token lifetime, in seconds. */
  tokenTtlSec: number;
  /**
   * Seconds of a first, shorter round (the same users log in, call and log out) before the heap baseline, so that
   * what a round leaves for good (compiled code, buffers that fill up to their bound) is not counted as growth.
   */
  warmupSec: number;
  /**
   * Milliseconds between the last logout of a round and its heap measure: longer than what outlives a request by
   * design (kept-alive connections, the client-side cache's ttl of 5 s).
   */
  settleMs: number;
  redisUrl: string;
  /** Where to write a heap snapshot of each instance at each heap measure, to find what a growth is made of. */
  heapSnapshotDir?: string;
  /** Progress lines (default: none). */
  say?: (message: string) => void;
}

export const FULL_SOAK: Omit<SoakSettings, 'redisUrl'> = { sessions: 200, durationSec: 60, thinkMs: 150, tokenTtlSec: 5, warmupSec: 10, settleMs: 6_000 };
/** Deterministic on a noisy 2-core machine: the same sessions and token lifetime, a shorter run at a lower rate. */
export const CI_SOAK: Omit<SoakSettings, 'redisUrl'> = { sessions: 200, durationSec: 15, thinkMs: 1_000, tokenTtlSec: 5, warmupSec: 6, settleMs: 6_000 };

export interface SoakCheck {
  name: string;
  value: string;
  pass: boolean;
}

export interface SoakResult {
  settings: Omit<SoakSettings, 'say'>;
  figures: Record<string, number | string>;
  checks: SoakCheck[];
  passed: boolean;
}

const CLIENT_ID = 'soak-bff';
const AUDIENCE = 'https://api.soak.example';
/** The most a heap may grow from before the sessions to after they ended, per instance. */
const HEAP_GROWTH_LIMIT = 1024 * 1024;

/** Runs the soak; stops everything it started, whatever happens. */
export async function runSoak(settings: SoakSettings): Promise<SoakResult> {
  const say = settings.say ?? (() => {});
  const runId = randomBytes(4).toString('hex');
  const prefix = `soak:${runId}:`;
  const logDir = mkdtempSync(join(tmpdir(), `express-ort-bff-soak-${runId}-`));
  const clientSecret = randomBytes(24).toString('hex');
  const sessionSecret = randomBytes(24).toString('hex');
  const ports = [await freePort(), await freePort()];
  const [upstreamPort, issuerPort, adminPort] = [await freePort(), await freePort(), await freePort()];
  const issuer = `http://127.0.0.1:${issuerPort}/`;
  const redis = createClient({ url: settings.redisUrl });
  redis.on('error', () => {});
  const servers: ServerProcess[] = [];
  const instances: Instance[] = [];
  try {
    await redis.connect();
    const users = Array.from({ length: settings.sessions }, (_, i) => `u${i}`);
    const emulator = await startServer({
      name: 'soak-auth0', script: 'bench/soak/emulator.ts', port: adminPort, logDir, readyPath: '/sessions', readyBody: (b) => b.startsWith('{"live":'),
      env: {
        ISSUER_PORT: String(issuerPort), CLIENT_ID, CLIENT_SECRET: clientSecret, REDIRECT_ORIGINS: ports.map((p) => `http://127.0.0.1:${p}`).join(','),
        USERS: users.join(','), PASSWORD, AUDIENCE, ACCESS_TOKEN_TTL: String(settings.tokenTtlSec),
      },
    });
    servers.push(emulator);
    const auth0 = {
      get: async <T>(path: string): Promise<T> => (await (await fetch(`${emulator.url}${path}`)).json()) as T,
      post: async <T>(path: string): Promise<T> => (await (await fetch(`${emulator.url}${path}`, { method: 'POST' })).json()) as T,
      resetCounts: async () => void (await (await fetch(`${emulator.url}/reset-counts`, { method: 'POST' })).arrayBuffer()),
    };
    const upstream = await startServer({ name: 'soak-upstream', script: 'bench/soak/strict-upstream.ts', port: upstreamPort, env: { ISSUER_URL: issuer, AUDIENCE }, logDir, readyPath: '/__soak/stats', readyBody: (b) => b.startsWith('{"accepted":') });
    servers.push(upstream);
    for (const [i, port] of ports.entries()) {
      const server = await startServer({
        name: `soak-bff-${i + 1}`, script: 'bench/servers/lib-bff.ts', port, logDir, nodeArgs: ['--expose-gc'], readyPath: '/__bench/ping', readyBody: (b) => b === 'pong',
        env: {
          BASE_URL: `http://127.0.0.1:${port}`, ISSUER_URL: issuer, CLIENT_ID, CLIENT_SECRET: clientSecret, AUDIENCE,
          UPSTREAM_API_URL: upstream.url, REDIS_URL: settings.redisUrl, SESSION_SECRET: sessionSecret, BENCH_REDIS_PREFIX: prefix, BENCH_ADMIN: '1', BENCH_EVENTS: '1',
        },
      });
      servers.push(server);
      instances.push({ server, pool: newPool(server.url, settings.sessions) });
    }
    say(`run ${runId}: ${settings.sessions} sessions, ${settings.durationSec} s, tokens of ${settings.tokenTtlSec} s; logs in ${logDir}`);

    say(`warm-up round: ${settings.sessions} sessions for ${settings.warmupSec} s`);
    const warm = await loginAll(instances, settings.sessions);
    await drive(instances, warm, settings.warmupSec, settings.thinkMs);
    await logoutAll(instances, warm);
    await drainEvents(instances);
    const heapBefore = await quietHeaps(instances, settings);
    await auth0.resetCounts();
    await auth0.post('/issued');

    say(`logging in ${settings.sessions} sessions`);
    const sessions = await loginAll(instances, settings.sessions);
    say(`calling for ${settings.durationSec} s`);
    // CPU time does not depend on what else runs on the machine: it tells what the load itself costs.
    const cpuBefore = [...servers.map((s) => cpuMsOf(s.pid)), process.cpuUsage()];
    const load = await drive(instances, sessions, settings.durationSec, settings.thinkMs);
    const cores = servers.map((s, i) => (cpuMsOf(s.pid) - (cpuBefore[i] as number)) / (settings.durationSec * 1000));
    const parentCpu = process.cpuUsage(cpuBefore[servers.length] as NodeJS.CpuUsage);
    cores.push((parentCpu.user + parentCpu.system) / 1000 / (settings.durationSec * 1000));
    const upstreamStats = (await (await fetch(`${upstream.url}/__soak/stats`)).json()) as { accepted: number; expired: number; invalid: number; missing: number; latestExpiredByMs: number };
    const auth0SessionsBeforeLogout = (await auth0.get<{ live: number }>('/sessions')).live;
    const eventsOfRun = await drainEvents(instances);
    const tokenCounts = (await auth0.get<{ token: Record<string, Record<string, number> | undefined> }>('/counts')).token;
    const counts = tokenCounts.refresh_token ?? {};
    const issued = await auth0.post<Record<string, number[]>>('/issued');

    say('logging everyone out');
    const logoutFailures = await logoutAll(instances, sessions);
    const logoutEvents = (await drainEvents(instances)).filter((e) => e.name === 'logout');
    const heapAfter = await quietHeaps(instances, settings);
    const keysLeft = await scan(redis, `${prefix}*`);

    const accounting = exchangeAccounting(issued, load.lastCallAt, settings.tokenTtlSec, eventsOfRun);
    const reportedByBffs = eventsOfRun.filter((e) => e.name === 'refresh').length;
    const issuedCount = Object.values(issued).reduce((sum, times) => sum + times.length, 0);
    const issuedAtAuth0 = (tokenCounts.authorization_code?.ok ?? 0) + (counts.ok ?? 0);
    const wrongLogouts = eventsOfRun.filter((e) => e.name === 'logout').length + (settings.sessions - auth0SessionsBeforeLogout);
    const rejected = upstreamStats.expired + upstreamStats.invalid + upstreamStats.missing;
    const exchangedAtAuth0 = counts.ok ?? 0;
    const failedAtAuth0 = Object.entries(counts).filter(([outcome]) => outcome !== 'ok').reduce((sum, [, n]) => sum + (n ?? 0), 0);
    const growth = heapAfter.map((after, i) => after - (heapBefore[i] as number));
    const non2xx = load.calls - (load.byStatus[200] ?? 0);
    const logLines = instances.flatMap(({ server }) => readFileSync(server.logFile, 'utf8').split('\n')).filter((line) => /^(warn|error|redis:)/.test(line));

    const figures: Record<string, number | string> = {
      sessions: sessions.length,
      'calls (GET / POST)': `${load.calls} (${load.gets} / ${load.posts})`,
      'calls per second': Math.round(load.calls / settings.durationSec),
      'latency p50 / p99 (ms)': `${load.p50Ms.toFixed(1)} / ${load.p99Ms.toFixed(1)}`,
      'CPU during the calls, in cores (Auth0 / API / BFF 1 / BFF 2 / users)': cores.map((c) => c.toFixed(2)).join(' / '),
      'answers by status': Object.entries(load.byStatus).map(([s, n]) => `${s}: ${n}`).join(', ') + (load.networkErrors ? `, network errors: ${load.networkErrors}` : ''),
      'non-2xx answers': non2xx + load.networkErrors,
      'wrong logouts': wrongLogouts,
      'token expiries that occurred': accounting.expiries,
      'exchanges (Auth0 counted / BFF events)': `${exchangedAtAuth0} / ${reportedByBffs}`,
      'exchanges per session (min / median / max)': accounting.perSession,
      'second exchanges for one expiry': accounting.duplicates,
      // A timed-out attempt is retried; Auth0 may still complete it, which shows as a second exchange above.
      'exchange attempts the BFFs gave up on and retried (refresh_failed)': eventsOfRun.filter((e) => e.name === 'refresh_failed').length,
      'sessions whose exchanges do not match their expiries': accounting.mismatched,
      'failed exchanges': failedAtAuth0,
      'tokens the upstream refused (expired / invalid / missing)': `${rejected} (${upstreamStats.expired} / ${upstreamStats.invalid} / ${upstreamStats.missing})`,
      'heap without compiled code, before / after, instance 1 (MiB)': `${mib(heapBefore[0])} / ${mib(heapAfter[0])}`,
      'heap without compiled code, before / after, instance 2 (MiB)': `${mib(heapBefore[1])} / ${mib(heapAfter[1])}`,
      'logouts (user)': `${logoutEvents.filter((e) => e.reason === 'user').length}, failed: ${logoutFailures}`,
      'Redis keys left after everyone logged out': keysLeft.length,
      'warnings and errors the instances logged': logLines.length === 0 ? 0 : `${logLines.length}, first: ${logLines[0]?.slice(0, 160)}`,
    };
    const checks: SoakCheck[] = [
      { name: 'every session called across at least two expiries', value: `min ${accounting.minExpiries}`, pass: accounting.minExpiries >= 2 },
      { name: 'non-2xx answers = 0', value: String(non2xx + load.networkErrors), pass: non2xx + load.networkErrors === 0 },
      { name: 'wrong logouts = 0', value: String(wrongLogouts), pass: wrongLogouts === 0 },
      { name: 'second exchanges for one expiry = 0', value: String(accounting.duplicates), pass: accounting.duplicates === 0 },
      { name: 'one exchange for each expiry, in every session', value: `${accounting.mismatched} sessions off`, pass: accounting.mismatched === 0 },
      { name: 'every exchange Auth0 made was reported by a BFF, none failed', value: `${exchangedAtAuth0} / ${reportedByBffs}, ${failedAtAuth0} failed`, pass: reportedByBffs === exchangedAtAuth0 && failedAtAuth0 === 0 },
      { name: 'every access token Auth0 issued was accounted for', value: `${issuedCount} / ${issuedAtAuth0}`, pass: issuedCount === issuedAtAuth0 },
      { name: 'tokens the upstream refused = 0', value: String(rejected), pass: rejected === 0 },
      ...growth.map((g, i) => ({ name: `heap growth of instance ${i + 1} once the sessions ended < 1 MiB`, value: `${(g / 1024).toFixed(0)} KiB`, pass: g < HEAP_GROWTH_LIMIT })),
      { name: 'every session logged out', value: `${logoutFailures} failed`, pass: logoutFailures === 0 && logoutEvents.length === sessions.length },
      { name: 'Redis keys left after everyone logged out = 0', value: String(keysLeft.length), pass: keysLeft.length === 0 },
    ];
    if (keysLeft.length > 0) await redis.del(keysLeft);
    const { say: _say, ...kept } = settings;
    return { settings: kept, figures, checks, passed: checks.every((c) => c.pass) };
  } finally {
    for (const instance of instances) await instance.pool.close().catch(() => {});
    for (const server of servers.reverse()) await server.stop().catch(() => {});
    // Whatever a failed run left under its prefix.
    if (redis.isOpen) {
      const left = await scan(redis, `${prefix}*`).catch(() => []);
      if (left.length > 0) await redis.del(left).catch(() => {});
      await redis.close();
    }
  }
}

async function drainEvents(instances: Instance[]): Promise<BffEvent[]> {
  const all: BffEvent[] = [];
  for (const { pool } of instances) {
    const res = await pool.request({ path: '/__bench/events', method: 'POST' });
    all.push(...((await res.body.json()) as { events: BffEvent[] }).events);
  }
  return all.sort((a, b) => a.at - b.at);
}

/**
 * Each instance's heap after GC, compiled code left out (it grows as functions get hot, up to the program's
 * size), with no connection open but the one asking: the load generator's connections
 * are closed first, and the upstream closes the BFF's idle ones after a second, so that sockets a pool kept
 * open (bounded, and gone when idle) are not counted as growth. The instances get fresh pools for what follows.
 */
async function quietHeaps(instances: Instance[], settings: SoakSettings): Promise<number[]> {
  for (const instance of instances) {
    await instance.pool.close();
    instance.pool = newPool(instance.server.url, settings.sessions);
  }
  await new Promise((resolve) => setTimeout(resolve, settings.settleMs));
  const heaps: number[] = [];
  for (const { server } of instances) {
    if (settings.heapSnapshotDir !== undefined) await (await fetch(`${server.url}/__bench/heap-snapshot?dir=${encodeURIComponent(settings.heapSnapshotDir)}`, { method: 'POST' })).arrayBuffer();
    const res = await fetch(`${server.url}/__bench/heap`);
    const { heapUsedWithoutCode, gc } = (await res.json()) as { heapUsedWithoutCode: number; gc: boolean };
    if (!gc) throw new Error('the BFF instances must run with --expose-gc');
    heaps.push(heapUsedWithoutCode);
  }
  return heaps;
}

async function scan(redis: { scanIterator(options: { MATCH: string; COUNT: number }): AsyncIterable<string[]> }, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const batch of redis.scanIterator({ MATCH: pattern, COUNT: 1000 })) keys.push(...batch);
  return keys;
}

const mib = (bytes: number | undefined) => ((bytes ?? 0) / 1024 / 1024).toFixed(2);
