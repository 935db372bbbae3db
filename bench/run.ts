/**
 * `npm run bench`: this library side by side with the proxies people use today, in front of one upstream.
 *
 *   npm run bench                 full run (~30 min): writes bench/results/latest.json and updates BENCHMARKS.md
 *   npm run bench -- --smoke      seconds, for CI (also BENCH_SMOKE=1): writes bench/results/smoke.json
 *   npm run bench -- --quick      direct, ceiling, plain proxy and library (example, app.use() form, DPoP) throughput only (a few minutes), nothing written
 *   npm run bench -- --profile    CPU profile of the library contestant under load, top self-time functions
 *   npm run bench -- --ab         the example of the working tree against the example at BENCH_AB_REF (default HEAD),
 *                                 side by side with the ceiling, alternating rounds, and loaded at the same time
 *   npm run bench -- --gc         the example, the ceiling and the ceiling in an app's process under --trace-gc, rounds in turn: p99 and GC pauses
 *   npm run bench -- --spread     several processes of the example, of the ceiling and of the ceiling sending what the
 *                                 example sends beside an app (BENCH_SPREAD_PROCESSES, default 3 of each),
 *                                 each loaded in turn every round: how far identical processes differ
 *   npm run bench -- --instructions  instructions per proxied call under valgrind's callgrind: the example, the ceiling,
 *                                 the ceiling sending what the example sends, and that one in a process that also
 *                                 runs an app (BENCH_INSTRUCTIONS_USE=1 adds the app.use() form, with and without
 *                                 serverOptions(app)): counts,
 *                                 not times, so the same in a busy run as in a quiet one; BENCH_INSTRUCTIONS_SESSIONS=N
 *                                 instead counts what serving N requests (logins, /auth/user calls, an app's) costs
 *                                 a process's proxied calls
 *   npm run bench -- --allocations  bytes allocated per proxied call, by function, from V8's sampling heap profiler:
 *                                 the same servers
 *   npm run bench -- --memory     the memory run alone (BENCH_MEMORY_SESSIONS, default 10,000; BENCH_HEAP_SNAPSHOTS=<dir>
 *                                 writes heap snapshots at the baseline, with the sessions live and after they ended)
 *
 * Every mode runs the ceiling (bench/servers/ceiling.ts: bare node:http + undici, a static token, nothing else) and
 * reports each contestant against it ("x ceiling", "p99 x ceiling") as well as against the plain express proxy.
 * Quick and full also run "library, app.use()" (bench/servers/lib-bff.ts, BENCH_ENTRY=use) beside the example.
 *
 * Env: REDIS_URL (default redis://127.0.0.1:6379/12: a logical DB of its own; every key the bench's servers
 * write starts with bench:<run id>: and is deleted at the end), BENCH_LOAD_TOOL=wrk|autocannon (default: wrk when
 * installed), BENCH_LIBRARY_SERVER=example|bench (default: example/start.ts when it exists), BENCH_KEEP_LOGS=1 (keep
 * the servers' logs of a run that passed).
 * BENCH_FRESH_LOGINS=N (quick and full runs with more than one session): log N users in to the fresh example the
 * library is paired with last, instead of one, each calling the API once, so that the pairs show what the rounds
 * over the sessions cost apart from the logins.
 * Every server the bench starts runs with the node options `npm start` gives the example (package.json's start
 * script: V8's polymorphic limit raised), contestants and ceiling alike, so that the example is measured as it runs
 * and a process-wide option favours no side; BENCH_NODE_ARGS="<node options>" gives them others instead ("" none).
 * BENCH_OTEL=1 with --quick adds the library with an OpenTelemetry SDK registered (the example's METRICS_PORT and
 * OTEL_EXPORTER_OTLP_ENDPOINT, every span exported to a stand-in collector) next to the library without one
 * (only @opentelemetry/api, as always), and loads the two head to head.
 * Every server runs the JavaScript tsc compiles from src/, example/ and bench/servers/ (into a directory of the run
 * under node_modules/.cache/express-ort-bff-bench, removed at its end), with plain `node`, as a deployment runs the built package;
 * BENCH_RUNTIME=tsx runs their TypeScript through tsx instead (source maps off), as the bench did before.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { Pool } from 'undici';
import { createClient } from 'redis';
import { startLocalAuth0, type LocalAuth0 } from '../src/local-auth0/index.js';
import { runLoad, wrkAvailable, type LoadResult, type LoadTool } from './lib/load.js';
import { gcPauseLists, gcPauses, gcRows, logSize, summarize } from './lib/gc-trace.js';
import { loginThroughEmulator, mapLimit } from './lib/login.js';
import { startOtlpSink, type OtlpSink } from './lib/otlp-sink.js';
import { compile, compiledScript, type Runtime } from './lib/compiled.js';
import { byFunction, isOwnCode, readProfile as readAllocationProfile, waitForFile, type Allocations } from './lib/allocations.js';
import { ROOT, canPin, cpuMsOf, freePort, npmStartNodeOptions, startServer, type ServerProcess } from './lib/procs.js';
import { callgrindWrapper, dumpCounts, functionCounts, sendCalls, valgrindAvailable, zeroCounts } from './lib/instructions.js';
import { monotonicUs, readProfile, selfTimeByArea, topCallers, topSelfTime } from './lib/profile.js';
import { markdownTable, median, round, table } from './lib/stats.js';
import { measurePaired, pairedRows, type PairedResult } from './lib/paired.js';
import { measureSessionEnd, measureWsThroughput, sessionEndRows, wsThroughputRows, type WsSessionEnd, type WsTarget } from './lib/websocket.js';

// ---------------------------------------------------------------------------------------------------- settings
const argv = process.argv.slice(2);
const mode: 'full' | 'smoke' | 'profile' | 'quick' | 'memory' | 'ab' | 'gc' | 'spread' | 'instructions' | 'allocations' = argv.includes('--profile')
  ? 'profile'
  : argv.includes('--allocations') ? 'allocations'
  : argv.includes('--gc') ? 'gc'
  : argv.includes('--spread') ? 'spread'
  : argv.includes('--instructions') ? 'instructions'
  : argv.includes('--quick') ? 'quick'
  : argv.includes('--memory') ? 'memory'
  : argv.includes('--ab') ? 'ab'
  : argv.includes('--smoke') || process.env.BENCH_SMOKE === '1' ? 'smoke' : 'full';
// --quick: direct, the plain proxy and the library only, no storms or memory, nothing written: for iterating on the hot path.
const settings = mode === 'quick'
  ? { rounds: 4, headToHeadRepeats: 3, warmupSec: 3, loadSec: 4, unloadedSec: 2, connections: 32, sessions: Number(process.env.BENCH_QUICK_SESSIONS ?? 1), memorySessions: 0, storms: [], stormRepeats: 0, memoryLoginBudgetMs: 0, memorySettleMs: 0 }
  : mode === 'smoke'
  ? { rounds: 1, headToHeadRepeats: 1, warmupSec: 1, loadSec: 1, unloadedSec: 1, connections: 32, sessions: 20, memorySessions: 40, storms: [1, 20, 200], stormRepeats: 1, memoryLoginBudgetMs: 15_000, memorySettleMs: 1_000 }
  // --ab: the example of the working tree against the example of BENCH_AB_REF (default HEAD), with the ceiling.
  : mode === 'ab' || mode === 'gc' || mode === 'spread' || mode === 'instructions' || mode === 'allocations'
  ? { rounds: 7, headToHeadRepeats: 5, warmupSec: 3, loadSec: 4, unloadedSec: 2, connections: 32, sessions: 1, memorySessions: 0, storms: [], stormRepeats: 0, memoryLoginBudgetMs: 0, memorySettleMs: 0 }
  // --memory: only the memory run, of BENCH_MEMORY_SESSIONS sessions (10,000 as in a full run); with
  // BENCH_HEAP_SNAPSHOTS=<dir>, heap snapshots at the baseline, with the sessions live, and after they ended.
  : mode === 'memory'
  ? { rounds: 0, headToHeadRepeats: 0, warmupSec: 0, loadSec: 0, unloadedSec: 0, connections: 0, sessions: 0, memorySessions: Number(process.env.BENCH_MEMORY_SESSIONS ?? 10_000), storms: [], stormRepeats: 0, memoryLoginBudgetMs: 300_000, memorySettleMs: 65_000 }
  : { rounds: 7, headToHeadRepeats: 7, warmupSec: 5, loadSec: 5, unloadedSec: 3, connections: 32, sessions: 1000, memorySessions: 10_000, storms: [1, 20, 200], stormRepeats: 7, memoryLoginBudgetMs: 300_000, memorySettleMs: 65_000 };
const profileSec = 15;
/** Node options for every server the bench starts, before any a mode adds to one server: npm start's, or BENCH_NODE_ARGS. */
const benchNodeArgs = process.env.BENCH_NODE_ARGS === undefined ? npmStartNodeOptions() : process.env.BENCH_NODE_ARGS.split(' ').filter(Boolean);
/** BENCH_FRESH_LOGINS: how many users log in to the process the library is paired with last (default 1). */
const freshLogins = Math.max(1, Math.floor(Number(process.env.BENCH_FRESH_LOGINS)) || 1);
const spreadProcesses = Math.max(1, Number(process.env.BENCH_SPREAD_PROCESSES ?? 3));
// --instructions: calls before counting, then windows of calls, each counted on its own, until the last `settled`
// windows agree within `tolerance` (under valgrind the counts keep falling for the first 20,000-30,000 calls), at
// most `maxWindows`.
const instructionSettings = {
  warmupCalls: Number(process.env.BENCH_INSTRUCTIONS_WARMUP ?? 10_000),
  calls: Number(process.env.BENCH_INSTRUCTIONS_CALLS ?? 2_000),
  settled: 3,
  tolerance: 0.03,
  maxWindows: Number(process.env.BENCH_INSTRUCTIONS_MAX_WINDOWS ?? 20),
  concurrency: 8,
  // The app.use() form executes about three times the example's instructions: minutes more under valgrind.
  useForm: process.env.BENCH_INSTRUCTIONS_USE === '1',
  // Also where the instructions go, by function: the example's against the ceiling's sending what it sends.
  functions: process.env.BENCH_INSTRUCTIONS_FUNCTIONS === '1',
  // Above 1: instead of the usual servers, what serving this many requests before costs one user's calls: the
  // example after this many logins, and after this many calls to /auth/user; the proxy in an app's process after
  // this many of its app's requests (`printServed`).
  sessions: Math.max(1, Number(process.env.BENCH_INSTRUCTIONS_SESSIONS ?? 1)),
};
// --allocations: calls before sampling (the JIT settles), then the calls sampled, `concurrency` at a time.
const allocationSettings = {
  warmupCalls: Number(process.env.BENCH_ALLOCATIONS_WARMUP ?? 20_000),
  calls: Number(process.env.BENCH_ALLOCATIONS_CALLS ?? 20_000),
  concurrency: 8,
};
// WebSockets: echo throughput rounds (direct and through the BFF alternate), and logout-to-close repeats.
const wsSettings = mode === 'quick' || mode === 'memory' || mode === 'ab' || mode === 'gc' || mode === 'spread' || mode === 'instructions' || mode === 'allocations'
  ? { rounds: 3, seconds: 3, sizes: [128, 16_384], connections: 4, inFlight: 32, sessionEndRepeats: 0, sessionEndSockets: 0 }
  : mode === 'smoke'
  ? { rounds: 1, seconds: 1, sizes: [128, 16_384], connections: 4, inFlight: 32, sessionEndRepeats: 1, sessionEndSockets: 20 }
  : { rounds: 5, seconds: 5, sizes: [128, 16_384], connections: 4, inFlight: 32, sessionEndRepeats: 7, sessionEndSockets: 20 };

const tool: LoadTool = process.env.BENCH_LOAD_TOOL === 'autocannon' || !wrkAvailable ? 'autocannon' : 'wrk';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/12';
const runId = randomBytes(4).toString('hex');
const PREFIX = `bench:${runId}:`;
const CLIENT_ID = 'bench-bff';
const CLIENT_SECRET = randomBytes(24).toString('hex');
const SESSION_SECRET = randomBytes(24).toString('hex');
const AUDIENCE = 'https://api.bench.example';
const ACCESS_TOKEN_TTL = 3600;
const PASSWORD = 'bench-password';
/** The BFF's route that tells the SPA who is logged in (the example's default). */
const userRoute = '/auth/user';
const useExample = process.env.BENCH_LIBRARY_SERVER !== 'bench' && existsSync(join(ROOT, 'example/start.ts'));
/** The library with an OpenTelemetry SDK as a further contestant (--quick, through the example's environment). */
const withOtel = process.env.BENCH_OTEL === '1' && mode === 'quick';
const libraryScript = useExample ? 'example/start.ts' : 'bench/servers/lib-bff.ts';
const resultsDir = join(ROOT, 'bench/results');
/** How the servers run: the JavaScript tsc compiled (the default), or their TypeScript through tsx. */
const runtimeKind: Runtime['kind'] = process.env.BENCH_RUNTIME === 'tsx' ? 'tsx' : 'compiled';
// One directory per run (another run may be going on), removed at the end.
const compiledDir = join(ROOT, 'node_modules/.cache/express-ort-bff-bench', runId);
/** The servers' runtime; the compiled one is made in main(), before any server starts. */
let runtime: Runtime = { kind: 'tsx' };
const logDir = mkdtempSync(join(tmpdir(), `express-ort-bff-bench-${runId}-`));

const loadAtStart = round(loadavg()[0] as number, 2);
// Taken when the servers start (they load the code then).
const gitAtStart = {
  commit: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout?.trim() ?? 'unknown',
  srcChanged: (spawnSync('git', ['status', '--porcelain', 'src', 'example'], { cwd: ROOT, encoding: 'utf8' }).stdout?.trim() ?? '') !== '',
};
const say = (message: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

// ---------------------------------------------------------------------------------------------------- resources
const servers: ServerProcess[] = [];
let auth0: LocalAuth0 | undefined;
const redis = createClient({ url: REDIS_URL });
redis.on('error', (error: Error) => say(`redis: ${error.message}`));

async function scanKeys(pattern: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const batch of redis.scanIterator({ MATCH: pattern, COUNT: 1000 })) keys.push(...batch);
  return keys;
}

async function deleteKeys(keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 500) await redis.del(keys.slice(i, i + 500));
}

