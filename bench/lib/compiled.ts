/**
 * The bench servers as production runs them: JavaScript compiled by tsc (what `npm run build` ships), started with
 * plain `node`, instead of their TypeScript through tsx (esbuild's transform and tsx's loader in every server,
 * which a deployment never has). Measured side by side (BENCHMARKS.md, "Compiled JavaScript instead of tsx"), the
 * ceiling costs about 4 % less CPU per request compiled and the example 1-2 % less: the ratios read as a
 * deployment would see them.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

/** How a bench server runs: its TypeScript through tsx, or the JavaScript tsc compiled from it. */
export type Runtime =
  | { readonly kind: 'tsx' }
  | { readonly kind: 'compiled'; /** The checkout the scripts are in. */ readonly root: string; /** Where its JavaScript is. */ readonly outDir: string };

/** What a server needs: the library, the example and the bench's own servers (no tests). */
const SOURCES = ['src', 'example', 'bench/servers'];

/**
 * Compiles `root`'s src/, example/ and bench/servers/ with that checkout's tsconfig.json into `outDir`, which must
 * lie under a directory whose node_modules holds the dependencies (node resolves packages from there upwards).
 * Also copies what the example reads from disk (its page) and package.json (the module type, and the version
 * the telemetry reports). Throws with tsc's output when it fails.
 */
export function compile(root: string, outDir: string): Runtime {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const project = join(outDir, 'tsconfig.bench.json');
  writeFileSync(project, JSON.stringify({
    extends: join(root, 'tsconfig.json'),
    compilerOptions: { rootDir: root, outDir, noEmit: false, declaration: false, sourceMap: false, incremental: false },
    include: SOURCES.map((dir) => join(root, dir)),
    exclude: [],
  }));
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', project], { cwd: root, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`tsc could not compile ${root} for the bench:\n${result.stdout}${result.stderr}`);
  cpSync(join(root, 'package.json'), join(outDir, 'package.json'));
  const spa = join(root, 'example/spa');
  if (existsSync(spa)) cpSync(spa, join(outDir, 'example/spa'), { recursive: true });
  return { kind: 'compiled', root, outDir };
}

/** The file `node` runs for a script named as in the checkout (`example/start.ts`, relative or absolute). */
export function compiledScript(runtime: Extract<Runtime, { kind: 'compiled' }>, script: string): string {
  const path = relative(runtime.root, resolve(runtime.root, script));
  const file = join(runtime.outDir, path.replace(/\.ts$/, '.js'));
  if (!existsSync(file)) throw new Error(`${script} was not compiled for the bench (only ${SOURCES.join(', ')} are)`);
  return file;
}

