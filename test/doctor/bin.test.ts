import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { DoctorReport } from '../../src/doctor/doctor.js';
import { startLocalAuth0, type LocalAuth0 } from '../../src/local-auth0/index.js';

/**
 * `npx express-ort-bff doctor` as a user runs it: the package's `bin` entry, compiled as `npm run build` compiles
 * it, started through its shebang as a process of its own, reading its settings from its environment.
 * The build goes to a folder of this test under node_modules/.cache (so the package's dependencies resolve as
 * they would for an installed copy), never to the project's dist/.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PACKAGE = `${ROOT}node_modules/.cache/express-ort-bff-bin-test-${process.pid}-${randomBytes(4).toString('hex')}/`;
const BASE = 'https://app.example.com';
const SECRET = randomBytes(24).toString('base64url');
const SESSION_SECRET = randomBytes(32).toString('base64url');

let auth0: LocalAuth0;
let bin: string;

beforeAll(async () => {
  // What the package publishes: its package.json and dist/, compiled with the build's own settings.
  const manifest = JSON.parse(await readFile(`${ROOT}package.json`, 'utf8')) as { bin: Record<string, string> };
  await mkdir(PACKAGE, { recursive: true });
  await writeFile(`${PACKAGE}package.json`, JSON.stringify(manifest));
  await writeFile(
    `${PACKAGE}tsconfig.json`,
    JSON.stringify({
      extends: `${ROOT}tsconfig.build.json`,
      compilerOptions: { rootDir: `${ROOT}src`, outDir: `${PACKAGE}dist`, declaration: false, sourceMap: false, inlineSources: false },
      include: [],
      // The bin entry and what it imports; the file named by the bin field is checked below to be this one.
      files: [`${ROOT}src/doctor/cli.ts`],
    }),
  );
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  await promisify(execFile)(process.execPath, [tsc, '-p', `${PACKAGE}tsconfig.json`]);
  bin = new URL(manifest.bin['express-ort-bff']!, `file://${PACKAGE}`).pathname;
  // npm makes a bin executable when it links it (npx / npm install); so does this test.
  await chmod(bin, 0o755);

  const app = { clientSecret: SECRET, tokenEndpointAuthMethod: 'client_secret_post' as const, redirectUris: [`${BASE}/auth/callback`], postLogoutRedirectUris: [`${BASE}/`], backchannelLogoutUri: `${BASE}/auth/backchannel-logout` };
  auth0 = await startLocalAuth0({
    clients: [{ clientId: 'good', ...app }, { clientId: 'no-refresh-grant', ...app, grantTypes: ['authorization_code'] }],
    users: [],
    apis: [{ audience: 'https://api.example.com' }],
  });
}, 120_000);
afterAll(async () => {
  await auth0?.stop();
  await rm(PACKAGE, { recursive: true, force: true });
});

/** Runs the bin with `args` and only the given environment (and PATH, for the shebang's `env node`). */
function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function tenantEnv(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    ISSUER_URL: auth0.issuer,
    CLIENT_ID: 'good',
    CLIENT_SECRET: SECRET,
    AUDIENCE: 'https://api.example.com',
    BASE_URL: BASE,
    SESSION_SECRET,
    AUTH0_MANAGEMENT_TOKEN: auth0.admin.issueManagementToken(),
    ...overrides,
  };
}

describe('the express-ort-bff bin', () => {
  it('is the built doctor command, an ES module started through a node shebang', async () => {
    expect(bin).toBe(`${PACKAGE}dist/doctor/cli.js`);
    expect((await readFile(bin, 'utf8')).split('\n')[0]).toBe('#!/usr/bin/env node');
  });

  it('checks a tenant set up right: the report on stdout, exit status 0', async () => {
    const env = tenantEnv();
    const { code, stdout, stderr } = await run(['doctor'], env);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^express-ort-bff doctor\n {2}issuer {3}http:\/\/127\.0\.0\.1:\d+\/\n/);
    expect(stdout).toContain('\nClient credentials\n  ok    Auth0 accepts the client\'s credentials (client_secret_post)\n');
    expect(stdout).toMatch(/\n0 failed, 0 warnings, 22 ok: nothing to fix\.\n$/);
    for (const secret of [SECRET, SESSION_SECRET, env.AUTH0_MANAGEMENT_TOKEN!]) expect(stdout).not.toContain(secret);
  });

  it('exits 1 when a check fails, and prints JSON with --json', async () => {
    const { code, stdout } = await run(['doctor', '--json'], tenantEnv({ CLIENT_ID: 'no-refresh-grant' }));
    expect(code).toBe(1);
    const report = JSON.parse(stdout) as DoctorReport;
    expect(report.findings.filter((f) => f.status === 'fail').map((f) => f.id)).toEqual(['client.grant-types']);
  });

  it('exits 2 with its usage for an unknown command', async () => {
    const { code, stdout, stderr } = await run(['check'], {});
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^Unknown command: check\.\n\nUsage: express-ort-bff doctor/);
  });
});
