import { describe, expect, it } from 'vitest';
import { runProbe } from '../support/run-probe.js';

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
  return runProbe<ProbeResult>('test/support/fetch-client-probe.ts', { env }).result;
}

// src/idp/fetch-dispatcher.ts: why the calls to Auth0 must not share the proxy's HTTP client (BENCHMARKS.md, "Auth0's calls in a client of their own").
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