async function start(name: string, script: string, env: Record<string, string>, extra: { nodeArgs?: string[]; readyPath?: string; runtime?: Runtime; wrapper?: string[]; readyTimeoutMs?: number } = {}): Promise<ServerProcess> {
  const port = Number(env.PORT);
  const server = await startServer({ name, script, port, env, core: 1, logDir, runtime, ...extra, nodeArgs: [...benchNodeArgs, ...extra.nodeArgs ?? []] });
  servers.push(server);
  return server;
}

function libraryEnv(port: number, upstreamUrl: string, prefix: string): Record<string, string> {
  return {
    PORT: String(port),
    BASE_URL: `http://127.0.0.1:${port}`,
    ISSUER_URL: (auth0 as LocalAuth0).issuer,
    CLIENT_ID,
    CLIENT_SECRET,
    AUDIENCE,
    UPSTREAM_API_URL: upstreamUrl,
    REDIS_URL,
    SESSION_SECRET,
    BENCH_REDIS_PREFIX: prefix,
    REDIS_PREFIX: prefix,
  };
}

function writeCookieFile(name: string, cookies: string[]): string {
  const file = join(logDir, `${name}.cookies`);
  writeFileSync(file, `${cookies.join('\n')}\n`);
  return file;
}

async function expectOk(url: string, cookie?: string): Promise<void> {
  const res = await fetch(url, { headers: { 'x-csrf': '1', ...(cookie ? { cookie } : {}) } });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`${url} answered ${res.status}: ${body.slice(0, 300)}`);
}

/**
 * Makes a BFF renew its session's access token once before it is measured, as every BFF in production does within
 * a token's lifetime: the upstream refuses the token once (bench/servers/upstream.ts), and the BFF exchanges the ORT
 * and sends the call again. Whatever a first exchange leaves behind in a process is there while it is measured
 * (the AsyncLocalStorage the IdP client once used turned promise hooks on for good in the whole process on Node 20
 * and 22, and no bench saw it).
 */
async function renewOnce(bffUrl: string, cookie: string | undefined): Promise<void> {
  const exchanges = () => (auth0 as LocalAuth0).admin.counts().token.refresh_token?.ok ?? 0;
  const before = exchanges();
  const res = await fetch(`${bffUrl}/api/items`, { headers: { 'x-csrf': '1', 'x-bench-reject-token': randomBytes(8).toString('hex'), ...(cookie ? { cookie } : {}) } });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`${bffUrl}/api/items answered ${res.status} to a call whose token the upstream refused: ${body.slice(0, 300)}`);
  if (exchanges() === before) throw new Error(`${bffUrl} answered a call whose token the upstream refused without renewing the token`);
}

async function loginMany(bffUrl: string, users: string[], concurrency: number, budgetMs = Infinity): Promise<string[]> {
  const until = performance.now() + budgetMs;
  let retried = 0;
  // A login is how sessions are made here, not what is measured: one the emulator was too busy to answer in time
  // (10,000 in a row, in the bench's own process) is tried again, at most twice, and counted.
  const login = async (username: string): Promise<string> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await loginThroughEmulator(bffUrl, { username, password: PASSWORD });
      } catch (error) {
        if (attempt === 3) throw error;
        retried++;
      }
    }
  };
  const cookies = await mapLimit(users, concurrency, async (username) => (performance.now() < until ? login(username) : ''));
  if (retried > 0) say(`  ${retried} logins failed once and were tried again`);
  return cookies.filter(Boolean);
}

// ---------------------------------------------------------------------------------------------------- contestants
interface Contestant {
  key: string;
  label: string;
  url: string;
  cookieFile?: string;
  /** The process that answers (for `direct`, the upstream): its CPU time is read around each loaded slot. */
  pid: number;
}


interface ContestantResult {
  label: string;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  unloadedP50Ms: number;
  unloadedAddedMs: number;
  /** req/s over the direct run's, per round; the median of the rounds. */
  vsDirect: number;
  /** req/s over the plain proxy's, per round; the median of the rounds. */
  vsPlainProxy: number;
  /** p99 at 32 connections over the plain proxy's, per round; the median of the rounds. */
  p99VsPlainProxy: number;
  /** req/s over the ceiling's (bare node:http + undici), per round; the median of the rounds. */
  vsCeiling: number;
  /** p99 at 32 connections over the ceiling's, per round; the median of the rounds. */
  p99VsCeiling: number;
  /** Unloaded p50 minus the ceiling's, per round (ms); the median of the rounds. */
  unloadedVsCeilingMs: number;
  /**
   * CPU time of the answering process per request at 32 connections, in microseconds. Unlike req/s it does not
   * move with what else runs on the machine (time the VM was not scheduled is not CPU time).
   */
  cpuUsPerRequest: number;
  /** The plain proxy's CPU per request divided by this contestant's: > 1 is cheaper than the plain proxy. */
  cpuVsPlainProxy: number;
  errors: number;
  /**
   * Session reads Redis answered (HMGET, the one command of an API call whose session is not in the client-side
   * cache) per 1,000 requests at 32 connections, per round; the median of the rounds. Redis counts every client's:
   * only what the process under load sends moves while it is loaded, so it means something for the library's rows.
   */
  sessionReadsPer1000: number;
  rounds: Array<{ rps: number; p50Ms: number; p99Ms: number; unloadedP50Ms: number; cpuUsPerRequest: number; sessionReads: number; errors: number }>;
}

/** How many HMGET commands Redis has answered since it started (every client's): the session reads. */
async function sessionReadsSoFar(): Promise<number> {
  return Number(/^cmdstat_hmget:calls=(\d+)/m.exec(await redis.info('commandstats'))?.[1] ?? 0);
}

/** The slots every mode loads a contestant in: a warm-up, a loaded slot, an unloaded one (1 connection). */
type Loadable = { url: string; cookieFile?: string | undefined };
const slot = {
  warmUp: (c: Loadable) => runLoad({ url: c.url, connections: settings.connections, durationSec: settings.warmupSec, cookieFile: c.cookieFile, tool }),
  loaded: (c: Loadable) => runLoad({ url: c.url, connections: settings.connections, durationSec: settings.loadSec, cookieFile: c.cookieFile, tool }),
  unloaded: (c: Loadable) => runLoad({ url: c.url, connections: 1, durationSec: settings.unloadedSec, cookieFile: c.cookieFile, tool }),
};

async function measureContestants(contestants: Contestant[]): Promise<Record<string, ContestantResult>> {
  const raw = new Map<string, Array<{ loaded: LoadResult; unloaded: LoadResult; cpuUsPerRequest: number; sessionReads: number }>>(contestants.map((c) => [c.key, []]));
  say(`warm-up: ${settings.warmupSec} s each`);
  for (const c of contestants) {
    const warm = await slot.warmUp(c);
    if (warm.errors > 0) say(`  ${c.key}: ${warm.errors} errors during warm-up`);
  }
  for (let r = 0; r < settings.rounds; r++) {
    // Each round starts with another contestant, so that none always runs right after the same neighbour. The
    // loaded slots of a round run back to back (the unloaded ones after them), so that the contestants a ratio
    // compares ran within seconds of each other.
    const order = contestants.map((_, i) => contestants[(i + r) % contestants.length] as Contestant);
    const loadedRuns = new Map<string, { loaded: LoadResult; cpuUsPerRequest: number; sessionReads: number }>();
    for (const c of order) {
      const readsBefore = await sessionReadsSoFar();
      const cpuBefore = cpuMsOf(c.pid);
      const loaded = await slot.loaded(c);
      const cpuUsPerRequest = ((cpuMsOf(c.pid) - cpuBefore) * 1000) / Math.max(1, loaded.rps * settings.loadSec);
      loadedRuns.set(c.key, { loaded, cpuUsPerRequest, sessionReads: (await sessionReadsSoFar()) - readsBefore });
    }
    for (const c of order) {
      const { loaded, cpuUsPerRequest, sessionReads } = loadedRuns.get(c.key) as { loaded: LoadResult; cpuUsPerRequest: number; sessionReads: number };
      const unloaded = await slot.unloaded(c);
      raw.get(c.key)?.push({ loaded, unloaded, cpuUsPerRequest, sessionReads });
      say(`round ${r + 1}/${settings.rounds} ${c.key.padEnd(20)} ${Math.round(loaded.rps)} req/s  p50 ${loaded.p50Ms.toFixed(2)} ms  p99 ${loaded.p99Ms.toFixed(2)} ms  unloaded p50 ${unloaded.p50Ms.toFixed(3)} ms  CPU ${cpuUsPerRequest.toFixed(0)} us/req${loaded.errors + unloaded.errors ? `  ERRORS ${loaded.errors + unloaded.errors}` : ''}`);
    }
  }
  const medians = new Map(contestants.map((c) => {
    const runs = raw.get(c.key) ?? [];
    return [c.key, {
      rps: median(runs.map((x) => x.loaded.rps)),
      p50Ms: median(runs.map((x) => x.loaded.p50Ms)),
      p99Ms: median(runs.map((x) => x.loaded.p99Ms)),
      unloadedP50Ms: median(runs.map((x) => x.unloaded.p50Ms)),
      cpuUsPerRequest: median(runs.map((x) => x.cpuUsPerRequest)),
      sessionReadsPer1000: median(runs.map((x) => (x.sessionReads * 1000) / Math.max(1, x.loaded.requests))),
      errors: runs.reduce((n, x) => n + x.loaded.errors + x.unloaded.errors, 0),
      rounds: runs.map((x) => ({ rps: round(x.loaded.rps, 0), p50Ms: round(x.loaded.p50Ms), p99Ms: round(x.loaded.p99Ms), unloadedP50Ms: round(x.unloaded.p50Ms), cpuUsPerRequest: round(x.cpuUsPerRequest, 1), sessionReads: x.sessionReads, errors: x.loaded.errors + x.unloaded.errors })),
    }] as const;
  }));
  const direct = medians.get('direct');
  const plain = medians.get('plainProxy');
  const ceiling = medians.get('ceiling');
  // Ratios are taken round by round (the two ran within seconds of each other), then the median of the rounds:
  // on a shared VM the whole machine speeds up and slows down by tens of percent within minutes.
  type Run = { loaded: LoadResult; unloaded: LoadResult; cpuUsPerRequest: number; sessionReads: number };
  const perRoundOf = (key: string, base: string, compare: (mine: Run, theirs: Run) => number) => {
    const theirs = raw.get(base) ?? [];
    return median((raw.get(key) ?? []).map((x, r) => compare(x, theirs[r] as Run)));
  };
  const perRound = (key: string, base: string, value: (x: Run) => number) => perRoundOf(key, base, (a, b) => value(a) / value(b));
  const out: Record<string, ContestantResult> = {};
  for (const c of contestants) {
    const m = medians.get(c.key);
    if (!m || !direct || !plain || !ceiling) continue;
    out[c.key] = {
      label: c.label,
      rps: round(m.rps, 0),
      p50Ms: round(m.p50Ms),
      p99Ms: round(m.p99Ms),
      unloadedP50Ms: round(m.unloadedP50Ms),
      unloadedAddedMs: round(m.unloadedP50Ms - direct.unloadedP50Ms),
      vsDirect: round(perRound(c.key, 'direct', (x) => x.loaded.rps)),
      vsPlainProxy: round(perRound(c.key, 'plainProxy', (x) => x.loaded.rps)),
      p99VsPlainProxy: round(perRound(c.key, 'plainProxy', (x) => x.loaded.p99Ms)),
      vsCeiling: round(perRound(c.key, 'ceiling', (x) => x.loaded.rps)),
      p99VsCeiling: round(perRound(c.key, 'ceiling', (x) => x.loaded.p99Ms)),
      unloadedVsCeilingMs: round(perRoundOf(c.key, 'ceiling', (a, b) => a.unloaded.p50Ms - b.unloaded.p50Ms)),
      cpuUsPerRequest: round(m.cpuUsPerRequest, 1),
      cpuVsPlainProxy: round(1 / perRound(c.key, 'plainProxy', (x) => x.cpuUsPerRequest)),
      sessionReadsPer1000: round(m.sessionReadsPer1000, 1),
      errors: m.errors,
      rounds: m.rounds,
    };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- head to head
interface HeadToHead {
  /** What was loaded at the same time, each by its own load generator at `connections`. */
  contestants: [string, string];
  connections: number;
  /** Per repeat: req/s and CPU us per request of each while both ran, and the ratios (first over second). */
  repeats: Array<{ rps: [number, number]; cpuUsPerRequest: [number, number]; ratio: number; cpuRatio: number }>;
  /** Median of the repeats' req/s ratios (the first's over the second's). */
  ratio: number;
  /** Median of the repeats' CPU-per-request ratios, the second's over the first's: > 1 when the first costs less. */
  cpuRatio: number;
}

/**
 * Two contestants loaded at the same instant, their servers sharing core 1: the scheduler gives each busy process
 * its share of the core, so the req/s ratio is the inverse ratio of their CPU cost per request, measured under
 * exactly the same conditions. On a shared VM whose speed moves from second to second, this is the steadiest
 * comparison there is; the rounds above are the standard one, one contestant at a time.
 */
async function headToHead(first: Contestant, second: Contestant): Promise<HeadToHead> {
  const connections = settings.connections;
  const repeats: HeadToHead['repeats'] = [];
  for (let i = 0; i < settings.headToHeadRepeats; i++) {
    const cpuBefore = [cpuMsOf(first.pid), cpuMsOf(second.pid)];
    const [a, b] = await Promise.all([first, second].map((c) =>
      runLoad({ url: c.url, connections, durationSec: settings.loadSec, cookieFile: c.cookieFile, tool }))) as [LoadResult, LoadResult];
    const cpu = [first, second].map((c, j) => ((cpuMsOf(c.pid) - (cpuBefore[j] as number)) * 1000) / Math.max(1, [a, b][j]!.rps * settings.loadSec));
    const rps: [number, number] = [round(a.rps, 0), round(b.rps, 0)];
    const cpuUsPerRequest: [number, number] = [round(cpu[0] as number, 1), round(cpu[1] as number, 1)];
    const repeat = { rps, cpuUsPerRequest, ratio: round(rps[0] / rps[1]), cpuRatio: round(cpuUsPerRequest[1] / cpuUsPerRequest[0]) };
    repeats.push(repeat);
    say(`head to head ${i + 1}/${settings.headToHeadRepeats}: ${first.key} ${rps[0]} req/s ${cpuUsPerRequest[0]} us/req, ${second.key} ${rps[1]} req/s ${cpuUsPerRequest[1]} us/req; req/s ${repeat.ratio}x, CPU ${repeat.cpuRatio}x`);
  }
  return {
    contestants: [first.key, second.key],
    connections,
    repeats,
    ratio: round(median(repeats.map((r) => r.ratio))),
    cpuRatio: round(median(repeats.map((r) => r.cpuRatio))),
  };
}

// ---------------------------------------------------------------------------------------------------- storms
interface StormResult {
  requests: number;
  instances: number;
  /** Latency added to every answer of the emulator's token endpoint (0: loopback, as fast as it gets). */
  idpDelayMs: number;
  /** Exchanges the emulator answered, the most seen in one repeat (1 is right). */
  exchanges: number;
  /** Median over the repeats: first request sent -> last answer received. */
  msToAllAnswered: number;
  /** The exchange's own latency as the BFF measured it (the refresh event's durationMs), median. */
  exchangeMs: number;
  allAnswered200: boolean;
  /** The control: the same burst with a fresh token (no exchange), median. */
  msNoExpiry: number;
  /** msToAllAnswered - msNoExpiry: what the expiry added. */
  msAddedByExpiry: number;
  repeats: Array<{ exchanges: number; msToAllAnswered: number; msNoExpiry: number; exchangeMs: number[]; statuses: Record<string, number> }>;
}

/**
 * The emulator answers on loopback in a few ms; a real tenant is a WAN round trip away (tens to hundreds of ms).
 * Storms run both ways: as fast as the exchange gets, and with the token endpoint's answers delayed by 100 ms.
 */
const STORM_IDP_DELAYS_MS = [0, 100];

async function runStorms(upstreamUrl: string, stormPorts: number[]): Promise<StormResult[]> {
  const prefix = `${PREFIX}storm:`;
  const instances = await Promise.all(stormPorts.map((port, i) =>
    start(`storm-bff-${i}`, 'bench/servers/lib-bff.ts', { ...libraryEnv(port, upstreamUrl, prefix), BENCH_ADMIN: '1' })));
  const admin = (auth0 as LocalAuth0).admin;
  const post = (server: ServerProcess, path: string) => fetch(`${server.url}${path}`, { method: 'POST' }).then((r) => r.json() as Promise<Record<string, unknown>>);
  const results: StormResult[] = [];
  let userIndex = 0;
  for (const idpDelayMs of STORM_IDP_DELAYS_MS) for (const instanceCount of [1, 2]) {
    for (const requests of settings.storms) {
      const used = instances.slice(0, instanceCount);
      const cookie = await loginThroughEmulator((instances[0] as ServerProcess).url, { username: `storm${userIndex++}`, password: PASSWORD });
      await expectOk(`${(instances[0] as ServerProcess).url}/api/items`, cookie);
      const perInstance = used.map((_, i) => Math.ceil((requests - i) / instanceCount));
      const pools = used.map((s, i) => new Pool(s.url, { connections: Math.max(1, perInstance[i] as number), pipelining: 1 }));
      const repeats: StormResult['repeats'] = [];
      for (let rep = 0; rep < settings.stormRepeats; rep++) {
        // Open every connection first, so the storm measures the BFF and not TCP handshakes.
        await Promise.all(pools.flatMap((pool, i) => Array.from({ length: perInstance[i] as number }, async () => {
          const res = await pool.request({ path: '/__bench/ping', method: 'GET' });
          await res.body.dump();
        })));
        const burst = async () => {
          const statuses: Record<string, number> = {};
          const t0 = performance.now();
          await Promise.all(Array.from({ length: requests }, async (_, i) => {
            const res = await (pools[i % instanceCount] as Pool).request({ path: '/api/items', method: 'GET', headers: { cookie, 'x-csrf': '1' } });
            await res.body.dump();
            statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
          }));
          return { ms: performance.now() - t0, statuses };
        };
        // The control: the same burst with a fresh token (what the requests cost without any exchange).
        admin.resetCounts();
        const control = await burst();
        const controlExchanges = admin.counts().token.refresh_token;
        if (controlExchanges) throw new Error('an exchange happened with a fresh token');
        // Every instance's clock jumps past the token's expiry (all of them: any may serve the session).
        for (const s of instances) await post(s, `/__bench/clock?advanceMs=${(ACCESS_TOKEN_TTL + 60) * 1000}`);
        for (const s of instances) await post(s, '/__bench/refreshes');
        admin.resetCounts();
        if (idpDelayMs > 0) admin.failTokenEndpoint({ delayMs: idpDelayMs });
        const { ms, statuses } = await burst().finally(() => admin.reset());
        const token = admin.counts().token.refresh_token;
        const exchanges = (token?.ok ?? 0) + (token?.error ?? 0);
        const exchangeMs = (await Promise.all(instances.map((s) => post(s, '/__bench/refreshes')))).flatMap((r) => r.durationsMs as number[]);
        for (const [status, n] of Object.entries(control.statuses)) statuses[`control ${status}`] = n;
        repeats.push({ exchanges, msToAllAnswered: round(ms, 1), msNoExpiry: round(control.ms, 1), exchangeMs, statuses });
      }
      await Promise.all(pools.map((p) => p.close()));
      const result: StormResult = {
        requests,
        instances: instanceCount,
        idpDelayMs,
        exchanges: Math.max(...repeats.map((r) => r.exchanges)),
        msToAllAnswered: round(median(repeats.map((r) => r.msToAllAnswered)), 1),
        msNoExpiry: round(median(repeats.map((r) => r.msNoExpiry)), 1),
        msAddedByExpiry: round(median(repeats.map((r) => r.msToAllAnswered - r.msNoExpiry)), 1),
        exchangeMs: round(median(repeats.flatMap((r) => r.exchangeMs)), 1),
        allAnswered200: repeats.every((r) => Object.keys(r.statuses).every((s) => s.endsWith('200'))),
        repeats,
      };
      say(`storm ${String(requests).padStart(3)} requests x ${instanceCount} instance(s)${idpDelayMs ? `, Auth0 +${idpDelayMs} ms` : ''}: ${result.exchanges} exchange(s), all answered in ${result.msToAllAnswered} ms (${result.msNoExpiry} ms with a fresh token; exchange ${result.exchangeMs} ms)${result.allAnswered200 ? '' : `  NOT ALL 200: ${JSON.stringify(repeats.map((r) => r.statuses))}`}`);
      results.push(result);
    }
  }
  await Promise.all(instances.map((s) => s.stop()));
  return results;
}

// ---------------------------------------------------------------------------------------------- session end
/** Two BFF instances sharing Redis (on the storm ports, free again): sockets of one session on both, one logout. */
async function runSessionEnd(upstreamUrl: string, ports: number[]): Promise<WsSessionEnd> {
  const prefix = `${PREFIX}wsend:`;
  const instances = await Promise.all(ports.slice(0, 2).map((port, i) => start(`session-end-bff-${i}`, 'bench/servers/lib-bff.ts', libraryEnv(port, upstreamUrl, prefix))));
  try {
    const urls = instances.map((s) => s.url) as [string, string];
    return await measureSessionEnd(urls, (r) => loginThroughEmulator(urls[0], { username: `wsend${r}`, password: PASSWORD }), { repeats: wsSettings.sessionEndRepeats, sockets: wsSettings.sessionEndSockets }, say);
  } finally {
    await Promise.all(instances.map((s) => s.stop()));
  }
}

// ---------------------------------------------------------------------------------------------------- memory
interface MemoryResult {
  sessions: number;
  redisBytesPerSession: number;
  redisKeysPerSession: number;
  redisBytesByKind: Record<string, number>;
  naiveBffRedisBytesPerSession: number;
  heapBaselineBytes: number;
  heapLiveBytes: number;
  heapJustAfterEndBytes: number;
  heapAfterEndBytes: number;
  heapLiveGrowthBytes: number;
  heapGrowthBytes: number;
  redisKeysLeftAfterEnd: number;
  loginSeconds: number;
}

async function redisUsage(keys: string[]): Promise<Map<string, number>> {
  const usage = new Map<string, number>();
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000);
    const sizes = await Promise.all(batch.map((k) => redis.sendCommand(['MEMORY', 'USAGE', k, 'SAMPLES', '0']) as Promise<number | null>));
    batch.forEach((k, j) => usage.set(k, Number(sizes[j] ?? 0)));
  }
  return usage;
}

