/** What the probes run in child processes by the layout tests share (object-layouts-probe.ts, server-options-probe.ts). */
import { spawn } from 'node:child_process';
import { createBff, type Bff } from '../../src/index.js';

/**
 * An upstream answering `{}` to every request, in a process of its own, for the probes that count what happens to
 * this process's objects (its responses must not count among them). It ends with this process (its stdin closes),
 * however this one ends. Resolves to its URL and a way to stop it sooner.
 */
export async function startChildUpstream(): Promise<{ url: string; stop: () => void }> {
  const child = spawn(process.execPath, ['-e', `
    const server = require('node:http').createServer((req, res) => res.end('{}'));
    server.listen(0, '127.0.0.1', () => console.log(server.address().port));
    process.stdin.on('end', () => process.exit(0)).resume();
  `], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve) => child.stdout.once('data', (data: Buffer) => resolve(data.toString().trim())));
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill() };
}

/**
 * A BFF with one API (`/api`, to `upstream`, the `none` token policy: calls need no login) and an issuer nobody
 * answers at: its routes answer, its API calls reach the upstream, nothing else happens.
 */
export function probeBff(upstream: string): Bff {
  return createBff({
    issuer: 'http://127.0.0.1:9/',
    clientId: 'bff',
    clientSecret: 'probe-secret',
    baseURL: 'http://127.0.0.1:3000',
    session: { secrets: ['a-session-secret-of-at-least-32-characters'] },
    audience: 'https://api.example.com',
    apis: [{ mount: '/api', upstream, token: 'none' }],
    logger: { warn() {}, error() {} },
  });
}
