import { afterAll, beforeAll, expect } from 'vitest';
import type { BffOptions } from '../../../src/index.js';
import { CLIENT_SECRET, SESSION_SECRET, startHarness, type Browser, type Harness } from '../../support/harness.js';
import { createFieldCipher } from '../../../src/session/encryption.js';
import { decodeRecord } from '../../../src/session/record.js';
import { outsideBasePath } from './resolve-path.js';
import { RawHttpClient, type RawAnswer } from './raw-http.js';

/**
 * How many generated inputs a run tries in all (CI: 10,000; `FUZZ_RUNS=100000 npm test -- test/fuzz` for more),
 * shared between the properties by weight.
 */
export const FUZZ_RUNS = Math.max(1, Number(process.env.FUZZ_RUNS ?? 10_000));

/** Runs for a property that takes `share` of the total. */
export function runsFor(share: number): number {
  return Math.max(1, Math.round(FUZZ_RUNS * share));
}

/**
 * A test timeout that grows with the number of runs: a bound for a machine several times slower than an idle one
 * (an input takes about 1-2 ms there), never a measure of speed.
 */
export function timeoutFor(runs: number, msPerRun = 15): number {
  return 60_000 + runs * msPerRun;
}

/** Prints how many inputs a property tried, so that CI's log shows the volume really run. */
export function report(name: string, tried: number, details = ''): void {
  console.log(`fuzz: ${name}: ${tried} generated inputs tried${details ? ` (${details})` : ''}`);
}

/** Headers a browser may send that must never reach the upstream (path, method or client overrides, credentials). */
const NEVER_FORWARDED = [
  'x-original-url', 'x-rewrite-url', 'x-http-method-override', 'x-http-method', 'x-method-override', 'x-real-ip', 'proxy-authorization', 'forwarded',
  'x-client-ip', 'client-ip', 'true-client-ip', 'cf-connecting-ip', 'fastly-client-ip', 'x-cluster-client-ip', 'x-forwarded', 'forwarded-for',
  'x-original-forwarded-for', 'x-forwarded-ssl', 'x-forwarded-scheme', 'x-url-scheme', 'front-end-https',
];

/** The base path the fuzzed upstream lives under, behind the `/api` mount. */
export const BASE_PATH = '/v1/base';

export function apisUnderBasePath(upstreamUrl: string) {
  return [{ mount: '/api', upstream: `${upstreamUrl}${BASE_PATH}` }];
}

export function portOf(url: string): number {
  return Number(new URL(url).port);
}

/**
 * What the fuzz checks after every input: the answer is not a 5xx and carries no secret, and nothing the upstream
 * received falls outside its base path under any server's reading. Secrets: the client secret, the cookie
 * signing secret, and every token the BFF holds (read from its Redis record and from what the upstream got).
 */
export class FuzzOracle {
  private readonly secrets = new Set<string>([CLIENT_SECRET, SESSION_SECRET]);
  private seen = 0;

  constructor(private readonly h: Harness) {}

  /** Reads the tokens of every session from Redis, to look for them in answers and logs. */
  async learnTokens(): Promise<void> {
    for (const key of await this.h.redisKeys()) {
      if (!key.startsWith(`${this.h.prefix}tok:`)) continue;
      const fields = await (this.h.redis as unknown as { hGetAll(k: string): Promise<Record<string, string>> }).hGetAll(key);
      const record = decodeRecord(fields, createFieldCipher([]));
      for (const token of [record?.refreshToken, record?.idToken, ...Object.values(record?.accessTokens ?? {}).map((t) => t.token)]) {
        if (token !== undefined) this.secrets.add(token);
      }
    }
    this.learnUpstreamTokens();
  }

  /** Problems with one answer (empty when it is fine). */
  check(answer: RawAnswer): string[] {
    const problems: string[] = [];
    if (answer.status >= 500) problems.push(`answered ${answer.status}: ${answer.body.toString('latin1').slice(0, 200)}`);
    problems.push(...this.leaks(answer.raw.toString('latin1'), 'the answer'));
    problems.push(...this.upstreamProblems());
    return problems;
  }

