/**
 * DPoP over real HTTP: the emulator (nonces required at its token endpoint) binds the tokens, two BFF instances
 * share the key and Redis, and the example API verifies every call (proof, nonce, cnf.jkt).
 */
import { generateKeyPairSync } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../../example/api/server.js';
import { readDPoPKey } from '../../src/dpop/key.js';
import { ProofSigner, accessTokenHash } from '../../src/dpop/proof.js';
import { AUDIENCE, startHarness, waitFor, type Harness } from '../support/harness.js';
import { openSocket, opened } from '../support/ws-client.js';

const OTHER_AUDIENCE = 'https://other-api.example.test';
const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }) as JsonWebKey;

/** The credentials the BFF put on the wire to an upstream (what a log or a network tap could leak). */
interface Sent {
  origin: string;
  path: string;
  authorization: string | undefined;
  dpop: string | undefined;
}
const sent: Sent[] = [];
function onSendHeaders(message: unknown): void {
  const { request, headers } = message as { request: { origin: string; path: string }; headers: string };
  const header = (name: string) => new RegExp(`^${name}: (.*)$`, 'im').exec(headers)?.[1]?.trim();
  sent.push({ origin: String(request.origin), path: request.path, authorization: header('authorization'), dpop: header('dpop') });
}

const payloadOf = (jwt: string): Record<string, unknown> => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());
const counts = (h: Harness) => h.auth0.admin.counts().token;

