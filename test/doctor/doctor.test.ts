import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { BffOptions } from '../../src/config/options.js';
import { runCommand } from '../../src/doctor/command.js';
import { formatReport, formatReportJson, runDoctor, type DoctorReport } from '../../src/index.js';
import { startLocalAuth0, type LocalAuth0 } from '../../src/local-auth0/index.js';
import { API, BASE, SECRET, SESSION_SECRET, app } from './fixtures.js';

/**
 * The doctor against the local Auth0 emulator, set up right once and then wrong in one way at a time: each
 * misconfiguration must give exactly its own finding (nothing else warns or fails), and no report may contain
 * a secret. BASE_URL is https: the doctor never calls the BFF, so it need not run.
 */
let auth0: LocalAuth0;
let otherIssuer: LocalAuth0;
let otherIssuerUrl: string;
let managementToken: string;
const secrets: string[] = [SECRET, SESSION_SECRET];
const BILLING = 'https://billing.example.com';

beforeAll(async () => {
  auth0 = await startLocalAuth0({
    clients: [
      app('good'),
      app('no-refresh-grant', { grantTypes: ['authorization_code'] }),
      app('no-code-grant', { grantTypes: ['refresh_token'] }),
      app('no-callback', { redirectUris: ['https://elsewhere.example.com/auth/callback'] }),
      app('no-logout-url', { postLogoutRedirectUris: [] }),
      app('no-backchannel', { backchannelLogoutUri: undefined }),
      app('narrow-initiators', { backchannelLogoutInitiators: ['rp-logout', 'idp-logout', 'session-expired'] }),
      app('no-email-initiator', { backchannelLogoutInitiators: ['rp-logout', 'idp-logout', 'session-expired', 'session-revoked', 'password-changed', 'account-deleted'] }),
      app('wildcard', { redirectUris: ['https://*.example.com/auth/callback'] }),
      // Its refresh token policies name the login's API only: an exchange for BILLING gets a token for API.
      app('narrow-policies', { refreshTokenPolicies: [{ audience: API }] }),
      app('path-wildcard', { redirectUris: [`${BASE}/*/callback`] }),
      app('tld-wildcard', { redirectUris: ['https://*.com/auth/callback'], postLogoutRedirectUris: ['https://*.com/'], backchannelLogoutUri: 'https://example.com/auth/backchannel-logout' }),
      app('local', {
        redirectUris: ['http://localhost:3000/auth/callback'],
        postLogoutRedirectUris: ['http://localhost:3000/'],
        backchannelLogoutUri: 'http://localhost:3000/auth/backchannel-logout',
      }),
    ],
    users: [],
    apis: [
      { audience: API },
      { audience: 'https://offline-only.example.com', allowOnlineAccess: false },
      { audience: 'https://ephemeral.example.com', allowOnlineAccessWithEphemeralSessions: true },
      { audience: BILLING, scopes: ['read:invoices'] },
    ],
    accessTokenTtl: 86_400,
  });
  managementToken = auth0.admin.issueManagementToken();
  secrets.push(managementToken);
  // A tenant whose discovery document names another issuer (localhost) than the URL it is reached at (127.0.0.1).
  for (let attempt = 1; ; attempt += 1) {
    const port = await closedPort();
    try {
      otherIssuer = await startLocalAuth0({ port, issuerUrl: `http://localhost:${port}/`, clients: [app('good')], users: [] });
      otherIssuerUrl = `http://127.0.0.1:${port}/`;
      break;
    } catch (error) {
      // Another process took the port in the meantime: take another one.
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === 5) throw error;
    }
  }
});
afterAll(async () => {
  await auth0?.stop();
  await otherIssuer?.stop();
});

function env(overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    ISSUER_URL: auth0.issuer,
    CLIENT_ID: 'good',
    CLIENT_SECRET: SECRET,
    AUDIENCE: API,
    BASE_URL: BASE,
    SESSION_SECRET,
    AUTH0_MANAGEMENT_TOKEN: managementToken,
    ...overrides,
  };
}

/** Runs the doctor and checks what every report must satisfy: no secret in it, in text or JSON. */
async function doctor(input: Parameters<typeof runDoctor>[0]): Promise<DoctorReport> {
  const report = await runDoctor(input);
  const printed = formatReport(report) + formatReportJson(report);
  const given = [input.env?.CLIENT_SECRET, input.env?.SESSION_SECRET, input.env?.AUTH0_MANAGEMENT_TOKEN, input.managementToken];
  for (const secret of [...secrets, ...given]) {
    if (secret !== undefined && secret.length >= 8) expect(printed).not.toContain(secret);
  }
  return report;
}

/** The findings that are not ok or skipped, as `status id`. */
function problems(report: DoctorReport): string[] {
  return report.findings.filter((f) => f.status === 'warn' || f.status === 'fail').map((f) => `${f.status} ${f.id}`);
}

function finding(report: DoctorReport, id: string) {
  const found = report.findings.filter((f) => f.id === id);
  expect(found, `finding ${id}`).toHaveLength(1);
  return found[0]!;
}

