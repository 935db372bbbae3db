/**
 * `npm run check:consumers -- TARBALL [NODE...]`: installs the packed package (from `npm run check:package`) the
 * way apps do, and checks that they can use it. test/consumers holds the projects:
 *
 * - two installs: `express5` (Express 5, @types/node 24, oidc-provider) and `express4` (Express 4, @types/node 20,
 *   no oidc-provider and no type definitions of it);
 * - one TypeScript project per combination (`esm-nodenext`, `cjs-nodenext`, `esm-node16`, `cjs-node16`,
 *   `cjs-commonjs`, `bundler`), type-checking the same realistic use of both entries (test/consumers/shared) with
 *   `skipLibCheck: false`; `cjs-node16` must instead fail with TS1479 (TypeScript's node16 cannot require() an ES
 *   module: the README says so) and type-checks a dynamic import() variant. All of them on Express 5; on Express 4
 *   one CommonJS and one ES module project (how the package resolves does not depend on Express; its types with
 *   Express 4's do);
 * - at run time, on each NODE given (default: this one), `import` and `require()` of both entries: a login through
 *   the emulator on Express 5, and on Express 4 without oidc-provider, CookieJar, scriptedLogin and the message of
 *   startLocalAuth0(). Nothing may print a warning, except oidc-provider's "Unsupported runtime" on Node 20.
 *
 * The installs go to a temporary folder (KEEP_CONSUMERS=1 keeps it); the project tree is not touched.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const CONSUMERS = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'consumers');
const COMBINATIONS = ['esm-nodenext', 'cjs-nodenext', 'esm-node16', 'cjs-node16', 'cjs-commonjs', 'bundler'];
const INSTALLS = [
  { name: 'express5', combinations: COMBINATIONS, runtime: ['login-import.mjs', 'login-require.cjs'] },
  {
    name: 'express4',
    combinations: ['cjs-commonjs', 'esm-nodenext'],
    runtime: ['without-oidc-provider-import.mjs', 'without-oidc-provider-require.cjs'],
    withoutOidcProvider: true,
  },
];
/** tsc runs at once: one per core of the 2-core CI machine. */
const PARALLEL_TSC = 2;
/** The one warning a user on Node 20 gets, and can act on: Node 20 is past its end of life. */
const NODE20_WARNING = /^oidc-provider WARNING: Unsupported runtime\. Use Node\.js v22\.x LTS, or a later LTS release\.$/;

const [tarballArg, ...nodes] = process.argv.slice(2);
if (!tarballArg) {
  console.error('usage: check-consumers TARBALL [NODE...]  (TARBALL from npm run check:package)');
  process.exit(2);
}
const tarball = resolve(tarballArg);
if (nodes.length === 0) nodes.push(process.execPath);

