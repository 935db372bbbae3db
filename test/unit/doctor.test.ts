import { describe, expect, it } from 'vitest';

import { runCommand } from '../../src/doctor/command.js';
import { runDoctor } from '../../src/doctor/doctor.js';
import { checkDiscovery } from '../../src/doctor/discovery-checks.js';
import { scrubSecrets, type DoctorReport, type Finding } from '../../src/doctor/finding.js';
import { managementApiBase } from '../../src/doctor/management-client.js';
import { audiencesOf, checkClientUrls } from '../../src/doctor/tenant-checks.js';
import { validateOptions } from '../../src/config/validate.js';
import { formatReport } from '../../src/doctor/report.js';

const ISSUER = new URL('https://tenant.example.com/');

/** A discovery document of a tenant, as Auth0 serves it (the fields the BFF uses). */
const METADATA = {
  issuer: ISSUER.href,
  authorization_endpoint: `${ISSUER.href}authorize`,
  token_endpoint: `${ISSUER.href}oauth/token`,
  jwks_uri: `${ISSUER.href}.well-known/jwks.json`,
  revocation_endpoint: `${ISSUER.href}oauth/revoke`,
  end_session_endpoint: `${ISSUER.href}oidc/logout`,
  backchannel_logout_supported: true,
};

/** A fetch that answers the discovery URL with `answer` (a fault at the fetch layer, as the standards allow). */
function fakeFetch(answer: () => Promise<Response>): typeof fetch {
  return (async (url: string | URL | Request) => {
    expect(String(url)).toBe(`${ISSUER.href}.well-known/openid-configuration`);
    return answer();
  }) as typeof fetch;
}

const json = (body: unknown, status = 200) => async () => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
const statusOf = (findings: Finding[]) => Object.fromEntries(findings.map((f) => [f.id, f.status]));

describe('discovery checks', () => {
  it('fails a missing authorization, token or JWKS endpoint and warns about a missing revocation or end-session endpoint', async () => {
    const { authorization_endpoint: _a, jwks_uri: _j, revocation_endpoint: _r, end_session_endpoint: _e, backchannel_logout_supported: _b, ...rest } = METADATA;
    const { findings } = await checkDiscovery(ISSUER, { fetch: fakeFetch(json(rest)), timeoutMs: 1000 });
    expect(statusOf(findings)).toEqual({
      'discovery.document': 'ok',
      'discovery.issuer': 'ok',
      'discovery.authorization_endpoint': 'fail',
      'discovery.token_endpoint': 'ok',
      'discovery.jwks_uri': 'fail',
      'discovery.revocation_endpoint': 'warn',
      'discovery.end_session_endpoint': 'warn',
      'discovery.backchannel-logout': 'warn',
    });
    expect(findings.find((f) => f.id === 'discovery.end_session_endpoint')?.fix).toMatch(/RP-Initiated Logout End Session Endpoint Discovery/);
  });

  it.each([
    ['an error status', json({ error: 'not found' }, 404), /HTTP 404/],
    ['an answer that is not JSON', async () => new Response('<html>maintenance</html>'), /not a JSON object/],
    ['a JSON array', json([METADATA]), /not a JSON object/],
    ['no answer in time', () => new Promise<Response>(() => {}), /no answer in time/],
  ])('fails the document on %s, and gives no metadata', async (_name, answer, message) => {
    const result = await checkDiscovery(ISSUER, { fetch: fakeFetch(answer), timeoutMs: 50 });
    expect(result.metadata).toBeUndefined();
    expect(result.findings).toEqual([expect.objectContaining({ id: 'discovery.document', status: 'fail', title: expect.stringMatching(message) })]);
  });
});

