import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runCommand } from '../../src/doctor/command.js';
import { runDoctor } from '../../src/doctor/doctor.js';
import { startLocalAuth0, type LocalAuth0 } from '../../src/local-auth0/index.js';
import { API, app, envFor, finding, localServer, problems, tenantWith } from './fixtures.js';

/**
 * The discovery document as the BFF's own client (openid-client) loads it, which follows no redirect: a document
 * the doctor could read but the BFF cannot is a failure, never "nothing to fix".
 */
let auth0: LocalAuth0;
let document: Record<string, unknown>;

beforeAll(async () => {
  auth0 = await startLocalAuth0({ clients: [app('good')], users: [], apis: [{ audience: API }] });
  document = (await (await fetch(new URL('.well-known/openid-configuration', auth0.issuer))).json()) as Record<string, unknown>;
});
afterAll(async () => {
  await auth0?.stop();
});

const quiet = { stdout: () => {}, stderr: () => {} };

describe('a discovery document behind a redirect', () => {
  it('fails the document, naming the redirect, and exits 1: the BFF could not start', async () => {
    // A front whose issuer is its own address and whose document is moved; the endpoints are the emulator's.
    const front = await localServer((req, res, url) => {
      if (req.url === '/.well-known/openid-configuration') res.writeHead(302, { location: '/moved/openid-configuration' }).end();
      else if (req.url === '/moved/openid-configuration') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...document, issuer: url }));
      else res.writeHead(404).end();
    });
    try {
      const report = await runDoctor({ env: envFor(front.url) });
      expect(problems(report)).toEqual(['fail discovery.document']);
      expect(finding(report, 'discovery.document').title).toBe(`Cannot read ${front.url}.well-known/openid-configuration: it redirects (HTTP 302) to ${front.url}moved/openid-configuration`);
      expect(finding(report, 'client.credentials').status).toBe('skip');
      expect(report.ok).toBe(false);
      expect(await runCommand(['doctor'], envFor(front.url), quiet)).toBe(1);
    } finally {
      await front.close();
    }
  });
});

describe('a discovery document the BFF\'s client cannot use though the doctor\'s checks pass', () => {
  /** The document as the emulator serves it to the doctor's own read, and `later` to every read after it (the BFF's client). */
  function documentThenAnswer(later: () => Response): typeof fetch {
    let reads = 0;
    return tenantWith((url) => (url.pathname === '/.well-known/openid-configuration' && ++reads > 1 ? later() : undefined));
  }

  it('is a failure of its own, not a skipped check that leaves "nothing to fix"', async () => {
    const report = await runDoctor({ env: envFor(auth0.issuer), fetch: documentThenAnswer(() => new Response(null, { status: 302, headers: { location: '/elsewhere' } })) });
    expect(problems(report)).toEqual(['fail discovery.client']);
    expect(finding(report, 'discovery.client')).toMatchObject({ section: 'discovery', title: "The BFF's client cannot use the discovery document (unexpected HTTP response status code: HTTP 302)", fix: expect.stringContaining('no redirect') });
    expect(finding(report, 'client.credentials')).toMatchObject({ status: 'skip', title: expect.stringMatching(/cannot use the discovery document/) });
    expect(report.ok).toBe(false);
  });

  it('is a warning when the client\'s read met a fault of the moment (a 503)', async () => {
    const report = await runDoctor({ env: envFor(auth0.issuer), fetch: documentThenAnswer(() => new Response('upstream', { status: 503 })) });
    expect(problems(report)).toEqual(['warn discovery.client']);
    expect(report.ok).toBe(true);
  });
});
