/**
 * What the doctor's topic tests share: an application of the local Auth0 emulator set up right, the example's
 * environment for it, and a node:http server on 127.0.0.1 for what the emulator cannot be (a proxy, a redirect,
 * another tenant).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { DoctorReport } from '../../src/doctor/doctor.js';
import { formatReport, formatReportJson } from '../../src/doctor/report.js';
import type { LocalAuth0Client } from '../../src/local-auth0/index.js';

export const BASE = 'https://app.example.com';
export const API = 'https://api.example.com';
export const SECRET = randomBytes(24).toString('base64url');
export const SESSION_SECRET = randomBytes(32).toString('base64url');

export const app = (clientId: string, overrides: Partial<LocalAuth0Client> = {}): LocalAuth0Client => ({
  clientId,
  clientSecret: SECRET,
  tokenEndpointAuthMethod: 'client_secret_post',
  redirectUris: [`${BASE}/auth/callback`],
  postLogoutRedirectUris: [`${BASE}/`],
  backchannelLogoutUri: `${BASE}/auth/backchannel-logout`,
  ...overrides,
});

/** The example's environment for the application `good` of the tenant at `issuer`. */
export function envFor(issuer: string, overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return { ISSUER_URL: issuer, CLIENT_ID: 'good', CLIENT_SECRET: SECRET, AUDIENCE: API, BASE_URL: BASE, SESSION_SECRET, ...overrides };
}

/** The findings that are not ok or skipped, as `status id`. */
export function problems(report: DoctorReport): string[] {
  return report.findings.filter((f) => f.status === 'warn' || f.status === 'fail').map((f) => `${f.status} ${f.id}`);
}

/** The report as the command prints it, as text and as JSON. */
export function printed(report: DoctorReport): string {
  return formatReport(report) + formatReportJson(report);
}

export function finding(report: DoctorReport, id: string) {
  const found = report.findings.filter((f) => f.id === id);
  if (found.length !== 1) throw new Error(`expected one finding ${id}, got ${found.length}:\n${formatReport(report)}`);
  return found[0]!;
}

/** The tenant at the fetch layer, some requests answered by `answer` (undefined: the real answer). */
export function tenantWith(answer: (url: URL, init: RequestInit | undefined) => Response | undefined | Promise<Response | undefined>): typeof fetch {
  return (async (url: string | URL | Request, init?: RequestInit) => (await answer(new URL(String(url)), init)) ?? fetch(url, init)) as typeof fetch;
}

export const jsonAnswer = (body: unknown, status: number) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
export const htmlAnswer = (html: string, status: number) => new Response(html, { status, headers: { 'content-type': 'text/html' } });

/** A JWT as Auth0 issues Management API tokens (its signature is not checked by the doctor). */
export function unsignedJwt(header: object, claims: object): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part(header)}.${part(claims)}.${Buffer.from('signature').toString('base64url')}`;
}

export interface LocalServer {
  readonly url: string;
  close(): Promise<void>;
}

/** A server on 127.0.0.1 answering with `handler`; `url` ends with `/`. */
export async function localServer(handler: (req: IncomingMessage, res: ServerResponse, url: string) => void): Promise<LocalServer> {
  let url = '';
  const server = createServer((req, res) => handler(req, res, url));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