describe('DPoP-bound tokens over real HTTP', () => {
  let h: Harness;
  let api: ExampleApi;
  let otherApi: ExampleApi;

  beforeAll(async () => {
    diagnostics.subscribe('undici:client:sendHeaders', onSendHeaders);
    h = await startHarness({
      redis: true,
      instances: 2,
      bff: { dpop: { key } },
      auth0: { dpop: { requireNonce: true } },
      apis: async (upstreamUrl, auth0) => {
        api = await startExampleApi({ issuer: auth0.issuer, audience: AUDIENCE, dpop: { nonces: true } });
        otherApi = await startExampleApi({ issuer: auth0.issuer, audience: OTHER_AUDIENCE, dpop: true });
        return [
          { mount: '/api', upstream: api.url },
          { mount: '/other', upstream: otherApi.url, audience: OTHER_AUDIENCE },
          { mount: '/raw', upstream: upstreamUrl },
          { mount: '/public', upstream: upstreamUrl, token: 'none' },
        ];
      },
    });
  });
  afterAll(async () => {
    diagnostics.unsubscribe('undici:client:sendHeaders', onSendHeaders);
    await h?.close();
    await api?.close();
    await otherApi?.close();
  });
  afterEach(() => {
    h.upstream.handler = undefined;
    h.upstream.requests.length = 0;
    sent.length = 0;
  });

  it('logs in and exchanges the ORT with proofs, answering the token endpoint\'s nonce challenge once', async () => {
    const browser = h.browser(0);
    h.auth0.admin.resetCounts();
    expect((await browser.login()).status).toBe(302);
    // The first proof has no nonce: the emulator, like Auth0 may, asks for one; openid-client retries with it.
    expect(counts(h).authorization_code).toEqual({ ok: 1, error: 1 });

    const data = await browser.api('/api/data');
    expect(data.status).toBe(200);
    expect(await data.json()).toMatchObject({ sub: 'auth0|alice' });

    // Another API: an ORT exchange with a proof, which carries the nonce the code exchange was given.
    const other = await browser.api('/other/data');
    expect(other.status).toBe(200);
    expect(counts(h).refresh_token).toEqual({ ok: 1, error: 0 });

    // What the BFF sent the APIs (the channel also sees the APIs fetching the emulator's keys).
    const toApis = sent.filter((call) => call.origin === api.url || call.origin === otherApi.url);
    expect(toApis.length).toBeGreaterThanOrEqual(2);
    for (const call of toApis) {
      expect(call.authorization).toMatch(/^DPoP /);
      expect(payloadOf(call.authorization!.slice(5)).cnf).toEqual({ jkt: readDPoPKey(key).thumbprint });
    }
  });

  it('uses on one instance the bound token the other stored: both hold the same key', async () => {
    const browser = h.browser(0);
    await browser.login();
    expect((await browser.api('/api/data')).status).toBe(200);
    h.auth0.admin.resetCounts();
    const onSecond = await browser.use(1).api('/api/data');
    expect(onSecond.status).toBe(200);
    expect(counts(h).refresh_token).toBeUndefined();
  });

  it('answers the API\'s nonce challenge by replaying a GET with the nonce, and needs no challenge for the next calls', async () => {
    const browser = h.browser(0);
    await browser.login();
    api.dpop!.rotateNonce();
    api.dpop!.rotateNonce();
    const before = api.dpop!.nonceChallenges;
    // Both instances start with a nonce that is too old by now (or none): one challenge each, then none.
    for (const instance of [0, 1, 0, 1]) expect((await browser.use(instance).api('/api/data')).status).toBe(200);
    expect(api.dpop!.nonceChallenges - before).toBe(2);
    const settled = api.dpop!.nonceChallenges;
    for (const instance of [0, 1]) expect((await browser.use(instance).api('/api/data')).status).toBe(200);
    expect(api.dpop!.nonceChallenges).toBe(settled);
  });

  it('takes the fresh nonce an API sends with its answers: after two rotations with calls between them, no challenge', async () => {
    const browser = h.browser(0);
    await browser.login();
    expect((await browser.api('/api/data')).status).toBe(200);
    const before = api.dpop!.nonceChallenges;
    for (let i = 0; i < 3; i++) {
      api.dpop!.rotateNonce();
      // Still accepted (the previous nonce): the answer carries the new one, which the next call uses.
      expect((await browser.api('/api/data')).status).toBe(200);
    }
    expect(api.dpop!.nonceChallenges).toBe(before);
  });

  it('replays a GET once after a nonce challenge, then answers 503 upstream_nonce_required if the API asks again', async () => {
    const browser = h.browser(0);
    await browser.login();
    let nonce = 0;
    h.upstream.handler = (_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': `n-${++nonce}`, 'content-type': 'application/json' });
      res.end('{"error":"use_dpop_nonce"}');
    };
    const res = await browser.api('/raw/items');
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('0');
    expect(await res.json()).toMatchObject({ error: 'upstream_nonce_required' });
    const proofs = h.upstream.requests.map((r) => payloadOf(r.headers.dpop as string));
    expect(h.upstream.requests).toHaveLength(2);
    expect(proofs[1]).toMatchObject({ nonce: 'n-1', htm: 'GET', htu: `${h.upstream.url}/items` });
  });

  it('passes a nonce challenge on as it is when its nonce is not one (RFC 9449 8), instead of asking the SPA to send again for ever', async () => {
    const browser = h.browser(0);
    await browser.login();
    for (const nonce of ['has "quotes" and spaces', 'n'.repeat(2_000)]) {
      h.upstream.requests.length = 0;
      h.upstream.handler = (_req, res) => {
        res.writeHead(401, { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': nonce, 'content-type': 'application/json' });
        res.end('{"error":"use_dpop_nonce"}');
      };
      const res = await browser.api('/raw/items');
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: 'use_dpop_nonce' });
      expect(h.upstream.requests).toHaveLength(1);
    }
  });

  it('does not replay a POST with a body after a nonce challenge: 503 upstream_nonce_required, and sent again it goes through', async () => {
    const browser = h.browser(0);
    await browser.login();
    let challenged = false;
    h.upstream.handler = (req, res, body) => {
      const proof = payloadOf(req.headers.dpop as string);
      if (proof.nonce !== 'fresh-nonce' && !challenged) {
        challenged = true;
        res.writeHead(401, { 'www-authenticate': 'DPoP error="use_dpop_nonce", error_description="nonce required"', 'dpop-nonce': 'fresh-nonce' });
        res.end();
        return;
      }
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ created: body, nonce: proof.nonce }));
    };
    const post = () => browser.api('/raw/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"item":1}' });
    const first = await post();
    expect(first.status).toBe(503);
    expect(await first.json()).toMatchObject({ error: 'upstream_nonce_required' });
    expect(h.upstream.requests).toHaveLength(1);

    const again = await post();
    expect(again.status).toBe(201);
    expect(await again.json()).toEqual({ created: '{"item":1}', nonce: 'fresh-nonce' });
  });

  it('opens a WebSocket to an API that takes only DPoP, answering its nonce challenge to the handshake', async () => {
    const browser = h.browser(0);
    await browser.login();
    api.dpop!.rotateNonce();
    api.dpop!.rotateNonce();
    const before = api.dpop!.nonceChallenges;
    const socket = opened(await openSocket(browser, '/api/live'));
    await waitFor(() => socket.messages.length > 0, 'the live feed greets');
    expect(JSON.parse(socket.messages[0]!.data.toString())).toMatchObject({ type: 'hello', sub: 'auth0|alice' });
    expect(api.dpop!.nonceChallenges - before).toBe(1);
    socket.ws.close();
    await socket.closed;
  });

  it('signs each call for its method and upstream URL without the query, with ath of the token it carries', async () => {
    const browser = h.browser(0);
    await browser.login();
    await browser.api('/raw/items/7?limit=5', { method: 'DELETE' });
    const [seen] = h.upstream.requests;
    const token = (seen!.headers.authorization as string).replace(/^DPoP /, '');
    expect(payloadOf(seen!.headers.dpop as string)).toMatchObject({ htm: 'DELETE', htu: `${h.upstream.url}/items/7`, ath: accessTokenHash(token) });
  });

  it('never passes the browser\'s own DPoP header on', async () => {
    const browser = h.browser(0);
    await browser.login();
    await browser.api('/raw/items', { headers: { dpop: 'from-the-browser' } });
    // With a bound token: the BFF's own proof, for this call, in its place.
    const proof = h.upstream.requests[0]!.headers.dpop as string;
    const header = JSON.parse(Buffer.from(proof.split('.')[0]!, 'base64url').toString()) as { jwk: JsonWebKey };
    expect(header.jwk).toMatchObject({ x: key.x, y: key.y });
    expect(payloadOf(proof)).toMatchObject({ htm: 'GET', htu: `${h.upstream.url}/items` });
    // Without a token to bind (an API whose policy sends none): no DPoP header at all.
    await browser.api('/public/items', { headers: { dpop: 'from-the-browser' } });
    expect(h.upstream.requests[1]!.headers).not.toHaveProperty('dpop');
  });

  describe('a token leaked from the BFF (its Redis, a log, the wire) is of no use elsewhere', () => {
    let leaked: Sent;
    beforeAll(async () => {
      const browser = h.browser(0);
      await browser.login();
      expect((await browser.api('/api/data')).status).toBe(200);
      leaked = sent.find((call) => call.origin === api.url && call.path === '/data' && call.dpop !== undefined)!;
    });
    const callApi = (headers: Record<string, string>) => fetch(`${api.url}/data`, { headers });

    it('is refused as a Bearer token, and with no proof', async () => {
      const token = leaked.authorization!.slice('DPoP '.length);
      const bearer = await callApi({ authorization: `Bearer ${token}` });
      expect(bearer.status).toBe(401);
      expect(bearer.headers.get('www-authenticate')).toMatch(/^DPoP /);
      expect((await callApi({ authorization: `DPoP ${token}` })).status).toBe(401);
    });

    it('is refused with a valid proof of another key, even with the API\'s current nonce', async () => {
      const token = leaked.authorization!.slice('DPoP '.length);
      const thief = new ProofSigner(readDPoPKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey), Date.now);
      const res = await callApi({
        authorization: `DPoP ${token}`,
        dpop: thief.proof({ htm: 'GET', htu: `${api.url}/data`, ath: accessTokenHash(token), nonce: api.dpop!.currentNonce }),
      });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: 'invalid_token' });
    });

    it('is refused when the proof it was sent with is replayed', async () => {
      const res = await callApi({ authorization: leaked.authorization!, dpop: leaked.dpop! });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: 'invalid_dpop_proof', error_description: expect.stringMatching(/used before/) });
    });
  });
});

describe('without DPoP', () => {
  it('drops the browser\'s own DPoP header like its Authorization, and sends a Bearer token', async () => {
    const h = await startHarness();
    try {
      const browser = h.browser();
      await browser.login();
      expect((await browser.api('/api/items', { headers: { dpop: 'from-the-browser', authorization: 'DPoP from-the-browser' } })).status).toBe(200);
      const [seen] = h.upstream.requests;
      expect(seen!.headers.dpop).toBeUndefined();
      expect(seen!.headers.authorization).toMatch(/^Bearer /);
    } finally {
      await h.close();
    }
  });
});