async function measureMemory(upstreamUrl: string, port: number, naivePrefix: string): Promise<MemoryResult> {
  const prefix = `${PREFIX}mem:`;
  const bff = await start('memory-bff', 'bench/servers/lib-bff.ts', { ...libraryEnv(port, upstreamUrl, prefix), BENCH_ADMIN: '1' }, { nodeArgs: ['--expose-gc'] });
  // After GC, compiled code left out (as the soak measures it; see lib-bff.ts): code grows as functions get hot, up
  // to the program's size, which is not what sessions leave behind (it was ~1 MiB of a 3,000-session run's growth).
  const heap = async () => ((await (await fetch(`${bff.url}/__bench/heap`)).json()) as { heapUsedWithoutCode: number }).heapUsedWithoutCode;
  const snapshotDir = process.env.BENCH_HEAP_SNAPSHOTS;
  const snapshot = async (label: string) => {
    if (snapshotDir === undefined) return;
    const { file } = (await (await fetch(`${bff.url}/__bench/heap-snapshot?dir=${encodeURIComponent(snapshotDir)}`, { method: 'POST' })).json()) as { file: string };
    say(`memory: heap snapshot (${label}) ${file}`);
  };
  const api = (cookie: string) => fetch(`${bff.url}/api/items`, { headers: { cookie, 'x-csrf': '1' } }).then(async (r) => {
    await r.arrayBuffer();
    if (r.status !== 200) throw new Error(`memory BFF answered ${r.status}`);
  });
  const logout = async (cookie: string) => {
    const user = await fetch(`${bff.url}/auth/user`, { headers: { cookie } });
    const { logoutUrl } = (await user.json()) as { logoutUrl: string };
    const res = await fetch(`${bff.url}${logoutUrl}`, { headers: { cookie }, redirect: 'manual' });
    await res.arrayBuffer();
    if (res.status !== 302) throw new Error(`logout answered ${res.status}`);
  };

  // Warm every path (login, API, user, logout) before the baseline, twice, so that JIT code and pools are not
  // counted as growth (one short warm-up left ~2 MB of freshly optimised code to be counted).
  const warmCount = mode === 'smoke' ? 20 : 200;
  for (let cycle = 0; cycle < 2; cycle++) {
    const warm = await loginMany(bff.url, Array.from({ length: warmCount }, (_, i) => `w${i}`), 16);
    await mapLimit(warm, 16, async (c) => { for (let i = 0; i < 3; i++) await api(c); });
    await mapLimit(warm, 16, logout);
  }
  // The baseline is taken after the same wait as the measure after the sessions end, so that what requests leave
  // to timers has run its course in both: node-redis gives every command a 5 s AbortSignal.timeout whose timer
  // stays after the command is done, and a process remembers ended sessions for a minute. (Taken right after the
  // warm-up, the baseline was about 0.8 MiB higher, and the growth read that much lower.)
  await new Promise((r) => setTimeout(r, settings.memorySettleMs));
  const heapBaselineBytes = await heap();
  await snapshot('baseline');

  say(`memory: logging in ${settings.memorySessions} sessions (at most ${settings.memoryLoginBudgetMs / 1000} s)`);
  const t0 = performance.now();
  const users = Array.from({ length: settings.memorySessions }, (_, i) => `m${i}`);
  const cookies = await loginMany(bff.url, users, 16, settings.memoryLoginBudgetMs);
  const loginSeconds = (performance.now() - t0) / 1000;
  await mapLimit(cookies, 32, api);
  const heapLiveBytes = await heap();
  await snapshot('sessions live');

  const keys = await scanKeys(`${prefix}*`);
  const usage = await redisUsage(keys);
  const byKind: Record<string, number> = {};
  for (const [key, bytes] of usage) {
    const kind = key.slice(prefix.length).split(':')[0] as string;
    byKind[kind] = (byKind[kind] ?? 0) + bytes;
  }
  const totalBytes = [...usage.values()].reduce((a, b) => a + b, 0);
  say(`memory: ${cookies.length} sessions in ${loginSeconds.toFixed(1)} s, ${keys.length} keys, ${Math.round(totalBytes / cookies.length)} B per session in Redis`);

  await mapLimit(cookies, 16, logout);
  const heapJustAfterEndBytes = await heap();
  // Whatever the last requests left to timers (keep-alive sockets, Redis deadlines) is given time to go before the
  // measure, and in full runs more than the minute for which a process remembers ended sessions (src/realtime:
  // a WebSocket whose handshake finishes after its session's end is refused).
  await new Promise((r) => setTimeout(r, settings.memorySettleMs));
  const heapAfterEndBytes = await heap();
  await snapshot('after the sessions ended');
  const left = await scanKeys(`${prefix}*`);
  await deleteKeys(left);
  await bff.stop();

  const naiveKeys = await scanKeys(`${naivePrefix}*`);
  const naiveUsage = await redisUsage(naiveKeys);
  const naiveBytes = [...naiveUsage.values()].reduce((a, b) => a + b, 0) / Math.max(1, naiveKeys.length);

  const n = Math.max(1, cookies.length);
  return {
    sessions: cookies.length,
    redisBytesPerSession: Math.round(totalBytes / n),
    redisKeysPerSession: round(keys.length / n, 2),
    redisBytesByKind: Object.fromEntries(Object.entries(byKind).map(([k, v]) => [k, Math.round(v / n)])),
    naiveBffRedisBytesPerSession: Math.round(naiveBytes),
    heapBaselineBytes,
    heapLiveBytes,
    heapJustAfterEndBytes,
    heapAfterEndBytes,
    heapLiveGrowthBytes: heapLiveBytes - heapBaselineBytes,
    heapGrowthBytes: heapAfterEndBytes - heapBaselineBytes,
    redisKeysLeftAfterEnd: left.length,
    loginSeconds: round(loginSeconds, 1),
  };
}

// ---------------------------------------------------------------------------------------------------- report
function machine() {
  return {
    nproc: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    os: `${process.platform} ${release()}`,
    pinned: canPin,
    loadGenerator: tool,
    // How the servers ran: the JavaScript tsc compiled (as a deployment runs it), or their TypeScript through tsx.
    runtime: runtimeKind,
    // The node options every server ran with (npm start's, or BENCH_NODE_ARGS).
    nodeArgs: benchNodeArgs,
    // The library measured is the working tree: its commit, and whether src/ had changes on top.
    git: gitAtStart,
    // Other work on the machine skews the numbers: the 1-minute load average when the run started and ended.
    loadAverage: { start: loadAtStart, end: round(loadavg()[0] as number, 2) },
  };
}

