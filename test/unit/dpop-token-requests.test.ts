/**
 * DPoP at the token endpoint, with Auth0 faked at the fetch layer: what each exchange sends, how nonces and
 * refusals are answered, and which stored tokens may still be used with the BFF's key.
 */
import { randomUUID, generateKeyPairSync } from 'node:crypto';
import { EmbeddedJWK, jwtVerify } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { validateOptions, type BffConfig } from '../../src/config/validate.js';
import { DPoP } from '../../src/dpop/dpop.js';
import { ErrorCode, type BffError } from '../../src/errors.js';
import { BffEventEmitter } from '../../src/events/events.js';
import { Reporter } from '../../src/events/reporter.js';
import { IdpClient } from '../../src/idp/idp-client.js';
import { plainCipher } from '../../src/session/encryption.js';
import { createMemoryBackend } from '../../src/session/memory-backend.js';
import type { AccessTokenEntry } from '../../src/session/record.js';
import { Sessions } from '../../src/session/sessions.js';
import { ClientTokens } from '../../src/tokens/client-tokens.js';
import { TokenManager } from '../../src/tokens/token-manager.js';

const ISSUER = 'https://tenant.example/';
const TOKEN_ENDPOINT = `${ISSUER}oauth/token`;
const API = 'https://api.example.test';
const HOUR = 3_600_000;
const ecJwk = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }) as JsonWebKey;

/** A scripted answer, sent after `afterMs`. */
type Answer = { status: number; body: object; headers?: Record<string, string>; afterMs?: number };
/** `'never'`: a request Auth0 never answers. */
type Reply = Answer | 'never';
const granted = (tokenType: 'DPoP' | 'Bearer', accessToken = `AT-${randomUUID()}`): Answer =>
  ({ status: 200, body: { access_token: accessToken, token_type: tokenType, expires_in: 3600 } });
const refused = (status: number, error: string, headers?: Record<string, string>): Answer =>
  ({ status, body: { error, error_description: `${error} (fake)` }, ...(headers ? { headers } : {}) });

/** A BFF's token side against a scripted token endpoint that records the DPoP header of each request. */
async function bffWith(options: { dpopKey?: JsonWebKey; replies: Reply[]; supportedAlgs?: string[]; tokens?: { exchangeDeadline: number; attemptTimeout: number } }) {
  const proofs: Array<string | null> = [];
  const logs: string[] = [];
  const now = Date.now();
  const fakeFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = String(input instanceof Request ? input.url : input);
    const reply = async (r: Reply): Promise<Response> => {
      if (r === 'never') return new Promise((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal!.reason as Error)));
      if (r.afterMs !== undefined) await new Promise((resolve) => setTimeout(resolve, r.afterMs));
      return new Response(JSON.stringify(r.body), { status: r.status, headers: { 'content-type': 'application/json', ...r.headers } });
    };
    if (url.endsWith('/.well-known/openid-configuration')) {
      return reply({ status: 200, body: { issuer: ISSUER, token_endpoint: TOKEN_ENDPOINT, authorization_endpoint: `${ISSUER}authorize`, ...(options.supportedAlgs ? { dpop_signing_alg_values_supported: options.supportedAlgs } : {}) } });
    }
    proofs.push(new Headers(init?.headers).get('dpop'));
    return reply(options.replies.shift() ?? refused(500, 'server_error'));
  };
  const config: BffConfig = validateOptions({
    issuer: ISSUER, clientId: 'bff', clientSecret: 'secret', audience: API, baseURL: 'https://app.example',
    session: { secrets: ['s'.repeat(32)] },
    fetch: fakeFetch as typeof fetch,
    clock: () => now,
    logger: { warn: (m) => void logs.push(m), error: (m) => void logs.push(m) },
    tokens: options.tokens ?? { exchangeDeadline: 2_000, attemptTimeout: 500 },
    ...(options.dpopKey ? { dpop: { key: options.dpopKey } } : {}),
  });
  const dpop = config.dpop ? new DPoP(config.dpop, config.clock, config.logger) : undefined;
  const idp = new IdpClient(config, dpop);
  await idp.ready();
  const backend = createMemoryBackend(plainCipher, 24 * HOUR, config.clock);
  const report = new Reporter(new BffEventEmitter(), config.logger);
  const sessions = new Sessions(config, backend, report);
  const manager = new TokenManager(config, idp, sessions, report);

  /** A session whose stored token for the API is `stored` (due for renewal unless it is fresh). */
  async function session(stored: Partial<AccessTokenEntry> = {}) {
    const id = randomUUID();
    await backend.createRecord(id, {
      sub: 'auth0|alice', sid: 'sid', createdAt: now, absoluteExpiresAt: now + 24 * HOUR, idleExpiresAt: now + 24 * HOUR, lastActiveAt: now, userAgent: undefined, logoutId: 'l',
      refreshToken: 'ORT-1', idToken: undefined, scope: undefined, claims: { sub: 'auth0|alice' },
      accessTokens: { [API]: { token: 'AT-stored', expiresAt: now + HOUR, refreshAt: now - 1, scope: undefined, ...stored } },
    });
    return {
      id,
      token: async () => manager.accessToken({ id, view: (await backend.readView(id, API))! }, { audience: API }),
    };
  }
  /** The application's own token for the API (the client-credentials grant), another instance having stored `stored`. */
  async function applicationToken(stored: Partial<AccessTokenEntry>) {
    const slot = new ClientTokens(config, idp, backend, report, sessions).forApi(API, undefined);
    await backend.storeClientToken(slot.name, { token: 'AT-app-stored', expiresAt: now + HOUR, refreshAt: now + HOUR - 60_000, scope: undefined, ...stored });
    return slot.token();
  }
  return { config, proofs, logs, session, applicationToken, close: () => (idp.close(), report.close(), sessions.close(), backend.close()) };
}