  /** What reached the upstream since the last call: anything outside the base path, or a browser credential. */
  upstreamProblems(): string[] {
    const problems: string[] = [];
    const requests = this.h.upstream.requests;
    for (; this.seen < requests.length; this.seen++) {
      const request = requests[this.seen];
      if (!request) continue;
      for (const { model, path } of outsideBasePath(request.url, BASE_PATH)) problems.push(`the upstream got ${JSON.stringify(request.url)}: ${path} for a ${model} server`);
      if (request.headers.cookie !== undefined) problems.push('the upstream got the browser\'s Cookie header');
      for (const name of NEVER_FORWARDED) if (request.headers[name] !== undefined) problems.push(`the upstream got the browser's ${name} header`);
      if (request.headers['x-forwarded-for'] !== '127.0.0.1') problems.push(`the upstream got X-Forwarded-For ${JSON.stringify(request.headers['x-forwarded-for'])}, not the client's address`);
      if (!/^Bearer ey[\w-]+\.[\w-]+\.[\w-]+$/.test(String(request.headers.authorization))) problems.push('the upstream got an Authorization header the BFF did not set');
      this.secrets.add(String(request.headers.authorization).slice('Bearer '.length));
    }
    // The fuzz sends many inputs; the record of what was checked need not stay.
    if (requests.length > 1_000) {
      requests.length = 0;
      this.seen = 0;
    }
    return problems;
  }

  /** Secrets in a piece of text (an answer, a log line). */
  leaks(text: string, where: string): string[] {
    const problems: string[] = [];
    for (const secret of this.secrets) if (secret.length >= 16 && text.includes(secret)) problems.push(`${where} contains a secret (${secret.slice(0, 6)}...)`);
    return problems;
  }

  /** Log lines (warnings and errors) that contain a secret. */
  logProblems(): string[] {
    return this.h.logs.flatMap((line, i) => this.leaks(line, `log line ${i}`));
  }

  private learnUpstreamTokens(): void {
    for (const request of this.h.upstream.requests) {
      const auth = request.headers.authorization;
      if (typeof auth === 'string') this.secrets.add(auth.slice('Bearer '.length));
    }
  }
}


/** What a fuzz file works with: one BFF instance, one browser logged in, a raw client, the oracle. */
export interface FuzzSession {
  h: Harness;
  browser: Browser;
  client: RawHttpClient;
  oracle: FuzzOracle;
  port: number;
  /** The browser's Cookie header. */
  cookie: string;
}

/**
 * For the enclosing describe block: starts the BFF (Redis-backed, `/api` in front of an upstream under
 * {@link BASE_PATH}) and logs one browser in, landing on `returnTo`. Read the fields inside the tests.
 */
export function useFuzzSession(bff: Partial<BffOptions> = {}, returnTo?: string): FuzzSession {
  const session = {} as FuzzSession;
  beforeAll(async () => {
    // Access tokens that outlive the longest run: an exchange would be a change of state the fuzz did not make.
    // The default token deadlines (the harness's short ones are for fault tests, and fail a start on a busy machine).
    session.h = await startHarness({ redis: true, apis: apisUnderBasePath, bff: { tokens: {}, ...bff }, auth0: { accessTokenTtl: 3_600 } });
    session.browser = session.h.browser();
    await session.browser.login(returnTo);
    expect((await session.browser.api('/api/items')).status).toBe(200);
    session.cookie = session.browser.jar.header(session.browser.url);
    session.oracle = new FuzzOracle(session.h);
    await session.oracle.learnTokens();
    session.port = portOf(session.h.urls[0] as string);
    session.client = new RawHttpClient(session.port);
  });
  afterAll(async () => {
    session.client?.close();
    await session.h?.close();
  });
  return session;
}

/** How many answers had each status (0: the connection was closed without one). */
export class StatusTally {
  private readonly counts = new Map<number, number>();
  add(answer: RawAnswer | undefined): void {
    const status = answer?.status ?? 0;
    this.counts.set(status, (this.counts.get(status) ?? 0) + 1);
  }
  toString(): string {
    return [...this.counts].sort(([a], [b]) => a - b).map(([s, n]) => `${s}: ${n}`).join(', ');
  }
}

/** Fails the property with every problem found. */
export function fail(problems: string[]): void {
  if (problems.length > 0) throw new Error(problems.join('; '));
}
