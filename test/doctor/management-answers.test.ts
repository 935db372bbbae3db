import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runDoctor } from '../../src/doctor/doctor.js';
import { startLocalAuth0, type LocalAuth0 } from '../../src/local-auth0/index.js';
import { API, app, envFor, finding, htmlAnswer, jsonAnswer, localServer, printed, problems, tenantWith, unsignedJwt } from './fixtures.js';

/**
 * What the doctor takes from the Management API only when it is the BFF tenant's and answers as the Management
 * API does: a token of another tenant, or a page of something else at its address (a proxy, a login page), must
 * neither vouch for a setting nor blame one.
 */
const OFFLINE = 'https://offline-only.example.com';
/** The checks that need the Management API's answers, for the application `good` and one API. */
const DEPENDENT = ['api.online-access', 'api.ephemeral-sessions', 'client.callback-url', 'client.logout-url', 'client.backchannel-url', 'client.backchannel-initiators'];

let auth0: LocalAuth0;
let managementToken: string;

beforeAll(async () => {
  auth0 = await startLocalAuth0({ clients: [app('good')], users: [], apis: [{ audience: API }, { audience: OFFLINE, allowOnlineAccess: false }] });
  managementToken = auth0.admin.issueManagementToken();
});
afterAll(async () => {
  await auth0?.stop();
});

const skipped = (report: Awaited<ReturnType<typeof runDoctor>>) => report.findings.filter((f) => f.status === 'skip').map((f) => f.id);

describe('a Management API token of another tenant', () => {
  it('is not used: the API is not vouched for, and CLIENT_ID is not blamed', async () => {
    // Another tenant, whose API of that identifier allows online access and which has no application `good`.
    const asked: string[] = [];
    const other = await localServer((req, res) => {
      asked.push(req.url ?? '');
      if (req.url?.startsWith('/api/v2/resource-servers')) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify([{ identifier: OFFLINE, allow_online_access: true }]));
      else res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ statusCode: 404, error: 'Not Found', message: 'The client does not exist', errorCode: 'inexistent_client' }));
    });
    try {
      const token = unsignedJwt({ alg: 'RS256', typ: 'JWT', kid: 'a-key-of-another-tenant' }, { iss: other.url, aud: `${other.url}api/v2/`, scope: 'read:clients read:resource_servers' });
      const report = await runDoctor({ env: envFor(auth0.issuer, { AUDIENCE: OFFLINE, AUTH0_MANAGEMENT_TOKEN: token }) });
      expect(problems(report)).toEqual(['fail management.access']);
      expect(finding(report, 'management.access').title).toBe(`The Management API token is another tenant's: it was issued by ${other.url}, not by the BFF's issuer ${auth0.issuer}, and is not signed with one of its keys`);
      expect(skipped(report)).toEqual(DEPENDENT);
      expect(finding(report, 'api.online-access').title).toBe(`Online access of the API ${OFFLINE} not checked: the Management API token is another tenant's`);
      expect(finding(report, 'client.credentials').status).toBe('ok');
      // The grant types as the token endpoint told them, as without a token.
      expect(finding(report, 'client.grant-types')).toMatchObject({ status: 'ok', section: 'client' });
      expect(asked).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('is used when it is the tenant\'s, got through its other domain: signed with one of the issuer\'s keys', async () => {
    // The tenant's other domain (as a custom domain is), in front of the emulator's Management API.
    const asked: string[] = [];
    let token = '';
    const domain = await localServer((req, res) => {
      asked.push(req.url ?? '');
      const authorization = req.headers.authorization === `Bearer ${token}` ? `Bearer ${managementToken}` : 'Bearer refused';
      void fetch(new URL(req.url ?? '/', auth0.issuer), { headers: { authorization } }).then(async (answer) => {
        res.writeHead(answer.status, { 'content-type': 'application/json' }).end(await answer.text());
      });
    });
    try {
      token = await auth0.admin.sign({ iss: domain.url, aud: `${domain.url}api/v2/`, scope: 'read:clients read:resource_servers' }, { typ: 'JWT' });
      const report = await runDoctor({ env: envFor(auth0.issuer, { AUDIENCE: OFFLINE, AUTH0_MANAGEMENT_TOKEN: token }) });
      expect(problems(report)).toEqual(['fail api.online-access']);
      expect(finding(report, 'management.access').title).toMatch(new RegExp(`^The Management API at ${domain.url}api/v2/ accepts the token`));
      expect(asked).toHaveLength(2);
    } finally {
      await domain.close();
    }
  });

  it('when the issuer\'s keys cannot be read: a warning, and nothing checked with it', async () => {
    const token = unsignedJwt({ alg: 'RS256', typ: 'JWT', kid: 'some-key' }, { iss: 'https://tenant.example.com/' });
    const noKeys = tenantWith((url) => (url.pathname === '/.well-known/jwks.json' ? htmlAnswer('<html>Not Found</html>', 404) : undefined));
    const report = await runDoctor({ env: envFor(auth0.issuer, { AUTH0_MANAGEMENT_TOKEN: token }), fetch: noKeys });
    expect(problems(report)).toEqual(['warn management.access']);
    expect(finding(report, 'management.access').title).toMatch(/^Whether the Management API token, issued by https:\/\/tenant\.example\.com\/, is of the BFF's tenant is not known: the issuer's keys at .* could not be read \(it answered HTTP 404\)$/);
    expect(skipped(report)).toEqual(DEPENDENT);
  });
});

