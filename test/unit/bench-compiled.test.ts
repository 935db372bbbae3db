import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { compiledScript, type Runtime } from '../../bench/lib/compiled.js';

// Which file a bench server runs when the bench runs compiled JavaScript (the compile itself, with tsc, and the
// servers running on it are covered by test/bench/bench-smoke.test.ts).
describe('compiledScript', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  function runtimeWith(files: string[]): Extract<Runtime, { kind: 'compiled' }> {
    const root = mkdtempSync(join(tmpdir(), 'bench-checkout-'));
    const outDir = mkdtempSync(join(tmpdir(), 'bench-compiled-'));
    dirs.push(root, outDir);
    for (const file of files) {
      mkdirSync(join(outDir, file, '..'), { recursive: true });
      writeFileSync(join(outDir, file), 'export {};\n');
    }
    return { kind: 'compiled', root, outDir };
  }

  it('maps a script named relative to the checkout to its compiled JavaScript', () => {
    const runtime = runtimeWith(['example/start.js', 'bench/servers/ceiling.js']);
    expect(compiledScript(runtime, 'example/start.ts')).toBe(join(runtime.outDir, 'example/start.js'));
    expect(compiledScript(runtime, 'bench/servers/ceiling.ts')).toBe(join(runtime.outDir, 'bench/servers/ceiling.js'));
  });

  it('maps an absolute path inside the checkout (a worktree of another commit, in --ab) the same way', () => {
    const runtime = runtimeWith(['example/start.js']);
    expect(compiledScript(runtime, join(runtime.root, 'example/start.ts'))).toBe(join(runtime.outDir, 'example/start.js'));
  });

  it('refuses a script that was not compiled, naming what is', () => {
    const runtime = runtimeWith(['example/start.js']);
    expect(() => compiledScript(runtime, 'bench/soak/strict-upstream.ts')).toThrow(/bench\/soak\/strict-upstream\.ts was not compiled for the bench \(only src, example, bench\/servers are\)/);
  });
});