let close: (() => unknown) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

describe('DPoP token requests', () => {
  it('prove possession of the key in every exchange, and the token is stored bound to it', async () => {
    const bff = await bffWith({ dpopKey: ecJwk(), replies: [granted('DPoP', 'AT-bound')] });
    close = bff.close;
    const entry = await (await bff.session()).token();

    expect(entry).toMatchObject({ token: 'AT-bound', jkt: bff.config.dpop!.key.thumbprint });
    const { payload, protectedHeader } = await jwtVerify(bff.proofs[0]!, EmbeddedJWK, { typ: 'dpop+jwt' });
    expect(protectedHeader.jwk).toEqual(bff.config.dpop!.key.publicJwk);
    expect(payload).toMatchObject({ htm: 'POST', htu: TOKEN_ENDPOINT, iat: expect.any(Number), jti: expect.any(String) });
    expect(payload).not.toHaveProperty('ath');
  });

  it('answer use_dpop_nonce with one retry carrying the nonce, and start the next exchange with it', async () => {
    const bff = await bffWith({
      dpopKey: ecJwk(),
      replies: [refused(400, 'use_dpop_nonce', { 'dpop-nonce': 'nonce-1' }), granted('DPoP'), granted('DPoP')],
    });
    close = bff.close;
    await (await bff.session()).token();
    await (await bff.session()).token();

    const nonces = bff.proofs.map((proof) => JSON.parse(Buffer.from(proof!.split('.')[1]!, 'base64url').toString()).nonce);
    expect(nonces).toEqual([undefined, 'nonce-1', 'nonce-1']);
  });

  it('try the exchange again when the nonce changed between the challenge and its retry: no logout, no error', async () => {
    const challenge = (nonce: string) => refused(400, 'use_dpop_nonce', { 'dpop-nonce': nonce });
    const bff = await bffWith({ dpopKey: ecJwk(), replies: [challenge('n1'), challenge('n2'), granted('DPoP', 'AT-late')] });
    close = bff.close;
    // openid-client retries once (n1), the second challenge (n2) is a transient failure: the next attempt carries n2.
    expect((await (await bff.session()).token()).token).toBe('AT-late');
    expect(bff.proofs).toHaveLength(3);
  });

  it('give up an exchange by tokens.exchangeDeadline when Auth0 asks for a nonce late and never answers the retry', async () => {
    const bff = await bffWith({
      dpopKey: ecJwk(),
      tokens: { exchangeDeadline: 1_000, attemptTimeout: 1_000 },
      replies: [{ ...refused(400, 'use_dpop_nonce', { 'dpop-nonce': 'nonce-1' }), afterMs: 900 }, 'never'],
    });
    close = bff.close;
    // Expired: a token past its refresh point only would still serve the call while Auth0 fails.
    const s = await bff.session({ expiresAt: 1, refreshAt: 0 });
    const started = performance.now();
    const code = await s.token().then(() => 'ok', (error: BffError) => error.code);
    const took = performance.now() - started;

    expect(code).toBe(ErrorCode.TOKEN_SERVICE_UNAVAILABLE);
    // The retry carrying the nonce was made (a last request in the deadline's final moments may follow it).
    expect(JSON.parse(Buffer.from(bff.proofs[1]!.split('.')[1]!, 'base64url').toString()).nonce).toBe('nonce-1');
    // By the deadline (1 s), give or take a busy machine; a retry given a whole attempt again ends past 1.9 s.
    expect(took).toBeLessThan(1_700);
  });

  it('count invalid_dpop_proof as the BFF\'s configuration error: 500, the session kept', async () => {
    const bff = await bffWith({ dpopKey: ecJwk(), replies: [refused(400, 'invalid_dpop_proof'), granted('DPoP', 'AT-after')] });
    close = bff.close;
    const s = await bff.session();
    expect(await s.token().then(() => 'ok', (error: BffError) => error.code)).toBe(ErrorCode.CONFIGURATION_ERROR);
    expect((await s.token()).token).toBe('AT-after');
  });

  it('keep a Bearer answer (the API has DPoP off in Auth0) unbound, and say so once per API', async () => {
    const bff = await bffWith({ dpopKey: ecJwk(), replies: [granted('Bearer', 'AT-plain'), granted('Bearer')] });
    close = bff.close;
    expect(await (await bff.session()).token()).toMatchObject({ token: 'AT-plain', jkt: undefined });
    await (await bff.session()).token();
    expect(bff.logs.filter((line) => line.includes('Bearer token'))).toHaveLength(1);
  });

  it('warn at startup when the issuer lists DPoP algorithms without the key\'s', async () => {
    const bff = await bffWith({ dpopKey: ecJwk(), replies: [], supportedAlgs: ['Ed25519'] });
    close = bff.close;
    expect(bff.logs.some((line) => line.includes('dpop_signing_alg_values_supported'))).toBe(true);
  });
});