describe('an answer at the Management API\'s address that is not the Management API\'s', () => {
  /** Every Management API request answered with `answer`. */
  const managementAnswering = (answer: (url: URL) => Response) => tenantWith((url) => (url.pathname.startsWith('/api/v2/') ? answer(url) : undefined));

  it('a page with 200 (a proxy, a login page) fails the access, and nothing is checked with it', async () => {
    const report = await runDoctor({ env: envFor(auth0.issuer, { AUTH0_MANAGEMENT_TOKEN: managementToken }), fetch: managementAnswering(() => htmlAnswer('<html><body>Sign in</body></html>', 200)) });
    expect(problems(report)).toEqual(['fail management.access']);
    expect(finding(report, 'management.access')).toMatchObject({
      title: expect.stringMatching(/ answered HTTP 200 with a page, not the Management API's JSON$/),
      fix: expect.stringContaining('not a proxy or a page in front of it'),
    });
    expect(skipped(report)).toEqual(DEPENDENT);
    expect(report.ok).toBe(false);
  });

  it('JSON of another shape with 200 fails the access the same way', async () => {
    const swapped = managementAnswering((url) => (url.pathname.endsWith('/resource-servers') ? jsonAnswer({ identifier: API }, 200) : jsonAnswer([], 200)));
    const report = await runDoctor({ env: envFor(auth0.issuer, { AUTH0_MANAGEMENT_TOKEN: managementToken }), fetch: swapped });
    expect(problems(report)).toEqual(['fail management.access']);
    expect(finding(report, 'management.access').title).toMatch(/ answered HTTP 200 with JSON that is not the Management API's$/);
  });

  it('a 404 page is one failure of the access, not "the tenant has no such application"', async () => {
    const report = await runDoctor({ env: envFor(auth0.issuer, { AUTH0_MANAGEMENT_TOKEN: managementToken }), fetch: managementAnswering(() => htmlAnswer('<html>Not Found</html>', 404)) });
    expect(problems(report), printed(report)).toEqual(['fail management.access']);
    expect(finding(report, 'management.access').title).toMatch(/ answered HTTP 404 with a page, not the Management API's JSON$/);
    expect(finding(report, 'client.callback-url').title).toMatch(/not checked: the Management API did not give the application settings$/);
  });

  it('Auth0\'s own 404 for the application counts only when the resource servers were read too', async () => {
    const refusedServers = managementAnswering((url) =>
      url.pathname.endsWith('/resource-servers')
        ? jsonAnswer({ statusCode: 401, error: 'Unauthorized', message: 'Invalid token' }, 401)
        : jsonAnswer({ statusCode: 404, error: 'Not Found', message: 'The client does not exist', errorCode: 'inexistent_client' }, 404));
    const report = await runDoctor({ env: envFor(auth0.issuer, { AUTH0_MANAGEMENT_TOKEN: managementToken }), fetch: refusedServers });
    expect(problems(report)).toEqual(['fail management.access']);
    expect(report.findings.some((f) => f.id === 'client.exists')).toBe(false);
  });
});
