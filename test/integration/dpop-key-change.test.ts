/**
 * DPoP: a change of key rolled out over instances that share one Redis. While a load balancer sends one session's
 * calls to instances with the old key and to instances with the new one, the tokens must not be renewed on every
 * call; the example API verifies every proof against the token's `cnf.jkt`.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../../example/api/server.js';
import { AUDIENCE, startHarness, type Harness } from '../support/harness.js';

const newKey = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }) as JsonWebKey;
const oldKey = newKey();
const nextKey = newKey();
const refreshes = (h: Harness) => h.auth0.admin.counts().token.refresh_token?.ok ?? 0;

describe('a change of DPoP key rolled out over instances that share one Redis', () => {
  let h: Harness;
  let api: ExampleApi;
  beforeAll(async () => {
    h = await startHarness({
      redis: true,
      instances: 3,
      // Instance 0 has the old key; instance 1 the new one and the old one as a previous key; instance 2 only the new one.
      instanceBff: (i) => ({ dpop: i === 0 ? { key: oldKey } : i === 1 ? { key: nextKey, previousKeys: [oldKey] } : { key: nextKey } }),
      apis: async (_upstream, auth0) => {
        api = await startExampleApi({ issuer: auth0.issuer, audience: AUDIENCE, dpop: true });
        return [{ mount: '/api', upstream: api.url }];
      },
    });
  });
  afterAll(async () => {
    await h?.close();
    await api?.close();
  });
  beforeEach(() => h.auth0.admin.resetCounts());

  it('uses a token bound to a previous key with that key, on every call a load balancer sends across, without renewing it', async () => {
    const browser = h.browser(0);
    await browser.login();
    expect((await browser.api('/api/data')).status).toBe(200);
    const sent: string[] = [];
    const before = refreshes(h);
    for (let i = 0; i < 10; i++) {
      const res = await browser.use(i % 2).api('/api/data');
      expect(res.status).toBe(200);
      sent.push(((await res.json()) as { sub?: string }).sub ?? '');
    }
    expect(refreshes(h) - before).toBe(0);
    expect(sent.every((sub) => sub === 'auth0|alice')).toBe(true);
  });

  it('binds the tokens it renews to its new key, which the old instance renews once and then uses', async () => {
    const browser = h.browser(1);
    await browser.login();
    // A login on the new instance binds to the new key; the instance with only the old key renews it once, and
    // the new instance then uses that token (bound to its previous key) as it is.
    expect((await browser.use(1).api('/api/data')).status).toBe(200);
    const before = refreshes(h);
    for (let i = 0; i < 6; i++) expect((await browser.use(i % 2 === 0 ? 0 : 1).api('/api/data')).status).toBe(200);
    expect(refreshes(h) - before).toBe(1);
  });

  it('renews a token bound to a key it does not hold: an instance given only the new key', async () => {
    const browser = h.browser(0);
    await browser.login();
    expect((await browser.use(0).api('/api/data')).status).toBe(200);
    const before = refreshes(h);
    expect((await browser.use(2).api('/api/data')).status).toBe(200);
    expect((await browser.use(2).api('/api/data')).status).toBe(200);
    expect(refreshes(h) - before).toBe(1);
  });
});