describe('a token endpoint that does not answer', () => {
  it('leaves the credentials not confirmed, a warning', async () => {
    // The tenant at the fetch layer: its discovery document, and a token endpoint that never answers.
    const tenant = (async (url: string | URL | Request, init?: RequestInit) => {
      if (String(url).endsWith('/.well-known/openid-configuration')) return json(METADATA)();
      expect(String(url)).toBe(METADATA.token_endpoint);
      return new Promise<Response>((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal!.reason)));
    }) as typeof fetch;
    const report = await runDoctor({
      options: { issuer: ISSUER.href, clientId: 'abc', clientSecret: 'client-secret-value', baseURL: 'https://app.example.com', session: { secrets: ['s'.repeat(16) + 'abcdefghijklmnopq'] } },
      fetch: tenant,
      timeout: 100,
    });
    expect(report.findings.filter((f) => f.status !== 'ok').map((f) => `${f.status} ${f.id}`)).toEqual(['warn client.credentials', 'skip management.access']);
    expect(report.findings.find((f) => f.id === 'client.credentials')?.title).toBe('Credentials not confirmed: the token endpoint did not answer in time');
  });
});

describe('the Management API address', () => {
  const jwt = (claims: object) => ['e30', Buffer.from(JSON.stringify(claims)).toString('base64url'), 'sig'].join('.');

  it('is on the domain that issued the token (the tenant\'s own domain, or a custom domain)', () => {
    const canonical = jwt({ iss: 'https://tenant.us.auth0.com/', aud: 'https://tenant.us.auth0.com/api/v2/' });
    expect(managementApiBase(new URL('https://login.example.com/'), canonical).href).toBe('https://tenant.us.auth0.com/api/v2/');
    const custom = jwt({ iss: 'https://login.example.com/', aud: 'https://tenant.us.auth0.com/api/v2/' });
    expect(managementApiBase(new URL('https://login.example.com/'), custom).href).toBe('https://login.example.com/api/v2/');
  });

  it.each([
    ['an opaque token', 'opaque-token-value'],
    ['a JWT without an issuer', jwt({ aud: 'https://tenant.us.auth0.com/api/v2/' })],
    ['a plain-http issuer off loopback', jwt({ iss: 'http://tenant.us.auth0.com/' })],
    ['three dots that are not a JWT', 'a.b!.c'],
  ])('is the issuer\'s for %s', (_name, token) => {
    expect(managementApiBase(ISSUER, token).href).toBe('https://tenant.example.com/api/v2/');
  });
});

describe('secrets in findings', () => {
  it('are replaced wherever they appear, in every text field', () => {
    const secret = 'a-secret-value-123';
    const [scrubbed] = scrubSecrets(
      [{ id: 'x', section: 'client', status: 'fail', title: `title ${secret}`, detail: `${secret}!${secret}`, fix: `fix ${secret}` }],
      [secret, undefined, 'tiny'],
    );
    expect(scrubbed).toEqual({ id: 'x', section: 'client', status: 'fail', title: 'title [redacted]', detail: '[redacted]![redacted]', fix: 'fix [redacted]' });
  });
});

describe('the text report', () => {
  const report: DoctorReport = {
    ok: false,
    counts: { ok: 1, warn: 1, fail: 1, skip: 1 },
    target: { issuer: ISSUER.href, clientId: 'abc', audiences: ['https://api.example.com'], baseURL: 'https://app.example.com' },
    findings: [
      { id: 'discovery.document', section: 'discovery', status: 'ok', title: 'Read the document', detail: 'not shown for ok' },
      { id: 'config.cookie', section: 'configuration', status: 'warn', title: 'Cookie', detail: 'Why it matters.', fix: 'Change it.' },
      { id: 'client.credentials', section: 'client', status: 'fail', title: 'Refused', fix: `Copy ${'the secret '.repeat(12)}again.` },
      { id: 'management.access', section: 'tenant', status: 'skip', title: 'Not checked', fix: 'Set a token.' },
    ],
  };

  it('prints the target, each section with its findings, why and how to fix, and a verdict', () => {
    const text = formatReport(report);
    expect(text).toContain('  issuer   https://tenant.example.com/\n  client   abc\n  API      https://api.example.com\n  BFF      https://app.example.com\n');
    expect(text).toContain('\nBFF configuration\n  WARN  Cookie\n        Why it matters.\n        Fix: Change it.\n');
    expect(text).toContain('\nDiscovery\n  ok    Read the document\n');
    expect(text).not.toContain('not shown for ok');
    expect(text).toContain('\nTenant settings (Management API)\n  skip  Not checked\n        Fix: Set a token.\n');
    expect(text.trimEnd().split('\n').at(-1)).toBe('1 failed, 1 warning, 1 ok, 1 not checked: fix what failed before users log in.');
    for (const line of text.split('\n')) expect(line.length).toBeLessThanOrEqual(100);
    expect(text).toMatch(/\n {8}Fix: Copy the secret[^\n]*\n {13}secret the secret/);
  });
});

