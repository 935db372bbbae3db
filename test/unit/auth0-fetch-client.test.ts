import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');

interface Through {
  npmUndici: number;
  other: number;
}

interface ProbeResult {
  fetchClient: 'node' | 'npm undici' | 'app';
  login: number;
  api: number;
  toEmulator: Through;
  toUpstream: Through;
}

/** A login and an API call in a child process of its own (test/support/fetch-client-probe.ts), and whose code sent what. */
function probe(env: Record<string, string> = {}): ProbeResult {
  const child = spawnSync(process.execPath, ['--import', 'tsx', 'test/support/fetch-client-probe.ts'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (child.status !== 0) throw new Error(`the probe failed (${child.status ?? child.signal}): ${child.stderr}`);
  const result = /^result: (.*)$/m.exec(child.stdout)?.[1];
  if (result === undefined) throw new Error(`the probe printed no result: ${child.stdout}`);
  return JSON.parse(result) as ProbeResult;
}

// src/idp/node-fetch.ts: why the calls to Auth0 must not share the proxy's HTTP client (BENCHMARKS.md, "Auth0's calls in a client of their own").
describe('the HTTP client of the process\'s fetch, and so of the calls to Auth0', () => {
  it('stays Node\'s own when the library is imported: the logins go through it, and only the proxied calls through npm undici', () => {
    const result = probe();
    expect(result).toMatchObject({ fetchClient: 'node', login: 302, api: 200 });
    expect(result.toEmulator.npmUndici).toBe(0);
    // The browser's steps through the login form and the BFF's own calls (discovery, the code exchange, the ORT exchange).
    expect(result.toEmulator.other).toBeGreaterThanOrEqual(4);
    expect(result.toUpstream).toEqual({ npmUndici: 1, other: 0 });
  });

  it('stays the one the app installed before importing the library', () => {
    const result = probe({ PROBE_APP_DISPATCHER: '1' });
    expect(result).toMatchObject({ fetchClient: 'app', login: 302, api: 200 });
    expect(result.toEmulator.other).toBe(0);
    expect(result.toEmulator.npmUndici).toBeGreaterThanOrEqual(4);
  });
});