/**
 * The tenant as the doctor reaches it, with some requests answered here instead (a fault the emulator cannot
 * make, at the fetch layer): `answer` gives the answer, or undefined to let the emulator answer.
 */
function tenantWith(answer: (url: URL, init: RequestInit | undefined) => Response | undefined | Promise<Response | undefined>): typeof fetch {
  return (async (url: string | URL | Request, init?: RequestInit) => (await answer(new URL(String(url)), init)) ?? fetch(url, init)) as typeof fetch;
}

const jsonAnswer = (body: unknown, status: number, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

/** What a form-encoded token request asks for. */
const grantOf = (init: RequestInit | undefined) => new URLSearchParams(String(init?.body ?? '')).get('grant_type');

/** A private JWK for DPOP_PRIVATE_KEY, and its `d` (the secret part). */
function dpopKey(): { json: string; d: string } {
  const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return { json: JSON.stringify(jwk), d: jwk.d! };
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('a tenant set up right', () => {
  it('passes every check, changes nothing in the tenant, and says what it checked', async () => {
    auth0.admin.resetCounts();
    const report = await doctor({ env: env() });
    expect(problems(report)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.counts).toEqual({ ok: report.findings.length, warn: 0, fail: 0, skip: 0 });
    expect(report.target).toEqual({ issuer: auth0.issuer, clientId: 'good', audiences: [API], baseURL: BASE });
    expect(report.findings.map((f) => f.id)).toEqual([
      'config.options', 'config.base-url', 'config.cookie', 'config.scope', 'config.session-secret',
      'discovery.document', 'discovery.issuer', 'discovery.authorization_endpoint', 'discovery.token_endpoint',
      'discovery.jwks_uri', 'discovery.revocation_endpoint', 'discovery.end_session_endpoint', 'discovery.backchannel-logout',
      'client.credentials',
      'management.access', 'api.online-access', 'api.ephemeral-sessions', 'client.grant-types', 'client.callback-url',
      'client.logout-url', 'client.backchannel-url', 'client.backchannel-initiators',
    ]);
    expect(finding(report, 'config.cookie').title).toBe('Session cookie __Host-bff: Secure; HttpOnly; SameSite=Lax');
    expect(finding(report, 'config.scope').title).toBe('Scope asked at login: openid online_access profile email');
    // Two token requests that failed, nothing issued, no session started.
    expect(auth0.admin.counts().token).toEqual({ authorization_code: { ok: 0, error: 1 }, refresh_token: { ok: 0, error: 1 } });
    expect(auth0.admin.tokens()).toEqual([]);
    expect(auth0.admin.sessions()).toEqual([]);
  });

  it('accepts a callback URL registered with a subdomain wildcard', async () => {
    expect(problems(await doctor({ env: env({ CLIENT_ID: 'wildcard' }) }))).toEqual([]);
  });

  it('accepts a timeout as long as Node\'s timers keep', async () => {
    expect(problems(await doctor({ env: env(), timeout: 2_147_483_647 }))).toEqual([]);
  });

  it('without a Management API token, checks the grant types through the token endpoint and says what it skipped', async () => {
    const report = await doctor({ env: env({ AUTH0_MANAGEMENT_TOKEN: undefined }) });
    expect(problems(report)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(finding(report, 'client.grant-types')).toMatchObject({ status: 'ok', section: 'client' });
    expect(finding(report, 'management.access')).toMatchObject({ status: 'skip', fix: expect.stringContaining('AUTH0_MANAGEMENT_TOKEN') });
  });
});

describe('one finding per misconfiguration', () => {
  it.each([
    ['a wrong client secret', { CLIENT_SECRET: 'not-the-secret-of-this-client' }, ['fail client.credentials'], /refuses the client's credentials \(it answered 401 access_denied, with client_secret_post\)/],
    ['an API without online access', { AUDIENCE: 'https://offline-only.example.com' }, ['fail api.online-access'], /does not allow online access/],
    ['an API with ephemeral sessions', { AUDIENCE: 'https://ephemeral.example.com' }, ['fail api.ephemeral-sessions'], /ephemeral sessions/],
    ['an unknown API', { AUDIENCE: 'https://unknown.example.com' }, ['fail api.exists'], /no API with the identifier https:\/\/unknown\.example\.com/],
    ['an application without the refresh_token grant', { CLIENT_ID: 'no-refresh-grant' }, ['fail client.grant-types'], /does not allow the refresh_token grant/],
    ['the callback URL missing', { CLIENT_ID: 'no-callback' }, ['fail client.callback-url'], /https:\/\/app\.example\.com\/auth\/callback is not in Allowed Callback URLs/],
    ['a wildcard in the callback URL\'s path, which Auth0 does not honour', { CLIENT_ID: 'path-wildcard' }, ['fail client.callback-url'], /https:\/\/app\.example\.com\/auth\/callback is not in Allowed Callback URLs/],
    ['the logout URL missing', { CLIENT_ID: 'no-logout-url' }, ['fail client.logout-url'], /https:\/\/app\.example\.com\/ is not in Allowed Logout URLs/],
    ['the back-channel logout URI missing', { CLIENT_ID: 'no-backchannel' }, ['warn client.backchannel-url'], /back-channel logout URI https:\/\/app\.example\.com\/auth\/backchannel-logout is not registered/],
    ['narrow back-channel initiators', { CLIENT_ID: 'narrow-initiators' }, ['warn client.backchannel-initiators'], /not sent when a session ends by: session-revoked, password-changed, account-deleted, email-identifier-changed$/],
    ['back-channel logout not sent when a user\'s email identifier changes', { CLIENT_ID: 'no-email-initiator' }, ['warn client.backchannel-initiators'], /not sent when a session ends by: email-identifier-changed$/],
    ['a Management API token it does not know', { AUTH0_MANAGEMENT_TOKEN: 'expired-or-foreign-token' }, ['fail management.access'], /refused the token \(401 Invalid token\)/],
    ['a short session secret', { SESSION_SECRET: 'short' }, ['fail env.SESSION_SECRET'], /SESSION_SECRET must be at least 32 characters long/],
    ['a placeholder session secret', { SESSION_SECRET: '0123456789'.repeat(4).replace(/9/g, '8') }, ['warn config.session-secret'], /looks like a placeholder/],
    ['the client secret as session secret', { SESSION_SECRET: SECRET }, ['warn config.session-secret'], /The session secret is the client secret/],
    ['plain http on a public host', { BASE_URL: 'http://app.example.com' }, ['fail env.BASE_URL'], /BASE_URL must use https/],
    ['plain http on loopback', { BASE_URL: 'http://localhost:3000', CLIENT_ID: 'local' }, ['warn config.base-url'], /plain http/],
    ['no tenant at all (demo mode)', { ISSUER_URL: undefined }, ['fail env.ISSUER_URL'], /ISSUER_URL \(or AUTH0_DOMAIN\) is not set/],
  ])('%s', async (_name, overrides, expected, title) => {
    const report = await doctor({ env: env(overrides) });
    expect(problems(report)).toEqual(expected);
    const [status, id] = expected[0]!.split(' ');
    const found = finding(report, id!);
    expect(found.title).toMatch(title);
    expect(found.fix).toEqual(expect.any(String));
    expect(report.ok).toBe(status !== 'fail');
  });

  it('an unreachable tenant: the discovery document fails and nothing else is tried', async () => {
    const report = await doctor({ env: env({ ISSUER_URL: `http://127.0.0.1:${await closedPort()}/` }) });
    expect(problems(report)).toEqual(['fail discovery.document']);
    expect(finding(report, 'discovery.document').title).toMatch(/Cannot read http:\/\/127\.0\.0\.1:\d+\/\.well-known\/openid-configuration: ECONNREFUSED/);
    expect(finding(report, 'client.credentials').status).toBe('skip');
    expect(report.ok).toBe(false);
  });

  it('an issuer mismatch: the document names another issuer, and the BFF\'s client cannot use it', async () => {
    const report = await doctor({ env: env({ ISSUER_URL: otherIssuerUrl, AUTH0_MANAGEMENT_TOKEN: undefined }) });
    expect(problems(report)).toEqual(['fail discovery.issuer']);
    expect(finding(report, 'discovery.issuer')).toMatchObject({
      title: `The document names the issuer "${otherIssuer.issuer}", not ${otherIssuerUrl}`,
      fix: `Set ISSUER_URL to ${otherIssuer.issuer} exactly (a custom domain is its own issuer).`,
    });
    expect(finding(report, 'client.credentials').status).toBe('skip');
  });

  it('an application without the refresh_token grant, found through the token endpoint when there is no Management API token', async () => {
    const report = await doctor({ env: env({ CLIENT_ID: 'no-refresh-grant', AUTH0_MANAGEMENT_TOKEN: undefined }) });
    expect(problems(report)).toEqual(['fail client.grant-types']);
    expect(finding(report, 'client.grant-types')).toMatchObject({ section: 'client', title: 'The application does not allow the refresh_token grant' });
  });

  it('an application without the authorization_code grant, found through the token endpoint when there is no Management API token', async () => {
    const report = await doctor({ env: env({ CLIENT_ID: 'no-code-grant', AUTH0_MANAGEMENT_TOKEN: undefined }) });
    expect(problems(report)).toEqual(['fail client.grant-types']);
    expect(finding(report, 'client.grant-types')).toMatchObject({ section: 'client', title: 'The application does not allow the authorization_code grant' });
    // The credentials were proven all the same: Auth0 authenticates the client before it looks at the grant.
    expect(finding(report, 'client.credentials')).toMatchObject({ status: 'ok', detail: expect.stringMatching(/may not use that grant type/) });
  });

  it('a Management API token without read:clients: the API is still checked', async () => {
    const token = auth0.admin.issueManagementToken({ scopes: ['read:resource_servers'] });
    secrets.push(token);
    const report = await doctor({ env: env({ AUTH0_MANAGEMENT_TOKEN: token }) });
    expect(problems(report)).toEqual(['fail management.access']);
    expect(finding(report, 'management.access').title).toMatch(/needs read:clients, which the token lacks/);
    expect(finding(report, 'api.online-access').status).toBe('ok');
    // Without the application's settings, the grant types come from the token endpoint's answers.
    expect(finding(report, 'client.grant-types')).toMatchObject({ status: 'ok', section: 'client' });
  });

  it('a token endpoint failing for a moment: the credentials are not confirmed, and nothing fails', async () => {
    auth0.admin.failTokenEndpoint({ status: 503 });
    try {
      const report = await doctor({ env: env() });
      expect(problems(report)).toEqual(['warn client.credentials']);
      expect(finding(report, 'client.credentials').title).toBe('Credentials not confirmed: the token endpoint answered HTTP 503');
      expect(finding(report, 'client.grant-types').status).toBe('ok');
    } finally {
      auth0.admin.reset();
    }
  });

  it('an unknown client id: the credentials fail and the tenant has no such application', async () => {
    const report = await doctor({ env: env({ CLIENT_ID: 'nobody' }) });
    expect(problems(report)).toEqual(['fail client.credentials', 'fail client.exists']);
  });
});

describe('what the doctor reads from the Management API', () => {
  it('asks for the application\'s fields it checks, so that its secret never comes back, even to a token allowed to read it', async () => {
    const token = auth0.admin.issueManagementToken({ scopes: ['read:clients', 'read:client_keys', 'read:resource_servers'] });
    secrets.push(token);
    const answers: string[] = [];
    const recording = (async (url: string | URL | Request, init?: RequestInit) => {
      const response = await fetch(url, init);
      answers.push(await response.clone().text());
      return response;
    }) as typeof fetch;
    const report = await doctor({ env: env({ AUTH0_MANAGEMENT_TOKEN: token }), fetch: recording });
    expect(problems(report)).toEqual([]);
    expect(answers.some((answer) => answer.includes('"callbacks"'))).toBe(true);
    for (const answer of answers) expect(answer).not.toContain(SECRET);
    // The same token without the field selection would get it.
    const whole = await fetch(new URL('api/v2/clients/good', auth0.issuer), { headers: { authorization: `Bearer ${token}` } });
    expect(await whole.text()).toContain(SECRET);
  });

  it('asks for no API at all when there is no audience to check (unfiltered, the request would list every API of the tenant)', async () => {
    const asked: URL[] = [];
    const recording = (async (url: string | URL | Request, init?: RequestInit) => {
      asked.push(new URL(String(url)));
      return fetch(url, init);
    }) as typeof fetch;
    const withoutAudience = { issuer: auth0.issuer, clientId: 'good', clientSecret: SECRET, baseURL: BASE, session: { secrets: [SESSION_SECRET] } };
    const report = await doctor({ options: withoutAudience, managementToken, fetch: recording });
    expect(asked.filter((url) => url.pathname.endsWith('/api/v2/resource-servers'))).toEqual([]);
    expect(finding(report, 'management.access')).toMatchObject({ status: 'ok', title: expect.stringMatching(/accepts the token \(read:clients\)$/) });
    expect(finding(report, 'client.callback-url').status).toBe('ok');
    // An unknown application is still told, from the Management API's own answer.
    const unknown = await doctor({ options: { ...withoutAudience, clientId: 'nobody' }, managementToken });
    expect(problems(unknown)).toEqual(['fail client.credentials', 'fail client.exists']);
  });
});

describe('what the tenant answers, as the doctor prints it', () => {
  it('prints no control character from a Management API\'s message: an escape sequence would reach the terminal', async () => {
    const hostile = tenantWith((url) => (url.pathname.startsWith('/api/v2/')
      ? jsonAnswer({ statusCode: 401, error: 'Unauthorized', message: 'Invalid token\u001b[2J\u001b]0;owned\u0007' }, 401)
      : undefined));
    const report = await doctor({ env: env(), fetch: hostile });
    expect(problems(report)).toEqual(['fail management.access']);
    const text = formatReport(report);
    expect(text).toContain('token?[2J?]0;owned?)');
    expect(text).not.toMatch(/[\u0000-\u0008\u000e-\u001f\u007f-\u009f]/);
  });
});

describe('the command line on a tenant', () => {
  it('exits 0 with a warning, and 1 with --strict', async () => {
    const quiet = { stdout: () => {}, stderr: () => {} };
    const withWarning = env({ CLIENT_ID: 'no-backchannel' });
    expect(await runCommand(['doctor'], withWarning, quiet)).toBe(0);
    expect(await runCommand(['doctor', '--strict'], withWarning, quiet)).toBe(1);
    expect(await runCommand(['doctor', '--strict'], env(), quiet)).toBe(0);
  });
});

describe('the doctor on createBff options', () => {
  const options = (overrides: Partial<BffOptions> = {}): BffOptions => ({
    issuer: auth0.issuer,
    clientId: 'good',
    clientSecret: SECRET,
    audience: API,
    baseURL: BASE,
    session: { secrets: [SESSION_SECRET] },
    ...overrides,
  });

  it('checks them as they are, every API audience included', async () => {
    const report = await doctor({
      options: options({ apis: [{ mount: '/api', upstream: 'http://127.0.0.1:1' }, { mount: '/other', upstream: 'http://127.0.0.1:1', audience: 'https://ephemeral.example.com' }] }),
      managementToken,
    });
    expect(problems(report)).toEqual(['fail api.ephemeral-sessions']);
    expect(report.target.audiences).toEqual([API, 'https://ephemeral.example.com']);
  });

  describe('a second API, whose tokens the ORT gives only when the refresh token policies name it', () => {
    const twoApis = { apis: [{ mount: '/api', upstream: 'http://127.0.0.1:1' }, { mount: '/billing', upstream: 'http://127.0.0.1:1', audience: BILLING }] };

    it('passes when the policies cover it', async () => {
      const report = await doctor({ options: options(twoApis), managementToken });
      expect(problems(report)).toEqual([]);
      expect(finding(report, 'client.refresh-token-policies')).toMatchObject({ status: 'ok', title: `The application's refresh token policies cover ${BILLING}` });
    });

    it('fails when they leave it out, and says how to add it', async () => {
      const report = await doctor({ options: options({ ...twoApis, clientId: 'narrow-policies' }), managementToken });
      expect(problems(report)).toEqual(['fail client.refresh-token-policies']);
      const found = finding(report, 'client.refresh-token-policies');
      expect(found.title).toBe(`The application's refresh token policies do not cover ${BILLING}`);
      expect(found.detail).toMatch(/500 configuration_error/);
      expect(found.fix).toContain('PATCH /api/v2/clients/narrow-policies');
      expect(found.fix).toContain(`"audience":"${BILLING}"`);
      expect(report.ok).toBe(false);
    });

    it('is not checked without an audience (the login then asks for the tenant\'s default API), nor without the application\'s settings', async () => {
      const { audience: _audience, ...withoutAudience } = options(twoApis);
      const report = await doctor({ options: { ...withoutAudience, apis: [{ mount: '/api', upstream: 'http://127.0.0.1:1', audience: API }, twoApis.apis[1]!] }, managementToken });
      expect(finding(report, 'client.refresh-token-policies')).toMatchObject({ status: 'skip', title: expect.stringMatching(/AUDIENCE is not set/) });
      const unread = await doctor({ options: options(twoApis), managementToken: auth0.admin.issueManagementToken({ scopes: ['read:resource_servers'] }) });
      expect(finding(unread, 'client.refresh-token-policies').status).toBe('skip');
    });

    it('takes a management token as the environment gives it: empty is none, a trailing newline is not part of it', async () => {
      const empty = await doctor({ options: options(), managementToken: '' });
      expect(finding(empty, 'management.access').status).toBe('skip');
      const withNewline = await doctor({ options: options(), managementToken: `${managementToken}\n` });
      expect(problems(withNewline)).toEqual([]);
      expect(finding(withNewline, 'management.access').status).toBe('ok');
    });

    it('asks nothing of an app with one API', async () => {
      const report = await doctor({ options: options(), managementToken });
      expect(report.findings.filter((f) => f.id === 'client.refresh-token-policies')).toEqual([]);
    });
  });

  it('refuses offline_access in the scope, as createBff does, and checks nothing further', async () => {
    const report = await doctor({ options: options({ scope: 'profile offline_access' }), managementToken });
    expect(problems(report)).toEqual(['fail config.scope']);
    expect(finding(report, 'config.scope').title).toMatch(/must not contain "offline_access"/);
    expect(finding(report, 'doctor.tenant').status).toBe('skip');
  });

  it('warns about a session cookie without the __Host- prefix on https', async () => {
    const report = await doctor({ options: options({ session: { secrets: [SESSION_SECRET], cookieName: 'bff' } }), managementToken });
    expect(problems(report)).toEqual(['warn config.cookie']);
  });

  it('counts a warning as a failure when strict', async () => {
    const report = await doctor({ options: options({ session: { secrets: [SESSION_SECRET], cookieName: 'bff' } }), managementToken, strict: true });
    expect(report.ok).toBe(false);
  });

  it('needs either env or options', async () => {
    await expect(runDoctor({} as never)).rejects.toThrow(/either "env"/);
  });
});

describe('subdomain wildcards, as Auth0 honours them', () => {
  it('does not count a wildcard for a top-level domain (https://*.com)', async () => {
    const report = await doctor({ env: env({ CLIENT_ID: 'tld-wildcard', BASE_URL: 'https://example.com' }) });
    expect(problems(report)).toEqual(['fail client.callback-url', 'fail client.logout-url']);
  });
});

describe('a made-up grant the token endpoint gives no verdict on', () => {
  /** The refresh probe answered with `answer`; the code exchange as the emulator answers it. */
  const refreshAnswered = (answer: () => Response) => tenantWith((url, init) => (url.pathname === '/oauth/token' && grantOf(init) === 'refresh_token' ? answer() : undefined));

  it.each([
    ['a 429', () => jsonAnswer({ error: 'too_many_requests', error_description: 'Global limit has been reached' }, 429, { 'retry-after': '1' }), 'answered 429 too_many_requests'],
    ['a 503', () => new Response('upstream', { status: 503 }), 'answered HTTP 503'],
    ['an unknown 400', () => jsonAnswer({ error: 'invalid_request', error_description: 'Something else' }, 400), 'answered 400 invalid_request'],
  ])('leaves the grant not confirmed after %s, never allowed', async (_name, answer, seen) => {
    // The application does not allow refresh_token: only a verdict of the token endpoint may say so.
    const report = await doctor({ env: env({ CLIENT_ID: 'no-refresh-grant', AUTH0_MANAGEMENT_TOKEN: undefined }), fetch: refreshAnswered(answer) });
    expect(problems(report)).toEqual(['warn client.grant-types']);
    expect(finding(report, 'client.grant-types')).toMatchObject({
      section: 'client',
      title: `The refresh_token grant is not confirmed: the token endpoint ${seen}`,
      fix: expect.stringContaining('AUTH0_MANAGEMENT_TOKEN'),
    });
    expect(finding(report, 'client.credentials').status).toBe('ok');
  });

  it('takes the application\'s settings over the probes when the Management API can be read', async () => {
    const report = await doctor({ env: env({ CLIENT_ID: 'no-refresh-grant' }), fetch: refreshAnswered(() => new Response('upstream', { status: 503 })) });
    expect(problems(report)).toEqual(['fail client.grant-types']);
    expect(finding(report, 'client.grant-types').section).toBe('tenant');
  });
});

describe('a Management API that is rate-limited or failing', () => {
  /** Answers the first `times` Management API requests of each endpoint with `answer`, counting every request. */
  function managementAnswering(answer: () => Response, times = Infinity) {
    const calls = new Map<string, number>();
    const fetchImpl = tenantWith((url) => {
      if (!url.pathname.startsWith('/api/v2/')) return undefined;
      const n = (calls.get(url.pathname) ?? 0) + 1;
      calls.set(url.pathname, n);
      return n <= times ? answer() : undefined;
    });
    return { fetch: fetchImpl, calls: () => Object.fromEntries(calls) };
  }
  const rateLimited = (headers: Record<string, string>) => () =>
    jsonAnswer({ statusCode: 429, error: 'Too Many Requests', message: 'Global limit has been reached' }, 429, headers);
  const endpoints = { '/api/v2/resource-servers': 3, '/api/v2/clients/good': 3 };
  const DEPENDENT = ['api.online-access', 'api.ephemeral-sessions', 'client.callback-url', 'client.logout-url', 'client.backchannel-url', 'client.backchannel-initiators'];

  it('asks again after the wait Retry-After asks for, and then checks as usual', async () => {
    const tenant = managementAnswering(rateLimited({ 'retry-after': '0' }), 2);
    const report = await doctor({ env: env(), fetch: tenant.fetch });
    expect(problems(report)).toEqual([]);
    expect(tenant.calls()).toEqual(endpoints);
  });

  it('after a couple of tries, warns that it was rate-limited and lists the checks it could not make, without blaming the token', async () => {
    const tenant = managementAnswering(rateLimited({ 'retry-after': '0' }));
    const out: string[] = [];
    const code = await runCommand(['doctor'], env(), { stdout: (t) => out.push(t), stderr: (t) => out.push(t) }, tenant.fetch);
    expect(code).toBe(0);
    expect(tenant.calls()).toEqual(endpoints);
    const report = await doctor({ env: env(), fetch: managementAnswering(rateLimited({ 'retry-after': '0' })).fetch });
    expect(problems(report)).toEqual(['warn management.access']);
    expect(finding(report, 'management.access').title).toMatch(/is rate-limited \(it answered 429 Global limit has been reached, 3 times\): the settings it did not give were not checked$/);
    expect(finding(report, 'management.access').fix).not.toMatch(/AUTH0_MANAGEMENT_TOKEN/);
    expect(out.join('')).not.toMatch(/Give AUTH0_MANAGEMENT_TOKEN a current token/);
    for (const id of DEPENDENT) expect(finding(report, id).status).toBe('skip');
    // Without the application's settings, the grant types come from the token endpoint's answers.
    expect(finding(report, 'client.grant-types')).toMatchObject({ status: 'ok', section: 'client' });
  });

  it.each([
    ['a Retry-After', { 'retry-after': '3600' }],
    ['an X-RateLimit-Reset', { 'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 3600) }],
  ])('does not wait longer than its timeout: %s beyond it ends the tries', async (_name, headers) => {
    const tenant = managementAnswering(rateLimited(headers));
    const report = await doctor({ env: env(), fetch: tenant.fetch, timeout: 5_000 });
    expect(tenant.calls()).toEqual({ '/api/v2/resource-servers': 1, '/api/v2/clients/good': 1 });
    expect(problems(report)).toEqual(['warn management.access']);
  });

  it('warns about a 5xx the same way', async () => {
    const tenant = managementAnswering(() => new Response('upstream', { status: 503, headers: { 'retry-after': '0' } }));
    const report = await doctor({ env: env(), fetch: tenant.fetch });
    expect(tenant.calls()).toEqual(endpoints);
    expect(problems(report)).toEqual(['warn management.access']);
    expect(finding(report, 'management.access').title).toMatch(/is unavailable \(it answered HTTP 503, 3 times\)/);
    expect(report.ok).toBe(true);
  });
});

describe('the checks that need what the Management API did not give', () => {
  it('are listed as not checked when it refuses the token', async () => {
    const report = await doctor({ env: env({ AUTH0_MANAGEMENT_TOKEN: 'expired-or-foreign-token' }) });
    expect(problems(report)).toEqual(['fail management.access']);
    expect(report.findings.filter((f) => f.status === 'skip').map((f) => f.id)).toEqual([
      'api.online-access', 'api.ephemeral-sessions', 'client.callback-url', 'client.logout-url', 'client.backchannel-url', 'client.backchannel-initiators',
    ]);
    expect(finding(report, 'client.callback-url').title).toBe(`Callback URL ${BASE}/auth/callback not checked: the Management API did not give the application settings`);
    expect(formatReport(report)).toMatch(/\n1 failed, 0 warnings, \d+ ok, 6 not checked: /);
  });

  it('are listed as not checked when the token lacks read:clients', async () => {
    const token = auth0.admin.issueManagementToken({ scopes: ['read:resource_servers'] });
    secrets.push(token);
    const report = await doctor({ env: env({ AUTH0_MANAGEMENT_TOKEN: token }) });
    expect(report.findings.filter((f) => f.status === 'skip').map((f) => f.id)).toEqual(['client.callback-url', 'client.logout-url', 'client.backchannel-url', 'client.backchannel-initiators']);
  });

  it('are listed as not checked when the tenant has no such application or API', async () => {
    const noClient = await doctor({ env: env({ CLIENT_ID: 'nobody' }) });
    expect(finding(noClient, 'client.callback-url')).toMatchObject({ status: 'skip', title: expect.stringMatching(/not checked: the tenant has no such application$/) });
    // Neither the credentials nor the application's settings tell the grant types.
    expect(finding(noClient, 'client.grant-types').status).toBe('skip');
    const noApi = await doctor({ env: env({ AUDIENCE: 'https://unknown.example.com' }) });
    expect(finding(noApi, 'api.online-access')).toMatchObject({ status: 'skip', title: expect.stringMatching(/not checked: the tenant has no such API$/) });
  });
});

describe('a BFF with a DPoP key', () => {
  /**
   * The emulator's Management API answers without the sender-constraining fields (its APIs bind a token to any
   * proof): they are added to its answers here, as Auth0 gives them.
   */
  function withProofOfPossession(api: Record<string, unknown> | undefined, requireProof: boolean, asked: string[] = []): typeof fetch {
    return tenantWith(async (url, init) => {
      if (!url.pathname.startsWith('/api/v2/')) return undefined;
      asked.push(url.searchParams.get('fields') ?? '');
      const response = await fetch(url, init);
      const body = (await response.json()) as Record<string, unknown> | Array<Record<string, unknown>>;
      const changed = Array.isArray(body)
        ? body.map((server) => (api ? { ...server, proof_of_possession: api } : server))
        : { ...body, require_proof_of_possession: requireProof };
      return jsonAnswer(changed, response.status);
    });
  }

  it('sends its made-up grants with a DPoP proof, as the BFF does, and never prints the key', async () => {
    const key = dpopKey();
    const proofs: Array<string | null> = [];
    const recording = tenantWith((url, init) => {
      if (url.pathname === '/oauth/token') proofs.push(new Headers(init?.headers).get('dpop'));
      return undefined;
    });
    const report = await doctor({ env: env({ DPOP_PRIVATE_KEY: key.json, AUTH0_MANAGEMENT_TOKEN: undefined }), fetch: recording });
    expect(proofs).toHaveLength(2);
    for (const proof of proofs) expect(proof).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(problems(report)).toEqual([]);
    expect(formatReport(report) + formatReportJson(report)).not.toContain(key.d);
  });

  it('gets the verdicts of an application that refuses token requests without a proof', async () => {
    // Auth0 with "Require Token Sender-Constraining" on the application: a request without a proof is refused first.
    const requiresProof = tenantWith((url, init) =>
      url.pathname === '/oauth/token' && !new Headers(init?.headers).has('dpop')
        ? jsonAnswer({ error: 'invalid_request', error_description: 'DPoP proof is required' }, 400)
        : undefined);
    const report = await doctor({ env: env({ CLIENT_ID: 'no-refresh-grant', DPOP_PRIVATE_KEY: dpopKey().json, AUTH0_MANAGEMENT_TOKEN: undefined }), fetch: requiresProof });
    expect(problems(report)).toEqual(['fail client.grant-types']);
    expect(finding(report, 'client.credentials').status).toBe('ok');
  });

  it('checks that each API binds its tokens with DPoP, and reports the application\'s setting', async () => {
    const asked: string[] = [];
    const report = await doctor({ env: env({ DPOP_PRIVATE_KEY: dpopKey().json }), fetch: withProofOfPossession({ mechanism: 'dpop', required: true }, false, asked) });
    expect(problems(report)).toEqual([]);
    expect(finding(report, 'api.dpop').title).toBe(`The API ${API} binds its tokens with DPoP (required)`);
    expect(finding(report, 'client.dpop').title).toMatch(/does not require one \(require_proof_of_possession is off\)/);
    expect(asked.some((fields) => fields.split(',').includes('require_proof_of_possession'))).toBe(true);
  });

  it('warns about an API without DPoP: the BFF would get Bearer tokens for it', async () => {
    // The emulator's own answer: no proof_of_possession.
    const report = await doctor({ env: env({ DPOP_PRIVATE_KEY: dpopKey().json }) });
    expect(problems(report)).toEqual(['warn api.dpop']);
    expect(finding(report, 'api.dpop')).toMatchObject({
      title: `The API ${API} does not use DPoP (proof_of_possession: none): the BFF would get Bearer tokens for it`,
      fix: expect.stringContaining('"proof_of_possession": {"mechanism": "dpop"'),
    });
    const mtls = await doctor({ env: env({ DPOP_PRIVATE_KEY: dpopKey().json }), fetch: withProofOfPossession({ mechanism: 'mtls', required: false }, false) });
    expect(finding(mtls, 'api.dpop').title).toMatch(/\(proof_of_possession: mtls\)/);
  });

  it('fails an API without DPoP when the application requires sender-constrained tokens: Auth0 would issue none', async () => {
    const report = await doctor({ env: env({ DPOP_PRIVATE_KEY: dpopKey().json }), fetch: withProofOfPossession(undefined, true) });
    expect(problems(report)).toEqual(['fail api.dpop']);
    expect(finding(report, 'client.dpop')).toMatchObject({ status: 'ok', title: expect.stringMatching(/^The application requires sender-constrained tokens/) });
  });

  it('without a key, fails an application that requires sender-constrained tokens, and says nothing of DPoP otherwise', async () => {
    const report = await doctor({ env: env(), fetch: withProofOfPossession(undefined, true) });
    expect(problems(report)).toEqual(['fail client.dpop']);
    expect(finding(report, 'client.dpop').fix).toMatch(/DPOP_PRIVATE_KEY/);
    expect(report.findings.some((f) => f.id === 'api.dpop')).toBe(false);
    const plain = await doctor({ env: env() });
    expect(plain.findings.some((f) => f.id.endsWith('.dpop'))).toBe(false);
  });

  /** Auth0 with "Require Token Sender-Constraining" on the application: a token request without a proof is refused. */
  const refusingWithoutProof = (answerManagement: typeof fetch = fetch) => tenantWith((url, init) =>
    url.pathname === '/oauth/token' && !new Headers(init?.headers).has('dpop')
      ? jsonAnswer({ error: 'invalid_request', error_description: 'DPoP proof is required' }, 400)
      : url.pathname.startsWith('/api/v2/') ? answerManagement(url, init) : undefined);

  it('without a key nor a Management API token, fails an application that refuses token requests without a proof (not a mere "not confirmed")', async () => {
    const report = await doctor({ env: env({ AUTH0_MANAGEMENT_TOKEN: undefined }), fetch: refusingWithoutProof() });
    expect(problems(report)).toEqual(['fail client.dpop-proof']);
    expect(finding(report, 'client.dpop-proof')).toMatchObject({
      title: 'The application requires sender-constrained tokens, and the BFF has no DPoP key (Auth0 answered 400 invalid_request)',
      fix: expect.stringContaining('DPOP_PRIVATE_KEY'),
    });
    expect(finding(report, 'client.credentials').status).toBe('skip');
    expect(report.ok).toBe(false);
    // With the application's settings read, their finding says it, once.
    const withToken = await doctor({ env: env(), fetch: refusingWithoutProof(withProofOfPossession(undefined, true)) });
    expect(problems(withToken)).toEqual(['fail client.dpop']);
  });

  it('fails a key whose algorithm the issuer does not list for DPoP, before any token request', async () => {
    const p384 = JSON.stringify({ ...generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ format: 'jwk' }) });
    const listingEs256 = tenantWith(async (url, init) => {
      if (!url.pathname.endsWith('/.well-known/openid-configuration')) return undefined;
      const document = (await (await fetch(url, init)).json()) as Record<string, unknown>;
      return jsonAnswer({ ...document, dpop_signing_alg_values_supported: ['ES256'] }, 200);
    });
    const report = await doctor({ env: env({ DPOP_PRIVATE_KEY: p384 }), fetch: listingEs256 });
    expect(finding(report, 'discovery.dpop-algorithm')).toMatchObject({
      status: 'fail',
      title: 'The issuer does not accept DPoP proofs signed with ES384 (it lists ES256)',
      fix: expect.stringContaining('P-256'),
    });
    expect(report.ok).toBe(false);
    const es256 = await doctor({ env: env({ DPOP_PRIVATE_KEY: dpopKey().json }), fetch: listingEs256 });
    expect(finding(es256, 'discovery.dpop-algorithm')).toMatchObject({ status: 'ok', title: 'The issuer accepts DPoP proofs signed with ES256' });
  });

  it('lists the DPoP checks as not checked when the Management API gives nothing', async () => {
    const report = await doctor({ env: env({ DPOP_PRIVATE_KEY: dpopKey().json, AUTH0_MANAGEMENT_TOKEN: 'expired-or-foreign-token' }) });
    expect(finding(report, 'api.dpop').status).toBe('skip');
    expect(finding(report, 'client.dpop').status).toBe('skip');
  });
});