function contestantRows(c: Record<string, ContestantResult>): string[][] {
  const rows = [['contestant', 'req/s', 'p50 ms', 'p99 ms', 'unloaded p50 ms', 'added vs direct ms', 'x direct', 'x plain proxy', 'x ceiling', 'p99 x ceiling', 'CPU us/req', 'CPU: plain proxy / this']];
  for (const r of Object.values(c)) {
    rows.push([r.label, String(r.rps), r.p50Ms.toFixed(2), r.p99Ms.toFixed(2), r.unloadedP50Ms.toFixed(3), r.unloadedAddedMs.toFixed(3), r.vsDirect.toFixed(2), r.vsPlainProxy.toFixed(2), r.vsCeiling.toFixed(2), r.p99VsCeiling.toFixed(2), r.cpuUsPerRequest.toFixed(0), r.cpuVsPlainProxy.toFixed(2)]);
  }
  return rows;
}

/**
 * The library's session reads from Redis while it was loaded, round by round: with the client-side cache, an API
 * call reads its session only when node-redis no longer holds it (its ttl ran out, Redis invalidated it), so this
 * is how many of the rounds' calls waited for Redis (BENCHMARKS.md, "Rounds over 1,000 sessions").
 */
function sessionReadRows(c: Record<string, ContestantResult>): string[][] {
  const library = Object.entries(c).filter(([key]) => key.startsWith('library'));
  const rounds = Math.max(0, ...library.map(([, r]) => r.rounds.length));
  return [['session reads sent to Redis (HMGET) while loaded', ...Array.from({ length: rounds }, (_, i) => `#${i + 1}`), 'per 1,000 requests (median)'],
    ...library.map(([, r]) => [r.label, ...r.rounds.map((x) => String(x.sessionReads)), r.sessionReadsPer1000.toFixed(1)])];
}

function contestantByKey(contestants: Contestant[], key: string): Contestant {
  return contestants.find((c) => c.key === key) as Contestant;
}

function headToHeadRows(h: HeadToHead): string[][] {
  const [a, b] = h.contestants;
  return [[`head to head, ${h.connections} connections each, at the same time`, ...h.repeats.map((_, i) => `#${i + 1}`), 'median'],
    [`req/s, ${a} / ${b}`, ...h.repeats.map((r) => r.ratio.toFixed(2)), h.ratio.toFixed(2)],
    [`CPU us per request, ${b} / ${a}`, ...h.repeats.map((r) => r.cpuRatio.toFixed(2)), h.cpuRatio.toFixed(2)]];
}

function stormRows(storms: StormResult[]): string[][] {
  return [['storm (concurrent requests on an expired token)', 'exchanges', 'ms to all answered', 'same burst, fresh token ms', 'added by expiry ms', 'exchange ms', 'all 200'],
    ...storms.map((s) => [`${s.requests} requests, ${s.instances} instance(s)${s.idpDelayMs ? `, Auth0 +${s.idpDelayMs} ms` : ''}`, String(s.exchanges), s.msToAllAnswered.toFixed(1), s.msNoExpiry.toFixed(1), s.msAddedByExpiry.toFixed(1), s.exchangeMs.toFixed(1), s.allAnswered200 ? 'yes' : 'NO'])];
}

function memoryRows(m: MemoryResult): string[][] {
  const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
  return [['memory', 'value'],
    ['sessions measured', String(m.sessions)],
    ['Redis bytes per session (this library)', `${m.redisBytesPerSession} B (${m.redisKeysPerSession} keys: ${Object.entries(m.redisBytesByKind).map(([k, v]) => `${k} ${v} B`).join(', ')})`],
    ['Redis bytes per session (naive BFF)', `${m.naiveBffRedisBytesPerSession} B`],
    ['BFF heap growth with the sessions live (after GC, compiled code left out)', kib(m.heapLiveGrowthBytes)],
    ['BFF heap growth right after they ended', kib(m.heapJustAfterEndBytes - m.heapBaselineBytes)],
    [`BFF heap growth after they ended, ${settings.memorySettleMs / 1000} s later`, kib(m.heapGrowthBytes)],
    ['Redis keys left after they ended', String(m.redisKeysLeftAfterEnd)]];
}

function targets(c: Record<string, ContestantResult>, near: NearCeiling, h2h: HeadToHead, storms: StormResult[], m: MemoryResult, end: WsSessionEnd) {
  const lib = c.library as ContestantResult;
  const biggest = Math.max(...settings.storms);
  const big = storms.filter((s) => s.requests === biggest && s.idpDelayMs === 0);
  const bigFar = storms.filter((s) => s.requests === biggest && s.idpDelayMs > 0);
  return [
    { target: 'library throughput >= 1.3x plain proxy (one at a time, per-round median)', value: lib.vsPlainProxy, pass: lib.vsPlainProxy >= 1.3 },
    { target: '  ... head to head: CPU per request, plain proxy / library, measured at the same time', value: h2h.cpuRatio, pass: h2h.cpuRatio >= 1.3 },
    { target: 'unloaded added latency over direct <= 0.6 ms (p50)', value: lib.unloadedAddedMs, pass: lib.unloadedAddedMs <= 0.6 },
    { target: 'p99 at 32 connections <= 1.2x plain proxy', value: lib.p99VsPlainProxy, pass: lib.p99VsPlainProxy <= 1.2 },
    ...ceilingTargets(near),
    { target: 'exactly 1 exchange per expiry in every storm', value: storms.map((s) => s.exchanges).join(','), pass: storms.every((s) => s.exchanges === 1 && s.allAnswered200) },
    { target: `${biggest}-request storm answered within 2x the exchange latency (Auth0 on loopback)`, value: big.map((s) => `${s.instances}i: ${s.msToAllAnswered}/${s.exchangeMs} ms`).join('; '), pass: big.every((s) => s.msToAllAnswered <= 2 * s.exchangeMs) },
    { target: `  ... counting only what the expiry added (storm - same burst with a fresh token)`, value: big.map((s) => `${s.instances}i: ${s.msAddedByExpiry}/${s.exchangeMs} ms`).join('; '), pass: big.every((s) => s.msAddedByExpiry <= 2 * s.exchangeMs) },
    ...bigFar.length === 0 ? [] : [{ target: `${biggest}-request storm answered within 2x the exchange latency (Auth0 +${bigFar[0]?.idpDelayMs} ms)`, value: bigFar.map((s) => `${s.instances}i: ${s.msToAllAnswered}/${s.exchangeMs} ms`).join('; '), pass: bigFar.every((s) => s.msToAllAnswered <= 2 * s.exchangeMs) }],
    { target: 'every WebSocket of a session closed (4401) within 1 s of its logout, on every instance', value: `${end.sameInstance.maxMs} / ${end.otherInstance.maxMs} ms`, pass: end.allClosedWith4401 && Math.max(end.sameInstance.maxMs, end.otherInstance.maxMs) < 1_000 },
    { target: '<= 4 KB Redis per session', value: m.redisBytesPerSession, pass: m.redisBytesPerSession <= 4096 },
    { target: `no heap growth after ${m.sessions} sessions end (< 1 MiB)`, value: m.heapGrowthBytes, pass: m.heapGrowthBytes < 1024 * 1024 },
  ];
}

/**
 * The comparisons the targets against the ceiling are read from, each in adjacent slots (bench/lib/paired.ts): the
 * library against the ceiling and, when the run logs in more than one session, the library's rounds over all its
 * sessions against its one-session rounds. Run after the rounds, as many pairs as there are rounds.
 */
interface NearCeiling {
  ceiling: PairedResult;
  sessions?: PairedResult;
  /** The library against the same example in a process of its own (one user logged in, or BENCH_FRESH_LOGINS; not a target). */
  served?: PairedResult;
}

async function measureNearCeiling(contestants: Contestant[], fresh?: Contestant): Promise<NearCeiling> {
  const library = contestantByKey(contestants, 'library');
  say(`adjacent slots: library and ceiling, ${settings.rounds} pairs`);
  const ceiling = await measurePaired<Contestant>([library, contestantByKey(contestants, 'ceiling')], settings.rounds, slot, say);
  if (settings.sessions <= 1) return { ceiling };
  say(`adjacent slots: library over ${settings.sessions} sessions and over 1, ${settings.rounds} pairs`);
  const sessions = await measurePaired<Contestant>([contestantByKey(contestants, 'library1000Sessions'), library], settings.rounds, slot, say);
  if (!fresh) return { ceiling, sessions };
  // Warmed up as every contestant is before the rounds.
  await slot.warmUp(fresh);
  say(`adjacent slots: library after ${settings.sessions} logins and a process with ${freshLoginsLabel()} logged in, ${settings.rounds} pairs`);
  return { ceiling, sessions, served: await measurePaired<Contestant>([library, fresh], settings.rounds, slot, say) };
}

/** How close the library comes to the ceiling (a bare node:http + undici proxy): printed by the full and quick modes. */
function ceilingTargets(near: NearCeiling): Array<{ target: string; value: number; pass: boolean }> {
  const { ceiling, sessions } = near;
  const name = `library${useExample ? ' (example)' : ''}`;
  const how = `adjacent slots, median of ${ceiling.pairs.length} pairs`;
  const out = [
    { target: `${name} req/s >= 0.9x ceiling (one at a time, ${how})`, value: ceiling.rpsRatio, pass: ceiling.rpsRatio >= 0.9 },
    { target: `${name} p99 at ${settings.connections} connections <= 1.3x ceiling (${how})`, value: ceiling.p99Ratio, pass: ceiling.p99Ratio <= 1.3 },
    { target: `${name} unloaded latency (p50) within 0.05 ms of the ceiling (${how})`, value: ceiling.unloadedDiffMs, pass: ceiling.unloadedDiffMs <= 0.05 },
  ];
  if (sessions !== undefined) {
    out.push({ target: `rounds over ${settings.sessions.toLocaleString('en-US')} sessions within 10 % of 1-session rounds (req/s, ${how})`, value: sessions.rpsRatio, pass: Math.abs(sessions.rpsRatio - 1) <= 0.1 });
  }
  return out;
}

/** Who is logged in to the process the library is paired with last (BENCH_FRESH_LOGINS). */
function freshLoginsLabel(): string {
  return freshLogins === 1 ? '1 user' : `${freshLogins.toLocaleString('en-US')} users (no rounds)`;
}

/** The adjacent slots' tables, pair by pair. */
function nearCeilingRows(near: NearCeiling): string[][][] {
  return [pairedRows(near.ceiling, 'library and ceiling in adjacent slots'),
    ...near.sessions ? [pairedRows(near.sessions, `library over ${settings.sessions.toLocaleString('en-US')} sessions and over 1, in adjacent slots`)] : [],
    ...near.served ? [pairedRows(near.served, `library (${settings.sessions.toLocaleString('en-US')} logins served) and the example with ${freshLoginsLabel()} logged in, in adjacent slots (not a target)`)] : []];
}

/**
 * The example against the ceiling sending what it sends in a process that also runs an app, round by round as the
 * ceiling ratios: how much of the distance to the ceiling is the library's own work. Not a target of its own.
 */
function againstAppCeiling(c: Record<string, ContestantResult>): { vsAppCeiling: number; p99VsAppCeiling: number } {
  const lib = c.library as ContestantResult;
  const app = c.appCeiling as ContestantResult;
  const ratio = (value: (r: ContestantResult['rounds'][number]) => number) => round(median(lib.rounds.map((r, i) => value(r) / value(app.rounds[i]!))));
  return { vsAppCeiling: ratio((r) => r.rps), p99VsAppCeiling: ratio((r) => r.p99Ms) };
}

function inAnAppRows(x: { vsAppCeiling: number; p99VsAppCeiling: number }): string[][] {
  const name = `library${useExample ? ' (example)' : ''}`;
  return [[`${name} against the ceiling sending what it sends in an app's process (per-round medians; not a target)`, 'value'],
    ['req/s, library / that ceiling', x.vsAppCeiling.toFixed(3)],
    ['p99 at 32 connections, library / that ceiling', x.p99VsAppCeiling.toFixed(3)]];
}

function targetRows(checked: Array<{ target: string; value: unknown; pass: boolean }>): string[][] {
  return [['target', 'value', 'met'], ...checked.map((t) => [t.target, String(t.value), t.pass ? 'yes' : 'NO'])];
}

function updateBenchmarksMd(report: string): void {
  const file = join(ROOT, 'BENCHMARKS.md');
  const begin = '<!-- bench:latest:begin -->';
  const end = '<!-- bench:latest:end -->';
  const text = existsSync(file) ? readFileSync(file, 'utf8') : `# Benchmarks\n\n${begin}\n${end}\n`;
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  if (from < 0 || to < from) {
    say('BENCHMARKS.md has no bench:latest markers; not updated');
    return;
  }
  writeFileSync(file, `${text.slice(0, from + begin.length)}\n${report}\n${text.slice(to)}`);
}