describe('stored tokens and the DPoP key', () => {
  it('uses a fresh token bound to its key, or a Bearer token, without an exchange', async () => {
    const bff = await bffWith({ dpopKey: ecJwk(), replies: [] });
    close = bff.close;
    const fresh = { refreshAt: Date.now() + HOUR };
    expect((await (await bff.session({ ...fresh, jkt: bff.config.dpop!.key.thumbprint })).token()).token).toBe('AT-stored');
    expect((await (await bff.session(fresh)).token()).token).toBe('AT-stored');
    expect(bff.proofs).toHaveLength(0);
  });

  it('renews a fresh token bound to another key before using it (the key was changed)', async () => {
    const bff = await bffWith({ dpopKey: ecJwk(), replies: [granted('DPoP', 'AT-rebound')] });
    close = bff.close;
    const entry = await (await bff.session({ refreshAt: Date.now() + HOUR, jkt: 'thumbprint-of-the-old-key' })).token();
    expect(entry).toMatchObject({ token: 'AT-rebound', jkt: bff.config.dpop!.key.thumbprint });
  });

  it('does the same with the application\'s own token that another instance stored: fresh and fitting is used, bound to another key or with DPoP off is renewed', async () => {
    const bound = await bffWith({ dpopKey: ecJwk(), replies: [granted('DPoP', 'AT-app-rebound')] });
    close = bound.close;
    const thumbprint = bound.config.dpop!.key.thumbprint;
    expect(await bound.applicationToken({ jkt: thumbprint })).toMatchObject({ token: 'AT-app-stored' });
    expect(bound.proofs).toHaveLength(0);
    expect(await bound.applicationToken({ jkt: 'thumbprint-of-another-instance-key' })).toMatchObject({ token: 'AT-app-rebound', jkt: thumbprint });
    expect(bound.proofs).toHaveLength(1);
    expect(bound.proofs[0]).toEqual(expect.any(String));
    await bound.close();

    const plain = await bffWith({ replies: [granted('Bearer', 'AT-app-bearer')] });
    close = plain.close;
    expect(await plain.applicationToken({ jkt: thumbprint })).toMatchObject({ token: 'AT-app-bearer', jkt: undefined });
    expect(plain.proofs).toEqual([null]);
  });

  it('renews a bound token once DPoP is turned off, and asks for a Bearer token without a proof', async () => {
    const bff = await bffWith({ replies: [granted('Bearer', 'AT-bearer')] });
    close = bff.close;
    const entry = await (await bff.session({ refreshAt: Date.now() + HOUR, jkt: 'thumbprint-of-the-old-key' })).token();
    expect(entry).toMatchObject({ token: 'AT-bearer', jkt: undefined });
    expect(bff.proofs).toEqual([null]);
  });
});