const started = performance.now();
const elapsed = () => `[${Math.round((performance.now() - started) / 1000)} s]`;
let passed = 0;
const failures: string[] = [];
function outcome(name: string, ok: boolean, detail: string): void {
  if (ok) passed += 1;
  else failures.push(`${name}\n${detail}`);
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name} ${elapsed()}`);
}

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], cwd: string): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { stdout: '', stderr: '' };
    child.stdout.on('data', (chunk: Buffer) => (out.stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out.stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, ...out }));
  });
}

/** Runs the jobs, `limit` at a time, and reports their outcomes in order. */
async function inParallel(jobs: (() => Promise<() => void>)[], limit: number): Promise<void> {
  const reports: (() => void)[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < jobs.length) {
        const index = next++;
        reports[index] = await jobs[index]!();
      }
    }),
  );
  for (const report of reports) report();
}

async function setUp(workspace: string, install: string, combinations: string[]): Promise<string> {
  const dir = join(workspace, install);
  mkdirSync(dir, { recursive: true });
  cpSync(join(CONSUMERS, install, 'package.json'), join(dir, 'package.json'));
  cpSync(join(CONSUMERS, 'tsconfig.base.json'), join(dir, 'tsconfig.base.json'));
  cpSync(join(CONSUMERS, 'runtime'), join(dir, 'runtime'), { recursive: true });
  for (const combination of combinations) {
    cpSync(join(CONSUMERS, combination), join(dir, combination), { recursive: true });
    cpSync(join(CONSUMERS, 'shared'), join(dir, combination, 'src'), { recursive: true });
  }
  console.log(`== ${install}: npm install (the packed package and test/consumers/${install}/package.json) ${elapsed()}`);
  const installed = await run('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', tarball], dir);
  if (installed.status !== 0) throw new Error(`npm install in ${dir} failed:\n${installed.stdout}${installed.stderr}`);
  return dir;
}

async function typeCheck(dir: string, install: string, combinations: string[]): Promise<void> {
  const tsc = join(dir, 'node_modules', 'typescript', 'bin', 'tsc');
  const jobs = combinations.map((combination) => async () => {
    const checked = await run(process.execPath, [tsc, '-p', combination], dir);
    return () => outcome(`${install}/${combination}: tsc, skipLibCheck false`, checked.status === 0, checked.stdout + checked.stderr);
  });
  if (combinations.includes('cjs-node16')) {
    // What the README says of `module: node16` in a CommonJS file: a static import of either entry is TS1479.
    jobs.push(async () => {
      const refused = await run(process.execPath, [tsc, '-p', 'cjs-node16/tsconfig.static.json'], dir);
      const codes = new Set([...refused.stdout.matchAll(/error (TS\d+)/g)].map((m) => m[1]));
      const both = ['express-ort-bff', 'express-ort-bff/local-auth0'].every((entry) => refused.stdout.includes(`import("${entry}")`));
      return () =>
        outcome(
          `${install}/cjs-node16: a static import is refused with TS1479 only`,
          refused.status !== 0 && codes.size === 1 && codes.has('TS1479') && both,
          refused.stdout + refused.stderr,
        );
    });
  }
  await inParallel(jobs, PARALLEL_TSC);
}

async function runAt(dir: string, install: string, scripts: string[], withoutOidcProvider: boolean): Promise<void> {
  if (withoutOidcProvider) {
    const found = await run(process.execPath, ['-e', "import('oidc-provider').then(() => process.exit(1), () => process.exit(0))"], dir);
    outcome(`${install}: oidc-provider is not installed`, found.status === 0, 'oidc-provider resolves in the install');
  }
  for (const node of nodes) {
    const version = (await run(node, ['--version'], dir)).stdout.trim();
    const major = Number(/^v(\d+)/.exec(version)?.[1]);
    for (const script of scripts) {
      const ran = await run(node, [join('runtime', script)], dir);
      const warnings = ran.stderr.split('\n').filter((line) => line.trim() !== '' && !(major === 20 && NODE20_WARNING.test(line)));
      outcome(
        `${install}: node ${version} runtime/${script}${ran.stdout.trim() ? ` (${ran.stdout.trim()})` : ''}`,
        ran.status === 0 && warnings.length === 0,
        `exit ${ran.status}\n${ran.stdout}${ran.stderr}`,
      );
    }
  }
}

const workspace = mkdtempSync(join(tmpdir(), 'bff-consumers-'));
try {
  for (const { name, combinations, runtime, withoutOidcProvider } of INSTALLS) {
    const dir = await setUp(workspace, name, combinations);
    await typeCheck(dir, name, combinations);
    await runAt(dir, name, runtime, withoutOidcProvider === true);
  }
} finally {
  if (process.env.KEEP_CONSUMERS === '1') console.log(`(kept ${workspace}: ${readdirSync(workspace).join(', ')})`);
  else rmSync(workspace, { recursive: true, force: true });
}
for (const failure of failures) console.error(`\nFAIL ${failure}`);
console.log(`consumers: ${passed} checks passed, ${failures.length} failed`);
process.exit(failures.length === 0 ? 0 : 1);
