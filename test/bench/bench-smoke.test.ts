import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url).pathname;
const SMOKE = join(ROOT, 'bench/results/smoke.json');
const CONTESTANTS = ['direct', 'ceiling', 'appCeiling', 'plainProxy', 'plainProxyDefaults', 'naiveBff', 'library', 'library1000Sessions', 'libraryDpop'];

function runSmoke(): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--smoke'], {
      cwd: ROOT,
      env: { ...process.env, BENCH_SMOKE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.once('exit', (code) => resolve({ code, output }));
  });
}

describe('npm run bench -- --smoke', () => {
  it('runs every contestant, storm and memory measurement, and writes latest-shaped results', async () => {
    const started = Date.now();
    const { code, output } = await runSmoke();
    expect(code, output).toBe(0);
    expect(statSync(SMOKE).mtimeMs).toBeGreaterThanOrEqual(started - 1_000);

    const results = JSON.parse(readFileSync(SMOKE, 'utf8'));
    expect(results.mode).toBe('smoke');
    expect(results.machine).toMatchObject({ nproc: expect.any(Number), cpuModel: expect.any(String), node: process.version });
    // The servers ran the JavaScript tsc compiled, as a deployment runs the built package, not TypeScript through tsx.
    expect(results.machine.runtime).toBe('compiled');
    expect(output).toMatch(/compiled src\/, example\/ and bench\/servers\/ with tsc/);
    expect(Object.keys(results.contestants).sort()).toEqual([...CONTESTANTS].sort());
    for (const key of CONTESTANTS) {
      const c = results.contestants[key];
      for (const field of ['rps', 'p50Ms', 'p99Ms', 'unloadedP50Ms', 'vsDirect', 'vsPlainProxy', 'vsCeiling', 'p99VsCeiling', 'unloadedVsCeilingMs', 'sessionReadsPer1000']) {
        expect(Number.isFinite(c[field]), `${key}.${field} = ${c[field]}`).toBe(true);
      }
      expect(c.rps, key).toBeGreaterThan(0);
      // Every request of every contestant was answered 200 (the library's included: its sessions are real).
      expect(c.errors, `${key} had errors`).toBe(0);
    }
    expect(results.contestants.direct.vsDirect).toBe(1);
    expect(results.contestants.plainProxy.vsPlainProxy).toBe(1);
    expect(results.contestants.ceiling.vsCeiling).toBe(1);
    expect(results.contestants.ceiling.unloadedVsCeilingMs).toBe(0);
    // How many of the library's calls read their session from Redis, round by round, for each of its rows.
    expect(output).toMatch(/session reads sent to Redis \(HMGET\) while loaded[\s\S]*this library \(example BFF, Redis\), 20 sessions +\d+ +\d+\.\d\n/);
    // And against the ceiling sending what it sends, in a process that also runs an app.
    expect(results.againstAppCeiling.vsAppCeiling).toBeGreaterThan(0);
    expect(results.againstAppCeiling.p99VsAppCeiling).toBeGreaterThan(0);
    expect(output).toMatch(/req\/s, library \/ that ceiling +\d/);
    // The targets include how close the library comes to the ceiling, read from the two in adjacent slots (A B B A),
    // and the library's rounds over all its sessions against its one-session rounds, the same way.
    expect(results.targets.map((t: { target: string }) => t.target)).toEqual(expect.arrayContaining([
      expect.stringMatching(/req\/s >= 0\.9x ceiling \(one at a time, adjacent slots, median of 1 pairs\)/),
      expect.stringMatching(/rounds over 20 sessions within 10 % of 1-session rounds \(req\/s, adjacent slots/),
    ]));
    expect(results.adjacentSlots.ceiling).toMatchObject({ contestants: ['library', 'ceiling'], pairs: [expect.any(Object)], errors: 0 });
    expect(results.adjacentSlots.sessions).toMatchObject({ contestants: ['library1000Sessions', 'library'], pairs: [expect.any(Object)], errors: 0 });
    // And, not a target, the library against the example in a process with one user logged in.
    expect(results.adjacentSlots.served).toMatchObject({ contestants: ['library', 'libraryFresh'], pairs: [expect.any(Object)], errors: 0 });
    const reqsTarget = results.targets.find((t: { target: string }) => /req\/s >= 0\.9x ceiling/.test(t.target));
    expect(reqsTarget.value).toBe(results.adjacentSlots.ceiling.rpsRatio);
    expect(output).toMatch(/library and ceiling in adjacent slots +#1 ABBA +median\n/);

    // The library and the plain proxy loaded at the same time.
    expect(results.headToHead.contestants).toEqual(['library', 'plainProxy']);
    expect(results.headToHead.ratio).toBeGreaterThan(0);
    // The library with DPoP on and off, loaded at the same time: what a proof per call costs.
    expect(results.headToHeadDpop.contestants).toEqual(['libraryDpop', 'library']);
    expect(results.headToHeadDpop.cpuRatio).toBeGreaterThan(0);

    expect(results.storms).toHaveLength(12);
    for (const storm of results.storms) {
      expect(storm).toMatchObject({ requests: expect.any(Number), instances: expect.any(Number), exchanges: expect.any(Number), msToAllAnswered: expect.any(Number) });
      // Correctness, not speed: one exchange per expiry, every request answered.
      expect(storm.exchanges, JSON.stringify(storm)).toBe(1);
      expect(storm.allAnswered200).toBe(true);
    }
    // Each case with the emulator on loopback, and with its token endpoint 100 ms away.
    expect(results.storms.map((s: { requests: number; instances: number; idpDelayMs: number }) => `${s.requests}x${s.instances}+${s.idpDelayMs}`).sort())
      .toEqual(['1x1+0', '1x1+100', '1x2+0', '1x2+100', '200x1+0', '200x1+100', '200x2+0', '200x2+100', '20x1+0', '20x1+100', '20x2+0', '20x2+100']);

    // WebSockets: echo throughput direct and through the BFF, and every socket closed with 4401 at logout, on both instances.
    expect(results.websocket.throughput.map((t: { size: number }) => t.size)).toEqual([128, 16_384]);
    for (const t of results.websocket.throughput) {
      for (const key of ['direct', 'bff']) {
        expect(t.targets[key].messagesPerSec, `${key} ${t.size} B`).toBeGreaterThan(0);
        expect(t.targets[key].errors, `${key} ${t.size} B`).toBe(0);
      }
    }
    expect(results.websocket.sessionEnd).toMatchObject({ allClosedWith4401: true, sameInstance: { maxMs: expect.any(Number) }, otherInstance: { maxMs: expect.any(Number) } });

    expect(results.memory.sessions).toBeGreaterThan(0);
    expect(results.memory.redisBytesPerSession).toBeGreaterThan(0);
    expect(Number.isFinite(results.memory.heapGrowthBytes)).toBe(true);
    expect(results.memory.redisKeysLeftAfterEnd).toBe(0);
  }, 120_000);
});
