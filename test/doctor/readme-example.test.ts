import { readFile } from 'node:fs/promises';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runDoctor, type DoctorReport } from '../../src/doctor/doctor.js';
import { formatReport } from '../../src/doctor/report.js';
import { startLocalAuth0, type LocalAuth0 } from '../../src/local-auth0/index.js';

/**
 * The README's worked example of the doctor is this run: a tenant whose API lacks "Allow Online Access" and whose
 * application sends back-channel logout for RP logout and expiry only. The emulator's address stands where the
 * README shows a tenant's.
 */
const TENANT = 'https://TENANT.us.auth0.com/';
const BASE = 'https://app.example.com';
const CLIENT_ID = 'k2Gx8QvR7tLmN3pZ';

let auth0: LocalAuth0;

beforeAll(async () => {
  auth0 = await startLocalAuth0({
    clients: [{
      clientId: CLIENT_ID,
      clientSecret: 'a-client-secret-of-the-readme-example',
      tokenEndpointAuthMethod: 'client_secret_post',
      redirectUris: [`${BASE}/auth/callback`],
      postLogoutRedirectUris: [`${BASE}/`],
      backchannelLogoutUri: `${BASE}/auth/backchannel-logout`,
      backchannelLogoutInitiators: ['rp-logout', 'idp-logout', 'session-expired'],
    }],
    users: [],
    apis: [{ audience: 'https://api.example.com', allowOnlineAccess: false }],
    accessTokenTtl: 86_400,
  });
});
afterAll(() => auth0?.stop());

/** The report with the emulator's issuer written as the README's tenant. */
function asTenant(report: DoctorReport): DoctorReport {
  return JSON.parse(JSON.stringify(report).split(auth0.issuer).join(TENANT)) as DoctorReport;
}

describe('the README\'s worked example of the doctor', () => {
  it('is what the doctor prints for that tenant', async () => {
    const report = await runDoctor({
      env: {
        ISSUER_URL: auth0.issuer,
        CLIENT_ID,
        CLIENT_SECRET: 'a-client-secret-of-the-readme-example',
        AUDIENCE: 'https://api.example.com',
        BASE_URL: BASE,
        SESSION_SECRET: 'a-random-session-secret-of-32-or-more-characters',
        AUTH0_MANAGEMENT_TOKEN: auth0.admin.issueManagementToken(),
      },
    });
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const example = /\$ npx express-ort-bff doctor\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(example, 'a ```text block starting with "$ npx express-ort-bff doctor" in the README').toBeDefined();
    expect(formatReport(asTenant(report))).toBe(example);
    expect(report.ok).toBe(false);
  });
});