// ---------------------------------------------------------------------------------------------------- main
async function main(): Promise<void> {
  mkdirSync(resultsDir, { recursive: true });
  await redis.connect();
  if (runtimeKind === 'compiled') {
    const t0 = performance.now();
    runtime = compile(ROOT, join(compiledDir, 'working-tree'));
    say(`compiled src/, example/ and bench/servers/ with tsc in ${((performance.now() - t0) / 1000).toFixed(1)} s; the servers run that JavaScript`);
  }
  say(`${mode} run ${runId}: load generator ${tool}${canPin ? ', servers on core 1, load on core 0' : ', NOT pinned (taskset or a second core missing)'}; library server ${libraryScript}; every server with node ${benchNodeArgs.length > 0 ? benchNodeArgs.join(' ') : '(no options)'}; Redis ${REDIS_URL} prefix ${PREFIX}; logs in ${logDir}`);

  if (withOtel && !useExample) throw new Error('BENCH_OTEL needs the example BFF (example/start.ts), which starts the OpenTelemetry SDK');
  const ports = { upstream: await freePort(), ceiling: await freePort(), plain: await freePort(), plainDefault: await freePort(), naive: await freePort(), library: await freePort(), libraryUse: await freePort(), libraryUseOptions: await freePort(), libraryDpop: await freePort(), libraryFresh: await freePort(), libraryOtel: await freePort(), otelMetrics: await freePort(), memory: await freePort(), storm: [await freePort(), await freePort()], spread: [] as number[], spreadCeilings: [] as number[], spreadApps: [] as number[], ceilingSame: await freePort(), ceilingApp: await freePort() };
  for (let i = 0; mode === 'spread' && i < spreadProcesses; i++) ports.spread.push(await freePort()), ports.spreadCeilings.push(await freePort()), ports.spreadApps.push(await freePort());
  const bffPorts = [ports.library, ports.libraryUse, ports.libraryUseOptions, ports.libraryDpop, ports.libraryFresh, ports.libraryOtel, ports.memory, ...ports.storm, ...ports.spread];
  const userCount = Math.max(settings.sessions, instructionSettings.sessions, freshLogins);
  auth0 = await startLocalAuth0({
    clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: bffPorts.map((p) => `http://127.0.0.1:${p}/auth/callback`), postLogoutRedirectUris: bffPorts.map((p) => `http://127.0.0.1:${p}/`) }],
    users: [
      ...Array.from({ length: userCount }, (_, i) => ({ username: `u${i}`, password: PASSWORD })),
      ...Array.from({ length: settings.memorySessions }, (_, i) => ({ username: `m${i}`, password: PASSWORD })),
      ...Array.from({ length: 200 }, (_, i) => ({ username: `w${i}`, password: PASSWORD })),
      ...Array.from({ length: 20 }, (_, i) => ({ username: `storm${i}`, password: PASSWORD })),
      ...Array.from({ length: wsSettings.sessionEndRepeats }, (_, i) => ({ username: `wsend${i}`, password: PASSWORD })),
    ],
    apis: [{ audience: AUDIENCE }],
    accessTokenTtl: ACCESS_TOKEN_TTL,
  });

  const upstream = await start('upstream', 'bench/servers/upstream.ts', { PORT: String(ports.upstream) });
  if (mode === 'profile') return profile(upstream, ports.library);
  if (mode === 'ab') return compareWithRef(upstream, ports);
  if (mode === 'gc') return compareGc(upstream, ports);
  if (mode === 'spread') return compareSpread(upstream, ports);
  if (mode === 'instructions') return compareInstructions(upstream, ports);
  if (mode === 'allocations') return compareAllocations(upstream, ports);
  if (mode === 'memory') {
    const memory = await measureMemory(upstream.url, ports.memory, `${PREFIX}naive:`);
    process.stdout.write(`\n${table(memoryRows(memory))}\n`);
    return;
  }

  const naivePrefix = `${PREFIX}naive:`;
  // The same library with DPoP on: a proof signed per API call (the upstream does not check it: only the BFF's cost counts).
  const dpopKey = JSON.stringify(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }));
  // The app.use(bff) form beside the example's entry, in quick and full runs (the smoke stays short).
  const withUseForm = mode !== 'smoke';
  const [ceiling, plain, plainDefault, naive, library, libraryDpop, libraryUse, libraryUseOptions] = await Promise.all([
    start('ceiling', 'bench/servers/ceiling.ts', { PORT: String(ports.ceiling), UPSTREAM_API_URL: upstream.url }),
    start('plain-proxy', 'bench/servers/plain-proxy.ts', { PORT: String(ports.plain), UPSTREAM_API_URL: upstream.url }),
    start('plain-proxy-default', 'bench/servers/plain-proxy.ts', { PORT: String(ports.plainDefault), UPSTREAM_API_URL: upstream.url, HPM_AGENT: 'default' }),
    start('naive-bff', 'bench/servers/naive-bff.ts', { PORT: String(ports.naive), UPSTREAM_API_URL: upstream.url, REDIS_URL, SESSION_SECRET, BENCH_REDIS_PREFIX: naivePrefix }),
    start('library', libraryScript, libraryEnv(ports.library, upstream.url, `${PREFIX}lib:`)),
    start('library-dpop', libraryScript, { ...libraryEnv(ports.libraryDpop, upstream.url, `${PREFIX}dpop:`), DPOP_PRIVATE_KEY: dpopKey }),
    withUseForm ? start('library-use', 'bench/servers/lib-bff.ts', { ...libraryEnv(ports.libraryUse, upstream.url, `${PREFIX}use:`), BENCH_ENTRY: 'use' }) : undefined,
    // The same in a server made with serverOptions(app), as the README advises for app.use(bff) on Node 20 and 22.
    withUseForm ? start('library-use-options', 'bench/servers/lib-bff.ts', { ...libraryEnv(ports.libraryUseOptions, upstream.url, `${PREFIX}use-options:`), BENCH_ENTRY: 'use', BENCH_SERVER_OPTIONS: '1' }) : undefined,
  ]) as [ServerProcess, ServerProcess, ServerProcess, ServerProcess, ServerProcess, ServerProcess, ServerProcess | undefined, ServerProcess | undefined];

  // Sessions: one for the naive BFF, one and then 1,000 for the library (through the emulator).
  const naiveLogin = await fetch(`${naive.url}/login`);
  await naiveLogin.arrayBuffer();
  const naiveCookie = (naiveLogin.headers.getSetCookie()[0] ?? '').split(';')[0] as string;
  await expectOk(`${naive.url}/api/items`, naiveCookie);
  await expectOk(`${plain.url}/api/items`);
  await expectOk(`${plainDefault.url}/api/items`);
  await expectOk(`${ceiling.url}/api/items`);
  const upstreamBody = await fetch(`${upstream.url}/items`).then((r) => r.arrayBuffer());
  say(`logging in ${settings.sessions} sessions to the library`);
  const t0 = performance.now();
  const libCookies = await loginMany(library.url, Array.from({ length: settings.sessions }, (_, i) => `u${i}`), 16);
  say(`  ${libCookies.length} logins in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  await mapLimit(libCookies, 16, (c) => expectOk(`${library.url}/api/items`, c));
  await renewOnce(library.url, libCookies[0]);
  // With more than one session, the same example in a process of its own with one user logged in, which serves
  // nothing else: paired with the library after the rounds, it shows what the logins and the rounds over them cost
  // the library's API calls. BENCH_FRESH_LOGINS=N logs N users in to it instead, each calling the API once, as the
  // library's were before the rounds: then the pairs show what the rounds alone cost.
  const fresh = settings.sessions > 1 ? await start('library-fresh', libraryScript, libraryEnv(ports.libraryFresh, upstream.url, `${PREFIX}fresh:`)) : undefined;
  const freshCookies = fresh ? await loginMany(fresh.url, Array.from({ length: freshLogins }, (_, i) => `u${i}`), Math.min(16, freshLogins)) : [];
  if (fresh) await mapLimit(freshCookies, 16, (c) => expectOk(`${fresh.url}/api/items`, c));
  const [freshCookie] = freshCookies;
  if (fresh) await renewOnce(fresh.url, freshCookie);
  // The ceiling sending what the example sends (the token's size is that of the call just made), in a process that
  // also runs an app: where a proxy that is part of an app stands before any of the library's work (BENCHMARKS.md,
  // "A proxy in an app's process").
  const appCeiling = await start('app-ceiling', 'bench/servers/ceiling.ts', inAnAppsProcess(await sameSendingCeiling(upstream, 0), ports.ceilingApp).env);
  // Its app called as many times as the example was logged in to: what a process has served costs its proxied
  // calls, 7-11 % more instructions after 1,000 requests (BENCHMARKS.md, "What a process has served costs its API calls").
  await visitApp(appCeiling, settings.sessions > 1 ? settings.sessions : 0);
  await expectOk(`${appCeiling.url}/api/items`);
  const [dpopCookie] = await loginMany(libraryDpop.url, ['u0'], 1);
  await expectOk(`${libraryDpop.url}/api/items`, dpopCookie);
  await renewOnce(libraryDpop.url, dpopCookie);
  const [useCookie] = libraryUse ? await loginMany(libraryUse.url, ['u0'], 1) : [];
  if (libraryUse) await renewOnce(libraryUse.url, useCookie);
  const [useOptionsCookie] = libraryUseOptions ? await loginMany(libraryUseOptions.url, ['u0'], 1) : [];
  if (libraryUseOptions) await renewOnce(libraryUseOptions.url, useOptionsCookie);
  const libraryLabel = useExample ? 'this library (example BFF, Redis)' : 'this library (Redis)';

  const libraryCookieFile = writeCookieFile('library', libCookies.slice(0, 1));
  const contestants: Contestant[] = [
    ...references(upstream, ceiling, plain),
    // Sent the example's cookie, as the example is.
    { key: 'appCeiling', label: 'ceiling sending what the example sends, in a process that also runs an app', url: `${appCeiling.url}/api/items`, cookieFile: libraryCookieFile, pid: appCeiling.pid },
    { key: 'plainProxyDefaults', label: 'the same with hpm defaults (Connection: close upstream)', url: `${plainDefault.url}/api/items`, pid: plainDefault.pid },
    { key: 'naiveBff', label: 'naive BFF (express-session + connect-redis + hpm keep-alive)', url: `${naive.url}/api/items`, cookieFile: writeCookieFile('naive', [naiveCookie]), pid: naive.pid },
    { key: 'library', label: `${libraryLabel}, 1 session`, url: `${library.url}/api/items`, cookieFile: libraryCookieFile, pid: library.pid },
    ...libraryUse ? [{ key: 'libraryUse', label: 'this library, app.use() (Redis), 1 session', url: `${libraryUse.url}/api/items`, cookieFile: writeCookieFile('library-use', [useCookie as string]), pid: libraryUse.pid }] : [],
    ...libraryUseOptions ? [{ key: 'libraryUseOptions', label: 'this library, app.use(), server made with serverOptions(app) (Redis), 1 session', url: `${libraryUseOptions.url}/api/items`, cookieFile: writeCookieFile('library-use-options', [useOptionsCookie as string]), pid: libraryUseOptions.pid }] : [],
    { key: 'library1000Sessions', label: `${libraryLabel}, ${libCookies.length} sessions`, url: `${library.url}/api/items`, cookieFile: writeCookieFile('library-many', libCookies), pid: library.pid },
    { key: 'libraryDpop', label: `${libraryLabel}, DPoP (an ES256 proof per call), 1 session`, url: `${libraryDpop.url}/api/items`, cookieFile: writeCookieFile('library-dpop', [dpopCookie as string]), pid: libraryDpop.pid },
  ];
  const freshContestant: Contestant | undefined = fresh && { key: 'libraryFresh', label: `${libraryLabel} in a process with ${freshLoginsLabel()} logged in`, url: `${fresh.url}/api/items`, cookieFile: writeCookieFile('library-fresh', [freshCookie as string]), pid: fresh.pid };
  const wsTargets: [WsTarget, WsTarget] = [
    { key: 'direct', label: 'direct to the upstream', url: `${upstream.url.replace(/^http/, 'ws')}/ws`, pid: upstream.pid },
    { key: 'bff', label: libraryLabel, url: `${library.url.replace(/^http/, 'ws')}/api/ws`, cookie: libCookies[0] as string, origin: library.url, pid: library.pid },
  ];
  if (mode === 'quick') {
    const otel = withOtel ? await startLibraryWithOtel(upstream.url, ports.libraryOtel, ports.otelMetrics) : undefined;
    if (otel) contestants.push(otel.contestant);
    const quick = await measureContestants(contestants.filter((c) => ['direct', 'ceiling', 'appCeiling', 'plainProxy', 'library', 'libraryUse', 'libraryUseOptions', 'libraryDpop', 'libraryOtel', ...(settings.sessions > 1 ? ['library1000Sessions'] : [])].includes(c.key)));
    const near = await measureNearCeiling(contestants, freshContestant);
    const h2h = await headToHead(contestantByKey(contestants, 'library'), contestantByKey(contestants, 'plainProxy'));
    const dpopH2h = await headToHead(contestantByKey(contestants, 'libraryDpop'), contestantByKey(contestants, 'library'));
    const h2hOtel = otel ? await headToHead(contestantByKey(contestants, 'library'), otel.contestant) : undefined;
    const ws = await measureWsThroughput(wsTargets, wsSettings, cpuMsOf, say);
    await Promise.all([ceiling.stop(), appCeiling.stop(), plain.stop(), plainDefault.stop(), naive.stop(), library.stop(), libraryUse?.stop(), libraryUseOptions?.stop(), libraryDpop.stop(), fresh?.stop(), otel?.stop()]);
    process.stdout.write(`\n${table(contestantRows(quick))}\n\n${nearCeilingRows(near).map(table).join('\n\n')}\n\n${table(targetRows(ceilingTargets(near)))}\n\n${table(sessionReadRows(quick))}\n\n${table(inAnAppRows(againstAppCeiling(quick)))}\n\n${table(headToHeadRows(h2h))}\n\n${table(headToHeadRows(dpopH2h))}\n\n${table(wsThroughputRows(ws, ['direct', 'bff']))}\n`);
    if (h2hOtel && otel) process.stdout.write(`\n${table(headToHeadRows(h2hOtel))}\n\n${otel.summary()}\n`);
    return;
  }
  const results = await measureContestants(contestants);
  const near = await measureNearCeiling(contestants, freshContestant);
  const h2h = await headToHead(contestantByKey(contestants, 'library'), contestantByKey(contestants, 'plainProxy'));
  // What a DPoP proof per call costs, measured the steadiest way: the same library with and without it, at once.
  const dpopH2h = await headToHead(contestantByKey(contestants, 'libraryDpop'), contestantByKey(contestants, 'library'));
  const wsThroughput = await measureWsThroughput(wsTargets, wsSettings, cpuMsOf, say);
  await Promise.all([ceiling.stop(), appCeiling.stop(), plain.stop(), plainDefault.stop(), naive.stop(), library.stop(), libraryUse?.stop(), libraryUseOptions?.stop(), libraryDpop.stop(), fresh?.stop()]);
  const inApp = againstAppCeiling(results);

  const storms = await runStorms(upstream.url, ports.storm);
  const sessionEnd = await runSessionEnd(upstream.url, ports.storm);
  const memory = await measureMemory(upstream.url, ports.memory, naivePrefix);
  const checked = targets(results, near, h2h, storms, memory, sessionEnd);

  const info = machine();
  const output = {
    generatedAt: new Date().toISOString(),
    mode,
    machine: info,
    settings: { ...settings, libraryServer: libraryScript, upstreamBodyBytes: upstreamBody.byteLength, accessTokenTtl: ACCESS_TOKEN_TTL },
    contestants: results,
    againstAppCeiling: inApp,
    adjacentSlots: near,
    headToHead: h2h,
    headToHeadDpop: dpopH2h,
    storms,
    memory,
    websocket: { throughput: wsThroughput, sessionEnd },
    targets: checked,
  };
  const file = join(resultsDir, mode === 'smoke' ? 'smoke.json' : 'latest.json');
  writeFileSync(file, `${JSON.stringify(output, null, 2)}\n`);

  const machineLine = `${info.nproc} cores (${info.cpuModel}), Node ${info.node}, ${info.os}, commit ${info.git.commit}${info.git.srcChanged ? ' + uncommitted changes in src/ or example/' : ''}, load average ${info.loadAverage.start} at start / ${info.loadAverage.end} at end; servers run ${info.runtime === 'compiled' ? 'as JavaScript compiled by tsc' : 'through tsx'}${info.nodeArgs.length > 0 ? ` with node ${info.nodeArgs.join(' ')}` : ''}; load generator ${info.loadGenerator}${info.pinned ? ' on core 0, servers on core 1' : ', not pinned'}; ${settings.rounds} rounds of ${settings.loadSec} s at ${settings.connections} connections + ${settings.unloadedSec} s at 1 connection, medians`;
  const targetTable = targetRows(checked);
  process.stdout.write(`\n${machineLine}\n\n${table(contestantRows(results))}\n\n${nearCeilingRows(near).map(table).join('\n\n')}\n\n${table(sessionReadRows(results))}\n\n${table(inAnAppRows(inApp))}\n\n${table(headToHeadRows(h2h))}\n\n${table(headToHeadRows(dpopH2h))}\n\n${table(stormRows(storms))}\n\n${table(wsThroughputRows(wsThroughput, ['direct', 'bff']))}\n\n${table(sessionEndRows(sessionEnd))}\n\n${table(memoryRows(memory))}\n\n${table(targetTable)}\n\nwritten: ${file}\n`);
  if (mode === 'full') {
    updateBenchmarksMd([
      `Run ${output.generatedAt} (\`npm run bench\`, results in \`bench/results/latest.json\`).`,
      '',
      `Machine: ${machineLine}.`,
      '',
      markdownTable(contestantRows(results)),
      '',
      ...nearCeilingRows(near).flatMap((rows) => [markdownTable(rows), '']),
      markdownTable(sessionReadRows(results)),
      '',
      markdownTable(inAnAppRows(inApp)),
      '',
      markdownTable(headToHeadRows(h2h)),
      '',
      markdownTable(headToHeadRows(dpopH2h)),
      '',
      markdownTable(stormRows(storms)),
      '',
      markdownTable(wsThroughputRows(wsThroughput, ['direct', 'bff'])),
      '',
      markdownTable(sessionEndRows(sessionEnd)),
      '',
      markdownTable(memoryRows(memory)),
      '',
      markdownTable(targetTable),
    ].join('\n'));
  }
}

