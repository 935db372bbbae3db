/**
 * DPoP: what an API's refusals of the BFF's proofs come to for the SPA. An API that refuses a proof
 * (`invalid_dpop_proof`) or asks for a nonce (`use_dpop_nonce`) did not process the request; the SPA must never
 * see its 401, which it would take for a logout, nor wait longer than the API's `timeout` for the answer.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/harness.js';

const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }) as JsonWebKey;
const payloadOf = (jwt: string): Record<string, unknown> => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());
const SLOW_TIMEOUT_MS = 2_000;

describe('an API that refuses the BFF\'s DPoP proofs', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      bff: { dpop: { key } },
      apis: (upstream) => [
        { mount: '/api', upstream },
        { mount: '/slow', upstream, timeout: SLOW_TIMEOUT_MS },
        // Two services behind one gateway origin, each with a nonce of its own.
        { mount: '/billing', upstream: `${upstream}/billing` },
        { mount: '/orders', upstream: `${upstream}/orders` },
      ],
    });
  });
  afterAll(() => h?.close());
  afterEach(() => {
    h.upstream.handler = undefined;
    h.upstream.requests.length = 0;
  });

  const refuseProof = (res: import('node:http').ServerResponse) => {
    res.writeHead(401, { 'www-authenticate': 'DPoP error="invalid_dpop_proof", error_description="iat out of range"', 'content-type': 'application/json' });
    res.end('{"error":"invalid_dpop_proof"}');
  };

  it('sends a GET again once with a fresh proof when the API refused the first', async () => {
    const browser = h.browser();
    await browser.login();
    let calls = 0;
    h.upstream.handler = (_req, res) => {
      if (++calls === 1) return refuseProof(res);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    };
    const res = await browser.api('/api/items');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
    const proofs = h.upstream.requests.map((r) => payloadOf(r.headers.dpop as string));
    expect(proofs).toHaveLength(2);
    expect(proofs[0]?.jti).not.toBe(proofs[1]?.jti);
    expect(proofs[1]).toMatchObject({ htm: 'GET', htu: `${h.upstream.url}/items` });
  });

  it('answers 502 upstream_unavailable when the API refuses the fresh proof too, reports why, and the session lives on', async () => {
    const browser = h.browser();
    await browser.login();
    h.events.length = 0;
    h.upstream.handler = (_req, res) => refuseProof(res);
    const res = await browser.api('/api/items');
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ error: 'upstream_unavailable', error_description: expect.stringContaining('DPoP proof') });
    expect(h.upstream.requests).toHaveLength(2);
    expect(h.events).toContainEqual({ name: 'upstream_failed', payload: expect.objectContaining({ api: '/api', error: 'upstream_unavailable', cause: 'INVALID_DPOP_PROOF' }) });
    expect(h.logs).toContainEqual(expect.stringMatching(/^warn The API could not be reached.*INVALID_DPOP_PROOF/));

    h.upstream.handler = undefined;
    expect((await browser.api('/api/items')).status).toBe(200);
    expect((await browser.user()).status).toBe(200);
  });

  it('does not send a POST with a body again: 502, with the API called once', async () => {
    const browser = h.browser();
    await browser.login();
    h.upstream.handler = (_req, res) => refuseProof(res);
    const res = await browser.api('/api/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"item":1}' });
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ error: 'upstream_unavailable' });
    expect(h.upstream.requests).toHaveLength(1);
  });

  it('keeps the nonce of each API behind one gateway origin apart: POSTs to both go through once each knows its own', async () => {
    const browser = h.browser();
    await browser.login();
    const nonces: Record<string, string> = { billing: 'billing-nonce', orders: 'orders-nonce' };
    h.upstream.handler = (req, res) => {
      const service = req.url!.split('/')[1]!;
      if (payloadOf(req.headers.dpop as string).nonce !== nonces[service]) {
        res.writeHead(401, { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': nonces[service]! });
        res.end();
        return;
      }
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end('{}');
    };
    const post = async (mount: string) => (await browser.api(`${mount}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status;
    // Each API's first POST is refused for want of its nonce (503 upstream_nonce_required, to be sent again).
    expect([await post('/billing'), await post('/orders')]).toEqual([503, 503]);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push(await post(i % 2 === 0 ? '/billing' : '/orders'));
    expect(statuses).toEqual([201, 201, 201, 201]);
  });

  it('gives a GET sent again for a nonce only the time its first call had left: 504 by the API\'s timeout, not twice it', async () => {
    const browser = h.browser();
    await browser.login();
    let calls = 0;
    h.upstream.handler = (_req, res) => {
      // The first answer comes late, within the timeout: a nonce challenge. The call sent again gets no answer.
      if (++calls === 1) {
        setTimeout(() => {
          res.writeHead(401, { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': 'n-1' });
          res.end();
        }, SLOW_TIMEOUT_MS * 0.8);
      }
    };
    const started = performance.now();
    const res = await browser.api('/slow/items');
    const took = performance.now() - started;
    expect(res.status).toBe(504);
    expect(calls).toBe(2);
    // With a fresh timeout the call sent again would end at 1.8x the timeout: well beyond this, on any host.
    expect(took).toBeLessThan(SLOW_TIMEOUT_MS * 1.5);
  });
});
