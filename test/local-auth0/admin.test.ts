import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { startLocalAuth0, type LocalAuth0 } from '../../src/local-auth0/index.js';
import { ALICE, API, BFF, loginForTokens, refresh } from './support.js';

let auth0: LocalAuth0;
let ort: string;

beforeAll(async () => {
  auth0 = await startLocalAuth0({ clients: [BFF], users: [ALICE], apis: [{ audience: API }] });
  ort = (await loginForTokens(auth0.issuer)).tokens.refresh_token!;
});
afterAll(() => auth0?.stop());
afterEach(() => auth0.admin.reset());

describe('request counts', () => {
  it('counts token requests by grant type and outcome, until reset', async () => {
    auth0.admin.resetCounts();
    await loginForTokens(auth0.issuer);
    await refresh(auth0.issuer, ort);
    await refresh(auth0.issuer, ort);
    await refresh(auth0.issuer, 'ORTunknown');
    expect(auth0.admin.counts()).toEqual({
      token: { authorization_code: { ok: 1, error: 0 }, refresh_token: { ok: 2, error: 1 } },
      revocations: 0,
      backchannelSent: 0,
      endSession: 0,
    });
    auth0.admin.resetCounts();
    expect(auth0.admin.counts().token).toEqual({});
  });
});

describe('token endpoint failure modes', () => {
  it('answers 503 with a JSON error until reset, and counts it as an error', async () => {
    auth0.admin.resetCounts();
    auth0.admin.failTokenEndpoint({ status: 503 });
    for (let i = 0; i < 2; i += 1) {
      const response = await refresh(auth0.issuer, ort);
      expect(response.status).toBe(503);
      expect(response.headers.get('content-type')).toMatch(/application\/json/);
      expect(response.body.error).toEqual(expect.any(String));
    }
    expect(auth0.admin.counts().token.refresh_token).toEqual({ ok: 0, error: 2 });
    auth0.admin.reset();
    expect((await refresh(auth0.issuer, ort)).status).toBe(200);
  });

  it('answers 429 too_many_requests with Retry-After', async () => {
    auth0.admin.failTokenEndpoint({ status: 429, retryAfter: 7 });
    const response = await refresh(auth0.issuer, ort);
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('7');
    expect(response.body.error).toBe('too_many_requests');
  });

  it('answers any status and body', async () => {
    auth0.admin.failTokenEndpoint({ status: 403, body: { error: 'access_denied', error_description: 'Revoked by an Action' } });
    const response = await refresh(auth0.issuer, ort);
    expect(response.status).toBe(403);
    expect(response.body).toEqual({ error: 'access_denied', error_description: 'Revoked by an Action' });
  });

  it('fails only as many times as asked, then answers normally', async () => {
    auth0.admin.failTokenEndpoint({ status: 503 }, { times: 2 });
    const statuses = [];
    for (let i = 0; i < 3; i += 1) statuses.push((await refresh(auth0.issuer, ort)).status);
    expect(statuses).toEqual([503, 503, 200]);
  });

  it('answers slowly with the real answer when given a delay', async () => {
    auth0.admin.failTokenEndpoint({ delayMs: 300 }, { times: 1 });
    const started = performance.now();
    const response = await refresh(auth0.issuer, ort);
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(response.status).toBe(200);
    expect(response.body.access_token).toEqual(expect.any(String));
  });

  it('refuses a malformed failure mode with a TypeError', () => {
    expect(() => auth0.admin.failTokenEndpoint({ status: 42 })).toThrow(TypeError);
    expect(() => auth0.admin.failTokenEndpoint({ delayMs: -1 })).toThrow(/delayMs/);
    expect(() => auth0.admin.failTokenEndpoint({ status: 503 }, { times: 0 })).toThrow(/times/);
  });

  it('refuses an interim 1xx status, which would leave the client waiting for an answer that never comes', () => {
    expect(() => auth0.admin.failTokenEndpoint({ status: 101 })).toThrow(/"mode\.status" must be an HTTP status code from 200 to 599/);
    expect(() => auth0.admin.failTokenEndpoint({ status: 600 })).toThrow(TypeError);
  });

  it('refuses a status given with a delay instead of dropping the status', () => {
    expect(() => auth0.admin.failTokenEndpoint({ status: 503, delayMs: 10 } as never)).toThrow(/either "delayMs" or "status"/);
    expect(() => auth0.admin.failTokenEndpoint({ delayMs: 10, body: {} } as never)).toThrow(TypeError);
  });

  it('answers a 429 with the body given, and refuses a 429 with neither retryAfter nor body', async () => {
    expect(() => auth0.admin.failTokenEndpoint({ status: 429 })).toThrow(/"mode\.retryAfter" is required/);
    expect(() => auth0.admin.failTokenEndpoint({ status: 503, retryAfter: 5 } as never)).toThrow(/only for "mode\.status" 429/);
    const body = { error: 'too_many_requests', error_description: 'Per-user limit reached' };
    auth0.admin.failTokenEndpoint({ status: 429, body }, { times: 1 });
    const response = await refresh(auth0.issuer, ort);
    expect(response.status).toBe(429);
    expect(response.body).toEqual(body);
  });

  it('counts a request that a failure mode answers 200 as ok, as counts() documents', async () => {
    auth0.admin.resetCounts();
    auth0.admin.failTokenEndpoint({ status: 200, body: { access_token: 'x', token_type: 'Bearer', expires_in: 60 } }, { times: 1 });
    expect((await refresh(auth0.issuer, 'ORTunknown')).status).toBe(200);
    expect(auth0.admin.counts().token.refresh_token).toEqual({ ok: 1, error: 0 });
  });
});

