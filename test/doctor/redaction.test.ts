import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runCommand } from '../../src/doctor/command.js';
import { runDoctor } from '../../src/doctor/doctor.js';
import { scrubberOf } from '../../src/doctor/finding.js';
import { startLocalAuth0, type LocalAuth0 } from '../../src/local-auth0/index.js';
import { API, BASE, SECRET, SESSION_SECRET, app, envFor, printed } from './fixtures.js';

/**
 * The README promises that no secret it was given, and neither the user name nor the password of a URL variable,
 * appears in the report: in its findings, and in the target it prints above them (text) or as `target` (JSON).
 */
const LONG = { user: 'deploy-bot', password: 'Zq8vL2mN7xR4tY9p' };
const AUDIENCE_WITH_LONG = `https://${LONG.user}:${LONG.password}@api.example.com`;
const AUDIENCE_WITH_SHORT = 'https://bob:hunter2@api.example.com';

let auth0: LocalAuth0;

beforeAll(async () => {
  // The API of the short credentials exists, so that the API checks quote its identifier in their findings.
  auth0 = await startLocalAuth0({ clients: [app('good')], users: [], apis: [{ audience: API }, { audience: AUDIENCE_WITH_SHORT }] });
});
afterAll(async () => {
  await auth0?.stop();
});

describe('the credentials of a URL variable', () => {
  it('are in neither the printed target nor the JSON target', async () => {
    const report = await runDoctor({ env: envFor(auth0.issuer, { AUDIENCE: AUDIENCE_WITH_LONG }) });
    expect(report.target.audiences).toEqual(['https://***@api.example.com']);
    expect(printed(report)).not.toContain(LONG.password);
    expect(printed(report)).not.toContain(LONG.user);
  });

  it('are not on the command\'s output, text or --json', async () => {
    const out: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(t) };
    await runCommand(['doctor'], envFor(auth0.issuer, { AUDIENCE: AUDIENCE_WITH_LONG }), io);
    await runCommand(['doctor', '--json'], envFor(auth0.issuer, { AUDIENCE: AUDIENCE_WITH_LONG }), io);
    expect(out.join('')).toContain('https://***@api.example.com');
    expect(out.join('')).not.toContain(LONG.password);
  });

  it('are not in the findings when the password is short', async () => {
    const report = await runDoctor({ env: envFor(auth0.issuer, { AUDIENCE: AUDIENCE_WITH_SHORT, AUTH0_MANAGEMENT_TOKEN: auth0.admin.issueManagementToken() }) });
    expect(report.findings.find((f) => f.id === 'api.online-access')).toMatchObject({ status: 'ok', title: 'The API https://***@api.example.com allows online access' });
    expect(printed(report)).not.toContain('hunter2');
  });

  it('are not in the target of createBff options either', async () => {
    const report = await runDoctor({
      options: { issuer: auth0.issuer, clientId: 'good', clientSecret: SECRET, audience: AUDIENCE_WITH_LONG, baseURL: BASE, session: { secrets: [SESSION_SECRET] } },
    });
    expect(report.target.audiences).toEqual(['https://***@api.example.com']);
    expect(printed(report)).not.toContain(LONG.password);
  });
});

describe('what the scrubbing replaces', () => {
  it('a secret from 3 characters up, wherever it appears, longest first and in one pass', () => {
    const scrub = scrubberOf(['abc', 'xabcx', 'ab', undefined]);
    expect(scrub('abc xabcx ab [abc]')).toBe('[redacted] [redacted] ab [[redacted]]');
  });

  it('a user name from 8 characters up, as user names are often words (Redis\' "default")', () => {
    const scrub = scrubberOf([], ['default', 'deploy-bot']);
    expect(scrub('the default user deploy-bot')).toBe('the default user [redacted]');
  });

  it('the user information of every URL, however short, and a password with an @', () => {
    const scrub = scrubberOf([]);
    expect(scrub('got "https://a:b@api.example.com/x" and redis://:p@ss@cache:6379, not x@y or https://app.example.com/cb'))
      .toBe('got "https://***@api.example.com/x" and redis://***@cache:6379, not x@y or https://app.example.com/cb');
  });
});