/** What every contestant is measured against: the upstream alone, the ceiling and the plain express proxy. */
function references(upstream: ServerProcess, ceiling: ServerProcess, plain: ServerProcess): Contestant[] {
  return [
    { key: 'direct', label: 'direct to upstream (the limit)', url: `${upstream.url}/items`, pid: upstream.pid },
    { key: 'ceiling', label: 'ceiling: bare node:http + undici, static token', url: `${ceiling.url}/api/items`, pid: ceiling.pid },
    { key: 'plainProxy', label: 'express + http-proxy-middleware, static token (keep-alive agent)', url: `${plain.url}/api/items`, pid: plain.pid },
  ];
}

/**
 * `--ab`: the example as the working tree has it, against the same example at another commit (a git worktree of
 * BENCH_AB_REF, default HEAD, sharing this checkout's node_modules), side by side in one run: the way to tell
 * whether a change to the hot path helps, on a machine whose speed moves more from run to run than most changes
 * do. Rounds alternate between them (with the ceiling, the plain proxy and the upstream alone), and the two are
 * also loaded at the same time, which compares their CPU per request under exactly the same conditions.
 */
async function compareWithRef(upstream: ServerProcess, ports: { ceiling: number; plain: number; library: number; libraryUse: number }): Promise<void> {
  const ref = process.env.BENCH_AB_REF ?? 'HEAD';
  const commit = spawnSync('git', ['rev-parse', '--short', ref], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
  if (!commit) throw new Error(`BENCH_AB_REF ${ref} is not a commit here`);
  const tree = mkdtempSync(join(tmpdir(), 'express-ort-bff-ab-'));
  const git = (...args: string[]) => {
    const result = spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`git ${args.join(' ')}: ${result.stderr}`);
  };
  git('worktree', 'add', '--detach', tree, commit);
  try {
    symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'), 'dir');
    const refRuntime = runtimeKind === 'compiled' ? compile(tree, join(compiledDir, `ref-${commit}`)) : runtime;
    const [ceiling, plain, library, before] = await Promise.all([
      start('ceiling', 'bench/servers/ceiling.ts', { PORT: String(ports.ceiling), UPSTREAM_API_URL: upstream.url }),
      start('plain-proxy', 'bench/servers/plain-proxy.ts', { PORT: String(ports.plain), UPSTREAM_API_URL: upstream.url }),
      start('library', libraryScript, libraryEnv(ports.library, upstream.url, `${PREFIX}lib:`)),
      start(`library-${commit}`, join(tree, libraryScript), libraryEnv(ports.libraryUse, upstream.url, `${PREFIX}ref:`), { runtime: refRuntime }),
    ]);
    const [cookie] = await loginMany(library.url, ['u0'], 1);
    const [refCookie] = await loginMany(before.url, ['u0'], 1);
    await renewOnce(library.url, cookie);
    await renewOnce(before.url, refCookie);
    const contestants: Contestant[] = [
      ...references(upstream, ceiling, plain),
      { key: 'library', label: `${libraryScript}, working tree`, url: `${library.url}/api/items`, cookieFile: writeCookieFile('library', [cookie as string]), pid: library.pid },
      { key: 'libraryRef', label: `${libraryScript} at ${commit}`, url: `${before.url}/api/items`, cookieFile: writeCookieFile('library-ref', [refCookie as string]), pid: before.pid },
    ];
    const results = await measureContestants(contestants);
    const h2h = await headToHead(contestantByKey(contestants, 'library'), contestantByKey(contestants, 'libraryRef'));
    await Promise.all([ceiling.stop(), plain.stop(), library.stop(), before.stop()]);
    process.stdout.write(`\n${table(contestantRows(results))}\n\n${table(headToHeadRows(h2h))}\n`);
  } finally {
    git('worktree', 'remove', '--force', tree);
  }
}

/**
 * The library (the example BFF) with the OpenTelemetry SDK started, as its README shows: metrics for Prometheus
 * (recorded, never scraped here) and every span exported in batches over OTLP to a stand-in collector.
 */
async function startLibraryWithOtel(upstreamUrl: string, port: number, metricsPort: number): Promise<{ contestant: Contestant; stop(): Promise<void>; summary(): string }> {
  const sink: OtlpSink = await startOtlpSink();
  const server = await start('library-otel', libraryScript, {
    ...libraryEnv(port, upstreamUrl, `${PREFIX}otel:`),
    METRICS_PORT: String(metricsPort),
    OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
  });
  const cookies = await loginMany(server.url, ['u0'], 1);
  await renewOnce(server.url, cookies[0]);
  return {
    contestant: { key: 'libraryOtel', label: `${useExample ? 'this library (example BFF, Redis)' : 'this library (Redis)'}, 1 session, OpenTelemetry SDK`, url: `${server.url}/api/items`, cookieFile: writeCookieFile('library-otel', cookies), pid: server.pid },
    stop: async () => {
      await server.stop();
      await sink.close();
    },
    summary: () => {
      const { requests, bytes } = sink.received();
      return `OpenTelemetry SDK contestant: ${requests} OTLP exports received (${(bytes / 1024 / 1024).toFixed(1)} MiB of spans); metrics at http://127.0.0.1:${metricsPort}/metrics`;
    },
  };
}