describe('the command line', () => {
  function io() {
    const out = { stdout: '', stderr: '' };
    return { out, io: { stdout: (t: string) => void (out.stdout += t), stderr: (t: string) => void (out.stderr += t) } };
  }

  it('prints its usage for --help, and exits 0', async () => {
    const { out, io: streams } = io();
    expect(await runCommand(['--help'], {}, streams)).toBe(0);
    expect(out.stdout).toMatch(/^Usage: express-ort-bff doctor \[--json\] \[--strict\]/);
    expect(await runCommand(['doctor', '--help'], {}, streams)).toBe(0);
  });

  it.each([[[]], [['check']], [['doctor', '--verbose']]])('refuses %j with its usage on stderr, and exits 2', async (args) => {
    const { out, io: streams } = io();
    expect(await runCommand(args, {}, streams)).toBe(2);
    expect(out.stdout).toBe('');
    expect(out.stderr).toMatch(/(No command given|Unknown command: check|Unknown option: --verbose)\.\n\nUsage:/);
  });

  it('exits 1 with the report when a check fails, as text or as JSON', async () => {
    const { out, io: streams } = io();
    expect(await runCommand(['doctor'], {}, streams)).toBe(1);
    expect(out.stdout).toMatch(/BFF configuration\n {2}FAIL {2}ISSUER_URL \(or AUTH0_DOMAIN\) is not set/);

    const json = io();
    expect(await runCommand(['doctor', '--json'], {}, json.io)).toBe(1);
    const parsed = JSON.parse(json.out.stdout) as DoctorReport;
    expect(parsed.ok).toBe(false);
    expect(parsed.findings.map((f) => `${f.status} ${f.id}`)).toEqual(['fail env.ISSUER_URL', 'skip doctor.tenant']);
  });

  it('reports a fetch that throws as a tenant it cannot read, without printing the secrets it was given', async () => {
    const { out, io: streams } = io();
    const env = { ISSUER_URL: ISSUER.href, CLIENT_ID: 'abc', CLIENT_SECRET: 'client-secret-value', AUDIENCE: 'https://api.example.com', SESSION_SECRET: 'x'.repeat(40) };
    const broken = (() => { throw new Error('fetch is broken'); }) as unknown as typeof fetch;
    expect(await runCommand(['doctor'], env, streams, broken)).toBe(1);
    expect(out.stdout).toMatch(/FAIL {2}Cannot read https:\/\/tenant\.example\.com\/\.well-known\/openid-configuration: fetch is broken/);
    expect(out.stdout).not.toContain('client-secret-value');
  });

  it('when the doctor itself cannot run, exits 2 with one line on stderr that shows no secret and no control character', async () => {
    const { out, io: streams } = io();
    const values = { ISSUER_URL: ISSUER.href, CLIENT_ID: 'abc', CLIENT_SECRET: 'client-secret-value', AUDIENCE: 'https://api.example.com', SESSION_SECRET: 'x'.repeat(40), AUTH0_MANAGEMENT_TOKEN: 'management-token-value' };
    // An environment whose first read of AUDIENCE throws, quoting what no output may show.
    let thrown = false;
    const env = new Proxy(values, {
      get(target, name) {
        if (name === 'AUDIENCE' && !thrown) {
          thrown = true;
          throw new Error('cannot use client-secret-value\nwith management-token-value \u001b[2J here');
        }
        return target[name as keyof typeof target];
      },
    });
    expect(await runCommand(['doctor'], env, streams)).toBe(2);
    expect(thrown).toBe(true);
    expect(out.stdout).toBe('');
    expect(out.stderr).toBe('express-ort-bff doctor could not run: cannot use [redacted] with [redacted] ?[2J here\n');
  });
});

