import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '../..');

export interface ProbeOptions {
  /** Node's flags before `--import tsx` (for example `--allow-natives-syntax`). */
  nodeArgs?: string[];
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** Where the result is in what the probe printed (its first group); default: `result: {...}` to the line's end. */
  result?: RegExp;
}

/**
 * Runs a probe of test/support in a child `node --import tsx`, a process where nothing else has run: for what
 * depends on the whole process (the hidden classes V8 gave its objects, the order its modules loaded in). Throws
 * when the probe fails or prints no result. Returns its result, parsed from JSON, and all it printed.
 */
export function runProbe<T>(script: string, options: ProbeOptions = {}): { result: T; stdout: string } {
  const child = spawnSync(process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', script], {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (child.status !== 0) throw new Error(`the probe failed (${child.status ?? child.signal}): ${child.stderr}`);
  const result = (options.result ?? /result: (\{.*\})/).exec(child.stdout)?.[1];
  if (result === undefined) throw new Error(`the probe printed no result: ${child.stdout}`);
  return { result: JSON.parse(result) as T, stdout: child.stdout };
}