async function profile(upstream: ServerProcess, port: number): Promise<void> {
  // One file per thread (tsx's loader hooks run on their own thread): the main thread's is the largest.
  const dir = join(resultsDir, 'profiles', runId);
  mkdirSync(dir, { recursive: true });
  // BENCH_PROFILE_DPOP=1: the library with DPoP on, to see what the proofs cost.
  const dpop: Record<string, string> = process.env.BENCH_PROFILE_DPOP === '1'
    ? { DPOP_PRIVATE_KEY: JSON.stringify(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' })) }
    : {};
  // BENCH_PROFILE_TRACE_GC=1: GC pauses under the same load, of the library and then of the ceiling. The library's
  // run under the profiler, which slows its collections: `--gc` compares the two without one.
  const traceGc = process.env.BENCH_PROFILE_TRACE_GC === '1';
  const library = await start('library', libraryScript, { ...libraryEnv(port, upstream.url, `${PREFIX}lib:`), ...dpop }, {
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`, ...traceGc ? ['--trace-gc'] : []],
  });
  const cookies = await loginMany(library.url, Array.from({ length: Number(process.env.BENCH_PROFILE_SESSIONS ?? 100) }, (_, i) => `u${i}`), 16);
  // BENCH_PROFILE_LOAD_SESSIONS: load only the first N of the sessions logged in (what many idle sessions cost the others).
  const loadSessions = Number(process.env.BENCH_PROFILE_LOAD_SESSIONS ?? cookies.length);
  await renewOnce(library.url, cookies[0]);
  const cookieFile = writeCookieFile('profile', cookies.slice(0, loadSessions));
  await runLoad({ url: `${library.url}/api/items`, connections: settings.connections, durationSec: 3, cookieFile, tool });
  say(`profiling the library for ${profileSec} s at ${settings.connections} connections`);
  // Only the samples taken under load count: start-up and logins are left out.
  const fromUs = monotonicUs();
  const gcFrom = traceGc ? logSize(library.logFile) : 0;
  const load = await runLoad({ url: `${library.url}/api/items`, connections: settings.connections, durationSec: profileSec, cookieFile, tool });
  const window = { fromUs, toUs: monotonicUs() };
  const gc = traceGc ? gcRows(`library under the profiler, p99 ${load.p99Ms.toFixed(2)} ms`, gcPauses(library.logFile, gcFrom, profileSec), profileSec) : undefined;
  await library.stop();
  const ceilingGc = traceGc ? await ceilingGcPauses(upstream) : undefined;
  const file = readdirSync(dir).map((f) => join(dir, f)).sort((a, b) => statSync(b).size - statSync(a).size)[0] as string;
  const loaded = readProfile(file, window);
  const { totalMs, top } = topSelfTime(loaded, 30);
  const rows = [['function', 'where', 'self ms', 'self %'], ...top.map((t) => [t.name, t.where, t.selfMs.toFixed(0), t.percent.toFixed(1)])];
  const areas = [['area', 'self %'], ...selfTimeByArea(loaded).slice(0, 15).map((a) => [a.area, a.percent.toFixed(1)])];
  const callers = top.filter((t) => !t.name.startsWith('(')).slice(0, 12)
    .map((t) => `${t.name} (${t.percent.toFixed(1)}%)\n${topCallers(loaded, t.name).map((c) => `    ${c.percent.toFixed(1)}%  < ${c.chain}`).join('\n')}`);
  process.stdout.write(`\n${Math.round(load.rps)} req/s under the profiler (p50 ${load.p50Ms.toFixed(2)} ms); profile ${file} (${(totalMs / 1000).toFixed(1)} s under load)\n\n${table(areas)}\n\n${table(rows)}\n\nwho calls the top functions:\n${callers.join('\n')}\n`);
  if (gc && ceilingGc) process.stdout.write(`\n${table(gc)}\n\n${table(ceilingGc)}\n`);
}

/** The ceiling's GC pauses under the profile's load (without a profiler: it has nothing of its own to profile). */
async function ceilingGcPauses(upstream: ServerProcess): Promise<string[][]> {
  const ceiling = await start('ceiling', 'bench/servers/ceiling.ts', { PORT: String(await freePort()), UPSTREAM_API_URL: upstream.url }, { nodeArgs: ['--trace-gc'] });
  const url = `${ceiling.url}/api/items`;
  await runLoad({ url, connections: settings.connections, durationSec: 3, tool });
  const from = logSize(ceiling.logFile);
  const load = await runLoad({ url, connections: settings.connections, durationSec: profileSec, tool });
  const rows = gcRows(`ceiling, p99 ${load.p99Ms.toFixed(2)} ms`, gcPauses(ceiling.logFile, from, profileSec), profileSec);
  await ceiling.stop();
  return rows;
}

/**
 * `--gc`: what a p99 is often made of. The library (the example), the ceiling, and the ceiling sending what the
 * example sends in a process that also runs an app (a proxy in an app's process, before any of the library's work),
 * each under `node --trace-gc` and nothing else (no profiler, which allocates and slows the collector), loaded in
 * rounds in an order that turns, as the other modes load them; per contestant the round-by-round p99 and the
 * pauses of every kind of collection, over all rounds.
 */
async function compareGc(upstream: ServerProcess, ports: { ceiling: number; ceilingApp: number; library: number }): Promise<void> {
  const traced = { nodeArgs: ['--trace-gc'] };
  const app = inAnAppsProcess(await sameSendingCeiling(upstream, 0), ports.ceilingApp);
  const [ceiling, inApp, library] = await Promise.all([
    start('ceiling', 'bench/servers/ceiling.ts', { PORT: String(ports.ceiling), UPSTREAM_API_URL: upstream.url }, traced),
    start('app-ceiling', 'bench/servers/ceiling.ts', app.env, traced),
    // BENCH_GC_NODE_ARGS: more node options for the library's process, to try what changes its collections.
    start('library', libraryScript, libraryEnv(ports.library, upstream.url, `${PREFIX}lib:`), { nodeArgs: [...traced.nodeArgs, ...(process.env.BENCH_GC_NODE_ARGS ?? '').split(' ').filter(Boolean)] }),
  ]);
  const [cookie] = await loginMany(library.url, ['u0'], 1);
  await renewOnce(library.url, cookie);
  await visitApp(inApp);
  const cookieFile = writeCookieFile('library', [cookie as string]);
  const contestants = [
    { key: 'ceiling', server: ceiling, url: `${ceiling.url}/api/items`, cookieFile: undefined },
    { key: 'app-ceiling', server: inApp, url: `${inApp.url}/api/items`, cookieFile },
    { key: 'library', server: library, url: `${library.url}/api/items`, cookieFile },
  ];
  const seen = new Map(contestants.map((c) => [c.key, { p50s: [] as number[], p99s: [] as number[], rps: [] as number[], pauses: new Map<string, number[]>() }]));
  for (const c of contestants) await slot.warmUp(c);
  for (let r = 0; r < settings.rounds; r++) {
    for (const c of contestants.map((_, i) => contestants[(i + r) % contestants.length]!)) {
      const from = logSize(c.server.logFile);
      const load = await slot.loaded(c);
      const mine = seen.get(c.key)!;
      mine.p50s.push(load.p50Ms);
      mine.p99s.push(load.p99Ms);
      mine.rps.push(load.rps);
      for (const [kind, pauses] of gcPauseLists(c.server.logFile, from)) mine.pauses.set(kind, [...(mine.pauses.get(kind) ?? []), ...pauses]);
      say(`round ${r + 1}/${settings.rounds} ${c.key.padEnd(11)} ${Math.round(load.rps)} req/s  p50 ${load.p50Ms.toFixed(2)} ms  p99 ${load.p99Ms.toFixed(2)} ms`);
    }
  }
  await Promise.all([ceiling.stop(), inApp.stop(), library.stop()]);
  const seconds = settings.rounds * settings.loadSec;
  for (const c of contestants) {
    const mine = seen.get(c.key)!;
    const label = `${c.key}: ${Math.round(median(mine.rps))} req/s, p99 ${median(mine.p99s).toFixed(2)} ms (medians of ${settings.rounds} rounds)`;
    process.stdout.write(`\n${table(gcRows(label, summarize(mine.pauses, seconds), seconds))}\n`);
  }
  // The rounds ran seconds apart: the ratios the ceiling target takes, round by round.
  // A p99 that moves with the p50 is the same latency shifted (less throughput); one that moves alone is a tail.
  const libraryRuns = seen.get('library')!;
  process.stdout.write('\n');
  for (const against of ['ceiling', 'app-ceiling']) {
    const theirs = seen.get(against)!;
    for (const [name, mine, base] of [['p50', libraryRuns.p50s, theirs.p50s], ['p99', libraryRuns.p99s, theirs.p99s]] as const) {
      const ratios = mine.map((v, r) => v / (base[r] as number));
      process.stdout.write(`${name} library / ${against}, per round: ${ratios.map((x) => x.toFixed(2)).join(' ')}; median ${median(ratios).toFixed(2)}\n`);
    }
  }
}

/**
 * `--spread`: the same code in several processes. `spreadProcesses` ceilings, as many examples and as many ceilings
 * sending what the examples send in a process that also runs an app, started alike (each example logged
 * in and made to renew its token once), every process loaded by itself in every round, in an
 * order that turns from round to round, as the other modes load their contestants. Per process the medians over
 * the rounds; then the example's req/s over the ceiling's, taken over the processes' medians. Identical example
 * processes have been seen to run at one of two speeds for their whole life (BENCHMARKS.md, "Two speeds of the
 * same process"), and every other mode measures one process of each: one draw.
 */
async function compareSpread(upstream: ServerProcess, ports: { spread: number[]; spreadCeilings: number[]; spreadApps: number[] }): Promise<void> {
  const ceilings = await Promise.all(ports.spreadCeilings.map((port, i) => start(`ceiling-${i + 1}`, 'bench/servers/ceiling.ts', { PORT: String(port), UPSTREAM_API_URL: upstream.url })));
  const libraries = await Promise.all(ports.spread.map((port, i) => start(`library-${i + 1}`, libraryScript, libraryEnv(port, upstream.url, `${PREFIX}spread${i + 1}:`))));
  const contestants: Array<{ key: string; kind: 'ceiling' | 'library' | 'app'; pid: number; url: string; cookieFile?: string }> =
    ceilings.map((s) => ({ key: s.name, kind: 'ceiling', pid: s.pid, url: `${s.url}/api/items` }));
  for (const library of libraries) {
    const [cookie] = await loginMany(library.url, ['u0'], 1);
    await renewOnce(library.url, cookie);
    contestants.push({ key: library.name, kind: 'library', pid: library.pid, url: `${library.url}/api/items`, cookieFile: writeCookieFile(library.name, [cookie as string]) });
  }
  // As many of the ceiling sending what the examples send, in a process that also runs an app, sent
  // an example's cookie: where a proxy that is part of an app stands, before any of the library's work.
  // (The port given is not used: each gets its own.)
  const sameSending = await sameSendingCeiling(upstream, 0);
  const apps = await Promise.all(ports.spreadApps.map((port, i) => start(`app-ceiling-${i + 1}`, 'bench/servers/ceiling.ts', inAnAppsProcess(sameSending, port).env)));
  for (const app of apps) {
    await visitApp(app);
    contestants.push({ key: app.name, kind: 'app', pid: app.pid, url: `${app.url}/api/items`, cookieFile: contestants.find((c) => c.kind === 'library')?.cookieFile });
  }
  for (const c of contestants) await slot.warmUp(c);
  const seen = new Map(contestants.map((c) => [c.key, { rps: [] as number[], p99s: [] as number[], cpu: [] as number[] }]));
  for (let r = 0; r < settings.rounds; r++) {
    for (const c of contestants.map((_, i) => contestants[(i + r) % contestants.length]!)) {
      const cpuBefore = cpuMsOf(c.pid);
      const load = await slot.loaded(c);
      const cpu = ((cpuMsOf(c.pid) - cpuBefore) * 1000) / Math.max(1, load.requests);
      const mine = seen.get(c.key)!;
      mine.rps.push(load.rps);
      mine.p99s.push(load.p99Ms);
      mine.cpu.push(cpu);
      say(`round ${r + 1}/${settings.rounds} ${c.key.padEnd(10)} ${Math.round(load.rps)} req/s  p99 ${load.p99Ms.toFixed(2)} ms  CPU ${cpu.toFixed(1)} us/req${load.errors ? `  ERRORS ${load.errors}` : ''}`);
    }
  }
  await Promise.all([...ceilings, ...libraries, ...apps].map((s) => s.stop()));
  const medians = contestants.map((c) => {
    const mine = seen.get(c.key)!;
    return { ...c, rps: median(mine.rps), p99Ms: median(mine.p99s), cpuUs: median(mine.cpu) };
  });
  // The median over one kind's processes of their medians.
  const overKind = (kind: 'ceiling' | 'library' | 'app') => {
    const mine = medians.filter((m) => m.kind === kind);
    return { rps: median(mine.map((m) => m.rps)), p99Ms: median(mine.map((m) => m.p99Ms)) };
  };
  const ceiling = overKind('ceiling');
  const rows = [
    ['process', 'req/s', 'x ceiling', 'p99 ms', 'p99 x ceiling', 'CPU us/req'],
    ...medians.map((m) => [m.key, String(Math.round(m.rps)), (m.rps / ceiling.rps).toFixed(3), m.p99Ms.toFixed(2), (m.p99Ms / ceiling.p99Ms).toFixed(2), m.cpuUs.toFixed(1)]),
  ];
  const library = overKind('library');
  const inApp = overKind('app');
  const ratio = (a: { rps: number; p99Ms: number }, b: { rps: number; p99Ms: number }) => `req/s ${(a.rps / b.rps).toFixed(3)}, p99 ${(a.p99Ms / b.p99Ms).toFixed(2)}`;
  process.stdout.write(`\nmedians of ${settings.rounds} rounds per process; "x ceiling" against the median of the ceiling processes' medians; app-ceiling: the ${sameSending.label}, in a process that also runs an app (Express routes, Redis, fetch, log lines)\n\n${table(rows)}\n\n`
    + `example / ceiling over the processes' medians: ${ratio(library, ceiling)}\n`
    + `app-ceiling / ceiling: ${ratio(inApp, ceiling)}; example / app-ceiling: ${ratio(library, inApp)}\n`);
}

/**
 * What the counting modes send a server: its API URL, and the headers of a call, with the session cookie of a user
 * logged in there (who has renewed the token once) when `session`, or `cookie` as given. With `sessions` above 1,
 * that many users log in, and the calls are the first one's.
 */
async function callsTo(server: ServerProcess, session: boolean, cookie: string | undefined, sessions = 1): Promise<{ url: string; headers: Record<string, string>; cookie: string | undefined }> {
  let sessionCookie = cookie;
  if (session) {
    [sessionCookie] = await loginMany(server.url, Array.from({ length: sessions }, (_, i) => `u${i}`), Math.min(sessions, 16));
    await renewOnce(server.url, sessionCookie);
  }
  return { url: `${server.url}/api/items`, headers: { 'x-csrf': '1', ...(sessionCookie ? { cookie: sessionCookie } : {}) }, cookie: sessionCookie };
}

/**
 * The ceiling sending the upstream what the example sends (a token of the example's token's size, as the bench
 * upstream saw it, and the four X-Forwarded-* headers): its environment, and its name in the tables.
 */
async function sameSendingCeiling(upstream: ServerProcess, port: number): Promise<CeilingVariant> {
  const authorization = await fetch(`${upstream.url}/__bench/authorization`).then((r) => r.json() as Promise<{ bytes: number }>);
  const tokenBytes = authorization.bytes - 'Bearer '.length;
  return {
    env: { PORT: String(port), UPSTREAM_API_URL: upstream.url, CEILING_TOKEN_BYTES: String(tokenBytes), CEILING_FORWARDED: '1' },
    label: `ceiling sending what the example sends (${tokenBytes}-byte token, X-Forwarded-*, cookie in)`,
  };
}

/**
 * That ceiling in a process that also runs an app (CEILING_APP of bench/servers/ceiling.ts: Express routes, log
 * lines, Redis, fetch), as the example's process runs the BFF's routes, its Redis client and its calls to Auth0:
 * before it is measured, `visitApp` calls the app as a browser would. No proxied call goes through the app.
 */
function inAnAppsProcess(sameSending: CeilingVariant, port: number): CeilingVariant {
  return {
    env: { ...sameSending.env, PORT: String(port), CEILING_APP: '1', REDIS_URL },
    label: 'the same, in a process that also runs an app',
  };
}

interface CeilingVariant {
  readonly env: Record<string, string>;
  readonly label: string;
}

/**
 * Ten requests to the app of a ceiling started with CEILING_APP: its JSON route, and its 404; then `more` requests
 * to its JSON route, 16 at a time (as the bench logs users in): a process that has served that many requests of
 * its app, as the example's has served its logins (BENCHMARKS.md, "What a process has served costs its API calls").
 */
async function visitApp(server: ServerProcess, more = 0): Promise<void> {
  for (let i = 0; i < 5; i++) {
    for (const [path, status] of [['/health', 200], ['/nothing-here', 404]] as const) {
      const res = await fetch(`${server.url}${path}`);
      await res.text();
      if (res.status !== status) throw new Error(`${server.name}: ${path} answered ${res.status}, not ${status}: is CEILING_APP on?`);
    }
  }
  if (more > 0) await sendCalls(`${server.url}/health`, { count: more, concurrency: 16, headers: {} });
}

/**
 * `--instructions`: each server alone under callgrind, on the bench's upstream: warmed up, then the instructions of
 * windows of calls counted, per call, until the last few agree (`instructionSettings`); their median is the count.
 * Contestants: the example (and with BENCH_INSTRUCTIONS_USE=1 the app.use() form), the ceiling, the ceiling
 * sending what the example sends (a token of the example's token's size and the four X-Forwarded-* headers) and
 * sent what the example is sent (the session cookie), and that one in a process that also runs an app, as the
 * example's does: the difference between the last and the example is the library's own work. See
 * bench/lib/instructions.ts for what a count leaves out.
 */
async function compareInstructions(upstream: ServerProcess, ports: { ceiling: number; ceilingSame: number; ceilingApp: number; library: number; libraryUse: number; libraryDpop: number }): Promise<void> {
  if (!valgrindAvailable()) throw new Error('--instructions needs valgrind (Debian package valgrind: apt-get install valgrind)');
  const { warmupCalls, calls, settled, tolerance, maxWindows, concurrency, useForm, functions, sessions } = instructionSettings;
  say(`instructions: ${warmupCalls} calls to warm up, then windows of ${calls} calls (${concurrency} at a time) until ${settled} in a row agree within ${tolerance * 100} %; every server runs under valgrind, one at a time`);
  const rows: WindowedCount[] = [];
  const spread = (counts: number[]) => (Math.max(...counts) - Math.min(...counts)) / Math.min(...counts);
  // The count of one server, and the session cookie it was called with.
  const measure = async (label: string, name: string, script: string, env: Record<string, string>, calledWith: { session?: boolean; cookie?: string; app?: boolean; appRequests?: number; sessions?: number; userRouteCalls?: number }): Promise<{ count: number; cookie: string | undefined; byFunction?: Map<string, number> }> => {
    const { session = false, cookie, app = false, appRequests = 0, sessions: loggedIn = 1, userRouteCalls = 0 } = calledWith;
    const outFile = join(logDir, `${name}.callgrind`);
    const t0 = performance.now();
    const server = await start(name, script, env, {
      wrapper: callgrindWrapper(outFile, { perInstruction: functions }),
      // V8 names the code it compiles in /tmp/perf-<pid>.map.
      nodeArgs: functions ? ['--perf-basic-prof'] : [],
      readyTimeoutMs: 600_000,
    });
    if (app) await visitApp(server, appRequests);
    const loginsFrom = performance.now();
    const { url, headers, cookie: sessionCookie } = await callsTo(server, session, cookie, loggedIn);
    if (loggedIn > 1) say(`  ${label}: ${loggedIn} users logged in in ${((performance.now() - loginsFrom) / 1000).toFixed(0)} s`);
    // The calls a browser makes to the BFF's own routes between API calls, logins' worth of them (16 at a time, as the logins).
    if (userRouteCalls > 0) await sendCalls(`${server.url}${userRoute}`, { count: userRouteCalls, concurrency: 16, headers });
    await sendCalls(url, { count: warmupCalls, concurrency, headers });
    const perCall: number[] = [];
    let lastDump = '';
    while (perCall.length < maxWindows && (perCall.length < settled || spread(perCall.slice(-settled)) > tolerance)) {
      zeroCounts(server.pid);
      await sendCalls(url, { count: calls, concurrency, headers });
      const dumped = dumpCounts(server.pid, outFile);
      perCall.push(dumped.instructions / calls);
      lastDump = dumped.file;
    }
    await server.stop();
    let byFunction: Map<string, number> | undefined;
    if (functions) {
      // Moved next to the dumps, which it names: kept with them by BENCH_KEEP_LOGS=1.
      const perfMap = join(logDir, `${name}.perf.map`);
      copyFileSync(`/tmp/perf-${server.pid}.map`, perfMap);
      rmSync(`/tmp/perf-${server.pid}.map`, { force: true });
      byFunction = functionCounts(readFileSync(lastDump, 'utf8'), readFileSync(perfMap, 'utf8'), calls);
    }
    const last = perCall.slice(-settled);
    const count = median(last);
    rows.push({ label, perCall, count, settled: spread(last) <= tolerance });
    say(`  ${label}: ${perCall.map((n) => Math.round(n).toLocaleString('en-US')).join(', ')} instructions per call (${((performance.now() - t0) / 1000).toFixed(0)} s under valgrind)`);
    return { count, cookie: sessionCookie, byFunction };
  };
  const exampleLabel = useExample ? 'library (example, bff.wrap)' : 'library (bench server)';
  const example = await measure(exampleLabel, 'library', libraryScript, libraryEnv(ports.library, upstream.url, `${PREFIX}lib:`), { session: true });
  if (sessions > 1) {
    const many = await measure(`${exampleLabel}, ${sessions} users logged in`, 'library-sessions', libraryScript, libraryEnv(ports.libraryUse, upstream.url, `${PREFIX}sessions:`), { session: true, sessions });
    const userCalls = await measure(`${exampleLabel}, one user, who called ${userRoute} ${sessions} times`, 'library-user-calls', libraryScript, libraryEnv(ports.libraryDpop, upstream.url, `${PREFIX}user-calls:`), { session: true, userRouteCalls: sessions });
    // The same for a proxy that does none of the library's work: the one in an app's process, its app called 10 times (as always), then N times.
    const inApp = inAnAppsProcess(await sameSendingCeiling(upstream, ports.ceilingSame), ports.ceilingApp);
    const app = await measure('ceiling sending what the example sends, in a process that also runs an app', 'ceiling-app', 'bench/servers/ceiling.ts', inApp.env, { cookie: example.cookie, app: true });
    const appServed = await measure(`the same, its app called ${sessions} times`, 'ceiling-app-served', 'bench/servers/ceiling.ts', { ...inApp.env, PORT: String(ports.ceiling) }, { cookie: example.cookie, app: true, appRequests: sessions });
    return printServed(rows, { one: example, many, userCalls, app, appServed });
  }
  const sameSending = await sameSendingCeiling(upstream, ports.ceilingSame);
  if (useForm) {
    await measure('library, app.use()', 'library-use', 'bench/servers/lib-bff.ts', { ...libraryEnv(ports.libraryUse, upstream.url, `${PREFIX}use:`), BENCH_ENTRY: 'use' }, { session: true });
    await measure('library, app.use(), server made with serverOptions(app)', 'library-use-options', 'bench/servers/lib-bff.ts', { ...libraryEnv(ports.libraryUse, upstream.url, `${PREFIX}use-options:`), BENCH_ENTRY: 'use', BENCH_SERVER_OPTIONS: '1' }, { session: true });
  }
  const { count: ceiling, byFunction: ceilingByFunction } = await measure('ceiling', 'ceiling', 'bench/servers/ceiling.ts', { PORT: String(ports.ceiling), UPSTREAM_API_URL: upstream.url }, {});
  const { count: same, byFunction: sameByFunction } = await measure(sameSending.label, 'ceiling-same', 'bench/servers/ceiling.ts', sameSending.env, { cookie: example.cookie });
  const inApp = inAnAppsProcess(sameSending, ports.ceilingApp);
  const { count: app, byFunction: appByFunction } = await measure(inApp.label, 'ceiling-app', 'bench/servers/ceiling.ts', inApp.env, { cookie: example.cookie, app: true });
  const thousands = (n: number) => (n / 1000).toFixed(1);
  process.stdout.write(`\ninstructions per call, in thousands, user space only: the median of the last ${settled} windows of ${calls} calls (their range; * = they did not agree within ${tolerance * 100} % in ${maxWindows} windows)\n\n${table([
    ['server', 'per call', 'last windows', 'windows', 'x ceiling', 'minus ceiling'],
    ...rows.map((r) => [...windowCells(r, thousands), (r.count / ceiling).toFixed(3), thousands(r.count - ceiling)]),
  ])}\n\nthe example over the ceiling sending what it sends: ${(example.count / same).toFixed(3)} (${thousands(example.count - same)} thousand instructions per call more)\n`
    + `the example over that ceiling in a process that also runs an app: ${(example.count / app).toFixed(3)} (${thousands(example.count - app)} thousand more: the library's own work)\n`);
  if (example.byFunction !== undefined && appByFunction !== undefined) printFunctionDifferences(example.byFunction, appByFunction, calls);
  if (appByFunction !== undefined && sameByFunction !== undefined) {
    const { table: differences } = functionDifferences(appByFunction, sameByFunction, ['the same, in an app\'s process', 'the same, by itself']);
    process.stdout.write(`\nwhat an app in the same process did to the ceiling's proxied calls, in instructions per call by function\n\n${differences}\n`);
  }
  if (sameByFunction !== undefined && ceilingByFunction !== undefined) {
    const { table: differences } = functionDifferences(sameByFunction, ceilingByFunction, ['ceiling sending what the example sends', 'ceiling']);
    process.stdout.write(`\nwhat sending what the example sends (its token, X-Forwarded-*, the cookie in) did to the ceiling's calls, in instructions per call by function\n\n${differences}\n`);
  }
}

/**
 * BENCH_INSTRUCTIONS_SESSIONS=N: whether what a process served before costs its API calls, and whether that is the
 * library's. The instructions of one user's calls in a process where only that user logged in; in one where N users
 * did (and then sat idle); in one where only that user logged in and then called the user route N times (sessions
 * held, or requests served); and the same for the proxy in an app's process, its app called 10 times (as in every
 * `--instructions` run), and N times. With BENCH_INSTRUCTIONS_FUNCTIONS=1, where they differ, by function.
 */
function printServed(rows: readonly WindowedCount[], counts: { one: InstructionCount; many: InstructionCount; userCalls: InstructionCount; app: InstructionCount; appServed: InstructionCount }): void {
  const { calls, settled, tolerance, sessions } = instructionSettings;
  const { one, many, userCalls, app, appServed } = counts;
  const over = (other: InstructionCount, base: InstructionCount) => `${(other.count / base.count).toFixed(3)} (${wholeNumber(other.count - base.count)} instructions per call more)`;
  process.stdout.write(`\ninstructions per call, user space only: the median of the last ${settled} windows of ${calls} calls (* = they did not agree within ${tolerance * 100} %)\n\n${table([
    ['server', 'per call', 'last windows', 'windows'],
    ...rows.map((r) => windowCells(r, wholeNumber)),
  ])}\n\nthe example with ${sessions} users logged in, over one user: ${over(many, one)}\n`
    + `the example with one user who called ${userRoute} ${sessions} times, over one user: ${over(userCalls, one)}\n`
    + `the proxy in an app's process, its app called ${sessions} times, over 10 times: ${over(appServed, app)}\n`
    + `the example with ${sessions} users logged in, over that proxy whose app was called ${sessions} times: ${over(many, appServed)}\n`);
  const differences: Array<[InstructionCount, InstructionCount, string]> = [
    [many, one, `the other users' logins did to one user's API calls`],
    [userCalls, one, `the calls to ${userRoute} did to one user's API calls`],
    [appServed, app, `the app's ${sessions} requests did to the proxied calls of the proxy in its process`],
  ];
  for (const [after, before, title] of differences) {
    if (after.byFunction === undefined || before.byFunction === undefined) continue;
    const { table: rowsByFunction } = functionDifferences(after.byFunction, before.byFunction, ['after', 'before']);
    process.stdout.write(`\nwhat ${title}, in instructions per call by function\n\n${rowsByFunction}\n`);
  }
}

interface InstructionCount {
  readonly count: number;
  readonly byFunction?: Map<string, number>;
}

/** One server's count in `--instructions`: every window's count per call, their settled median, and whether they settled. */
interface WindowedCount {
  readonly label: string;
  readonly perCall: number[];
  readonly count: number;
  readonly settled: boolean;
}

/** A row's first cells: the server, its count (* when its windows did not settle), the last windows' range, and how many windows. */
function windowCells(row: WindowedCount, format: (n: number) => string): string[] {
  const last = row.perCall.slice(-instructionSettings.settled);
  return [row.label, `${format(row.count)}${row.settled ? '' : '*'}`, `${format(Math.min(...last))}-${format(Math.max(...last))}`, String(row.perCall.length)];
}

/**
 * BENCH_INSTRUCTIONS_FUNCTIONS=1: the functions whose instructions differ most between the example and the ceiling
 * sending what it sends in a process that also runs an app (the library's own work), in each one's last window. Inlining differs from process to process (a function inlined
 * into its caller counts as the caller), so a difference of a few hundred in one function may be where the JIT
 * put it rather than work; V8's builtins (property lookups, string hashing, Map and Set lookups) stay calls of their own.
 */
function printFunctionDifferences(example: Map<string, number>, same: Map<string, number>, calls: number): void {
  const { table: differences, own } = functionDifferences(example, same);
  process.stdout.write(`\ninstructions per call by function, the last window of ${calls} calls of each (self cost: what ran in the function's own code); the 30 largest differences either way\n\n${differences}\n\nthe example's own JavaScript (src/ and example/, with what the JIT inlined into it): ${wholeNumber(own)} instructions per call\n`);
}

/** A count per call, rounded, with thousands separated. */
const wholeNumber = (n: number): string => Math.round(n).toLocaleString('en-US');

/**
 * The 30 functions whose per-call figures differ most, either way, between two servers (by default the example and
 * the ceiling sending the same in an app's process), as a table; and the first one's total in the example's own
 * code (src/ and example/).
 */
function functionDifferences(example: Map<string, number>, same: Map<string, number>, columns = ['example', 'ceiling sending the same, in an app\'s process']): { table: string; own: number } {
  const names = [...new Set([...example.keys(), ...same.keys()])];
  const diff = (name: string) => (example.get(name) ?? 0) - (same.get(name) ?? 0);
  const own = [...example].filter(([name]) => isOwnCode(name)).reduce((sum, [, n]) => sum + n, 0);
  return {
    table: table([
      ['function', ...columns, 'difference'],
      ...names.sort((a, b) => Math.abs(diff(b)) - Math.abs(diff(a))).slice(0, 30)
        .map((name) => [name.slice(0, 110), wholeNumber(example.get(name) ?? 0), wholeNumber(same.get(name) ?? 0), wholeNumber(diff(name))]),
    ]),
    own,
  };
}

/**
 * `--allocations`: each server by itself with the allocation probe loaded (bench/servers/allocation-probe.ts), given
 * `warmupCalls`, then sampled over `calls`: the bytes it allocated per call, and the functions whose bytes differ
 * most between the example and the ceiling sending what it sends in an app's process.
 */
async function compareAllocations(upstream: ServerProcess, ports: { ceiling: number; ceilingSame: number; ceilingApp: number; library: number }): Promise<void> {
  if (runtime.kind !== 'compiled') throw new Error('--allocations loads its probe into compiled servers: run it without BENCH_RUNTIME=tsx');
  const { warmupCalls, calls, concurrency } = allocationSettings;
  say(`allocations: ${warmupCalls} calls to warm up, then ${calls} calls sampled (${concurrency} at a time), one server at a time`);
  // BENCH_ALLOCATIONS_NODE_ARGS: more node options for every server measured; `--no-turbo-inlining` gives each
  // function its own allocations, where optimized code would fold an inlined function's into its caller's.
  const probe = [...(process.env.BENCH_ALLOCATIONS_NODE_ARGS ?? '').split(' ').filter(Boolean), '--import', compiledScript(runtime, 'bench/servers/allocation-probe.ts')];
  const measure = async (name: string, script: string, env: Record<string, string>, session: boolean, cookie?: string, app = false): Promise<Allocations & { cookie: string | undefined }> => {
    const file = join(logDir, `${name}.heapprofile`);
    const server = await start(name, script, { ...env, BENCH_ALLOCATION_PROFILE: file }, { nodeArgs: probe });
    if (app) await visitApp(server);
    const { url, headers, cookie: sessionCookie } = await callsTo(server, session, cookie);
    await sendCalls(url, { count: warmupCalls, concurrency, headers });
    process.kill(server.pid, 'SIGUSR2');
    await waitForFile(`${file}.started`, 30_000);
    await sendCalls(url, { count: calls, concurrency, headers });
    process.kill(server.pid, 'SIGUSR2');
    await waitForFile(file, 60_000);
    await server.stop();
    return { ...byFunction(readAllocationProfile(file), calls), cookie: sessionCookie };
  };
  const example = await measure('library', libraryScript, libraryEnv(ports.library, upstream.url, `${PREFIX}lib:`), true);
  const sameSending = await sameSendingCeiling(upstream, ports.ceilingSame);
  const ceiling = await measure('ceiling', 'bench/servers/ceiling.ts', { PORT: String(ports.ceiling), UPSTREAM_API_URL: upstream.url }, false);
  const same = await measure('ceiling-same', 'bench/servers/ceiling.ts', sameSending.env, false, example.cookie);
  const inApp = inAnAppsProcess(sameSending, ports.ceilingApp);
  const app = await measure('ceiling-app', 'bench/servers/ceiling.ts', inApp.env, false, example.cookie, true);
  const rows: Array<[string, number]> = [
    [useExample ? 'library (example, bff.wrap)' : 'library (bench server)', example.perCall],
    ['ceiling', ceiling.perCall],
    [sameSending.label, same.perCall],
    [inApp.label, app.perCall],
  ];
  process.stdout.write(`
bytes allocated per call (sampled every ${process.env.BENCH_ALLOCATION_INTERVAL ?? 1024} bytes on average, over ${calls} calls)

${table([
    ['server', 'bytes per call', 'x ceiling', 'minus ceiling'],
    ...rows.map(([label, n]) => [label, wholeNumber(n), (n / ceiling.perCall).toFixed(3), wholeNumber(n - ceiling.perCall)]),
  ])}
`);
  const { table: differences, own } = functionDifferences(example.byFunction, app.byFunction);
  process.stdout.write(`
bytes per call by function (self: allocated in the function's own code, or in what V8 inlined into it); the 30 largest differences either way

${differences}

the example over the ceiling sending what it sends: ${wholeNumber(example.perCall - same.perCall)} bytes per call; over that ceiling in a process that also runs an app: ${wholeNumber(example.perCall - app.perCall)}; allocated in the example's own JavaScript (src/ and example/): ${wholeNumber(own)}
`);
}

let exitCode = 0;
try {
  await main();
} catch (error) {
  exitCode = 1;
  say(`FAILED: ${(error as Error).stack ?? String(error)}`);
} finally {
  await Promise.allSettled(servers.map((s) => s.stop()));
  await auth0?.stop().catch(() => {});
  if (redis.isOpen) {
    // Everything this run's servers wrote (the example too, through REDIS_PREFIX), and nothing of anyone else's.
    await deleteKeys(await scanKeys(`${PREFIX}*`)).catch(() => {});
    await redis.close().catch(() => {});
  }
  rmSync(compiledDir, { recursive: true, force: true });
  // The servers' logs (and the cookie files) stay only when something went wrong.
  if (exitCode === 0 && process.env.BENCH_KEEP_LOGS !== '1') rmSync(logDir, { recursive: true, force: true });
}
process.exit(exitCode);