describe('the audiences the doctor checks', () => {
  it('are those of the user\'s tokens: not an API with the application\'s own token or with none', () => {
    const config = validateOptions({
      issuer: ISSUER.href, clientId: 'bff', clientSecret: 'secret', audience: 'https://api.example.com', baseURL: 'https://app.example.com',
      session: { secrets: ['a-session-secret-of-at-least-32-characters'] },
      apis: [
        { mount: '/api', upstream: 'https://api.internal.example.com' },
        { mount: '/catalog', upstream: 'https://catalog.internal.example.com', audience: 'https://catalog.example.com', token: 'user-or-none' },
        { mount: '/rates', upstream: 'https://rates.internal.example.com', audience: 'https://rates.example.com', token: 'client' },
        { mount: '/status', upstream: 'https://status.internal.example.com', token: 'none' },
      ],
    });
    expect(audiencesOf(config)).toEqual(['https://api.example.com', 'https://catalog.example.com']);
  });
});

describe('the timeout option', () => {
  it.each([[3_000_000_000], [2 ** 31], [Infinity], [-Infinity], [NaN], [0], [-1], ['1000']])('refuses %s, naming the option', async (timeout) => {
    const run = runDoctor({ env: {}, timeout: timeout as number });
    await expect(run).rejects.toThrow(TypeError);
    await expect(run).rejects.toThrow(/^"timeout" must be a finite number of milliseconds, more than 0 and at most 2147483647/);
  });
});

describe('URLs with credentials in the environment', () => {
  const quoted = (env: Record<string, string>) => async () => {
    const text = { stdout: '', stderr: '' };
    const json = { stdout: '', stderr: '' };
    const into = (out: typeof text) => ({ stdout: (t: string) => void (out.stdout += t), stderr: (t: string) => void (out.stderr += t) });
    expect(await runCommand(['doctor'], env, into(text))).toBe(1);
    expect(await runCommand(['doctor', '--json'], env, into(json))).toBe(1);
    return { printed: text.stdout + text.stderr + json.stdout + json.stderr, report: JSON.parse(json.stdout) as DoctorReport };
  };
  const base = { CLIENT_ID: 'abc', CLIENT_SECRET: 'client-secret-value', AUDIENCE: 'https://api.example.com', SESSION_SECRET: 'x'.repeat(40) };

  it('are refused without printing a user name or password, in text or JSON', async () => {
    const { printed, report } = await quoted({
      ...base,
      ISSUER_URL: 'https://issuer:IssuerPassw0rd@tenant.example.com/',
      BASE_URL: 'https://admin:BaseUrlPassw0rd@app.example.com',
      // Plain http off loopback, which used to be refused first, quoting the URL.
      UPSTREAM_API_URL: 'http://apiuser:S3cr3tUpstreamPass@api.internal.example.com/',
      // An @ and a / in the password: no part of it may show either.
      REDIS_URL: 'http://cacheuser:Redis@Pass/Word-1234@cache.example.com:6379',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://oteluser:OtelPassw0rd99@collector.example.com',
    })();
    for (const secret of ['IssuerPassw0rd', 'BaseUrlPassw0rd', 'S3cr3tUpstreamPass', 'apiuser', 'Redis@Pass', 'Word-1234', 'cacheuser', 'OtelPassw0rd99', 'oteluser']) {
      expect(printed).not.toContain(secret);
    }
    expect(report.findings.filter((f) => f.status === 'fail').map((f) => f.title)).toEqual([
      'BASE_URL must not contain credentials (got "https://***@app.example.com")',
      'UPSTREAM_API_URL must not contain credentials (got "http://***@api.internal.example.com/")',
      'REDIS_URL must be a redis:// or rediss:// URL such as "redis://127.0.0.1:6379" (got "http://***@cache.example.com:6379")',
      'ISSUER_URL must not contain credentials (got "https://***@tenant.example.com/")',
      'OTEL_EXPORTER_OTLP_ENDPOINT must be the collector\'s http(s) URL, such as "http://127.0.0.1:4318" (got "ftp://***@collector.example.com")',
    ]);
  });

  it('are refused in AUTH0_DOMAIN without printing them', async () => {
    const { printed, report } = await quoted({ ...base, AUTH0_DOMAIN: 'domainuser:DomainPassw0rd@tenant.us.auth0.com' })();
    expect(printed).not.toContain('DomainPassw0rd');
    expect(printed).not.toContain('domainuser');
    expect(report.findings[0]?.title).toMatch(/^AUTH0_DOMAIN must be a host name .* \(got "\*\*\*@tenant\.us\.auth0\.com"\)$/);
  });
});