describe('ending sessions', () => {
  it('refuses a sid, a sub or a backchannel of the wrong type instead of ending nothing, or ending without telling', async () => {
    await expect(auth0.admin.endSession({ sid: 42 as never })).rejects.toThrow('"selector.sid" must be a non-empty string');
    await expect(auth0.admin.endSession({ sub: '' })).rejects.toThrow('"selector.sub" must be a non-empty string');
    await expect(auth0.admin.endSession({ sub: 'auth0|nobody' }, { backchannel: 'yes' as never })).rejects.toThrow(
      '"options.backchannel" must be a boolean',
    );
    expect(auth0.admin.sessions()).not.toEqual([]);
  });
});

describe('issued tokens', () => {
  it('lists access tokens, refresh tokens and codes without their values', async () => {
    const before = Date.now();
    const { tokens } = await loginForTokens(auth0.issuer);
    const listed = auth0.admin.tokens();
    expect(listed).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'access_token', clientId: 'bff', sub: 'auth0|alice', audience: API, issuedAt: expect.any(Number) }),
        expect.objectContaining({ kind: 'refresh_token', clientId: 'bff', online: true }),
      ]),
    );
    for (const token of listed) {
      expect(token).not.toHaveProperty('value');
      expect(token.expiresAt).toBeGreaterThan(Date.now() / 1000);
    }
    expect(JSON.stringify(listed)).not.toContain(tokens.refresh_token);
    // This login's access token is the latest one.
    expect(Math.max(...listed.map((t) => t.issuedAt ?? 0))).toBeGreaterThanOrEqual(before);
  });
});

describe('options', () => {
  it('are checked at start, and an error names the option', async () => {
    await expect(startLocalAuth0({ clients: [], users: [] })).rejects.toThrow('"clients" must be a non-empty array');
    await expect(startLocalAuth0({ clients: [{ ...BFF, redirectUris: [] }], users: [] })).rejects.toThrow(
      '"clients[0].redirectUris" must list at least one URL',
    );
    await expect(startLocalAuth0({ clients: [BFF], users: [], apis: [{ audience: 'not a uri' }] })).rejects.toThrow(
      /"apis\[0\]\.audience" must be an absolute URL/,
    );
    await expect(startLocalAuth0({ clients: [BFF], users: [], idleTimeout: 0 })).rejects.toThrow(/"idleTimeout"/);
  });

  it('serve a given port and issuer URL', async () => {
    const probe = await startLocalAuth0({ clients: [BFF], users: [] });
    const port = Number(new URL(probe.issuer).port);
    await probe.stop();
    const fixed = await startLocalAuth0({ clients: [BFF], users: [], port, issuerUrl: `http://localhost:${port}/` });
    try {
      expect(fixed.issuer).toBe(`http://localhost:${port}/`);
      const metadata = (await (await fetch(`http://127.0.0.1:${port}/.well-known/openid-configuration`)).json()) as { issuer: string };
      expect(metadata.issuer).toBe(`http://localhost:${port}/`);
    } finally {
      await fixed.stop();
    }
  });
});
