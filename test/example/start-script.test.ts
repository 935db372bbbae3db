import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { npmStartArgs, npmStartNodeOptions } from '../../bench/lib/procs.js';

// README, "V8's polymorphic limit": npm start raises it; the bench gives every server npm start's options.
describe('npm start', () => {
  it('runs the example with node and V8\'s polymorphic limit raised to 16, the only option before the entry', () => {
    expect(npmStartNodeOptions()).toEqual(['--max-valid-polymorphic-map-count=16']);
    expect(npmStartArgs()).toEqual(['--max-valid-polymorphic-map-count=16', '--import', 'tsx', 'example/start.ts']);
  });

  it('gives options this node accepts: node refuses to start on a V8 flag it does not know', () => {
    // execArgv ends with -e and its code.
    const run = spawnSync(process.execPath, [...npmStartNodeOptions(), '-e', 'process.stdout.write(process.execArgv.slice(0, -2).join(" "))'], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toBe('--max-valid-polymorphic-map-count=16');
  });
});