describe('URLs registered with a wildcard', () => {
  /** Whether the callback URL of a BFF at `baseURL` counts as registered by the entry. */
  const accepts = (baseURL: string, entry: string) => {
    const config = validateOptions({ issuer: ISSUER.href, clientId: 'bff', clientSecret: 'secret', baseURL, session: { secrets: ['a-session-secret-of-at-least-32-characters'] } });
    const [callback] = checkClientUrls(config, { callbacks: [entry] }, false, 'unread');
    expect(callback?.id).toBe('client.callback-url');
    return callback?.status === 'ok';
  };

  it.each([
    ['https://app.example.com', 'https://*.example.com/auth/callback'],
    ['https://app.example.com', 'https://ap*.example.com/auth/callback'],
    ['https://app.example.com', 'https://*p.example.com/auth/callback'],
    ['https://app.example.com:8443', 'https://*.example.com:8443/auth/callback'],
    ['https://app.eu.example.com', 'https://*.eu.example.com/auth/callback'],
  ])('count for %s: %s', (baseURL, entry) => {
    expect(accepts(baseURL, entry)).toBe(true);
  });

  it.each([
    ['in the path', 'https://app.example.com', 'https://app.example.com/*/callback'],
    ['at the path\'s end', 'https://app.example.com', 'https://app.example.com/auth/*'],
    ['in the host and the path', 'https://app.example.com', 'https://*.example.com/auth/*'],
    ['for a top-level domain', 'https://example.com', 'https://*.com/auth/callback'],
    ['with one label after it', 'https://app.example.com', 'https://*example.com/auth/callback'],
    ['twice in the host', 'https://app.example.com', 'https://*.*.com/auth/callback'],
    ['not in the left-most label', 'https://app.example.com', 'https://app.*.com/auth/callback'],
    ['for more than one label', 'https://a.b.example.com', 'https://*.example.com/auth/callback'],
    ['for no label', 'https://app.example.com', 'https://*.app.example.com/auth/callback'],
    ['with a prefix the host lacks', 'https://app.example.com', 'https://web*.example.com/auth/callback'],
    ['with another scheme', 'https://app.example.com', 'http://*.example.com/auth/callback'],
    ['with another port', 'https://app.example.com', 'https://*.example.com:8443/auth/callback'],
    ['with another path', 'https://app.example.com', 'https://*.example.com/auth/callback/'],
    ['with a query', 'https://app.example.com', 'https://*.example.com/auth/callback?x=1'],
    ['without the path', 'https://app.example.com', 'https://*.example.com'],
  ])('do not count %s', (_name, baseURL, entry) => {
    expect(accepts(baseURL, entry)).toBe(false);
  });
});
