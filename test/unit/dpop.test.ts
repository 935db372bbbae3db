import { createHash, generateKeyPairSync, KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { validateOptions } from '../../src/config/validate.js';
import { demandsNonce, parseChallenges } from '../../src/dpop/challenge.js';
import { DPoP } from '../../src/dpop/dpop.js';
import { readDPoPKey } from '../../src/dpop/key.js';
import { NonceCache } from '../../src/dpop/nonces.js';
import { invalidToken } from '../../src/proxy/forward.js';
import { accessTokenHash, ProofSigner } from '../../src/dpop/proof.js';
import { BffConfigError } from '../../src/errors.js';
import { plainCipher } from '../../src/session/encryption.js';
import { decodeAccessToken, encodeAccessToken } from '../../src/session/record.js';

const ecJwk = (namedCurve = 'P-256') => generateKeyPairSync('ec', { namedCurve }).privateKey.export({ format: 'jwk' });
const publicOf = ({ d: _d, ...rest }: Record<string, unknown>) => rest;
/** The JWK with its private `d` pasted into another member too. */
const withMember = (jwk: JsonWebKey, member: 'crv' | 'alg') => ({ ...jwk, [member]: jwk.d });

describe('the DPoP key', () => {
  it('reads a private P-256 JWK as ES256, with the RFC 7638 thumbprint of its public key', async () => {
    const jwk = ecJwk();
    const key = readDPoPKey(jwk);
    expect(key.alg).toBe('ES256');
    expect(key.publicJwk).toEqual({ kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y });
    expect(key.thumbprint).toBe(await calculateJwkThumbprint(publicOf(jwk as Record<string, unknown>) as never));
  });

  it('takes the algorithm from the key: ES384 for P-384, ES512 for P-521, Ed25519', () => {
    expect(readDPoPKey(ecJwk('P-384')).alg).toBe('ES384');
    expect(readDPoPKey(ecJwk('P-521')).alg).toBe('ES512');
    expect(readDPoPKey(generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' })).alg).toBe('Ed25519');
    // The name most JWK generators write for an Ed25519 key (RFC 8037).
    expect(readDPoPKey({ ...generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }), alg: 'EdDSA' }).alg).toBe('Ed25519');
  });

  it('reads a private CryptoKey and a KeyObject', async () => {
    const jwk = ecJwk();
    const cryptoKey = await crypto.subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign']);
    expect(readDPoPKey(cryptoKey).thumbprint).toBe(readDPoPKey(jwk).thumbprint);
    expect(readDPoPKey(KeyObject.from(cryptoKey)).alg).toBe('ES256');
  });

  it('refuses a CryptoKey that cannot be exported (Node deprecates reading one), saying what to pass instead', async () => {
    const cryptoKey = await crypto.subtle.importKey('jwk', ecJwk(), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
    expect(() => readDPoPKey(cryptoKey)).toThrow(/cannot be exported: pass the private JWK, a KeyObject, or a CryptoKey made with extractable: true/);
  });

  it.each([
    ['a public JWK', () => publicOf(ecJwk() as Record<string, unknown>), /is a public key/],
    ['a public CryptoKey', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey, /is a public key/],
    ['a symmetric JWK', () => ({ kty: 'oct', k: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0' }), /symmetric key/],
    ['an RSA JWK', () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }), /RSA key/],
    ['a secp256k1 JWK', () => ecJwk('secp256k1'), /unsupported curve "secp256k1"/],
    ['a JSON string', () => JSON.stringify(ecJwk()), /not a string/],
    ['a JWK whose alg says otherwise', () => ({ ...ecJwk(), alg: 'RS256' }), /"alg": "RS256", but its key type signs with ES256/],
    ['a JWK whose x and y belong to another key', () => ({ ...ecJwk(), x: ecJwk().x, y: ecJwk().y }), /not a consistent key pair|not a valid private JWK/],
    ['a JWK with a broken d', () => ({ ...ecJwk(), d: 'AAAA' }), /not a valid private JWK|not a consistent key pair/],
    // A mis-pasted key: members that are no JOSE name are described, never quoted.
    ['a JWK whose crv holds its d', () => withMember(ecJwk(), 'crv'), /unsupported curve \(a \d+-character value\)/],
    ['an Ed25519 JWK whose crv holds its d', () => withMember(generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }), 'crv'), /unsupported curve \(a \d+-character value\)/],
    ['a JWK whose alg holds its d', () => withMember(ecJwk(), 'alg'), /"alg": \(a \d+-character value\), but its key type signs with ES256/],
  ])('refuses %s, saying why without quoting the key', (_name, make, reason) => {
    const input = make();
    const error = (() => {
      try {
        readDPoPKey(input);
      } catch (caught) {
        return caught as Error;
      }
      throw new Error('accepted');
    })();
    expect(error.message).toMatch(reason);
    const d = (input as { d?: unknown }).d;
    if (typeof d === 'string') expect(error.message).not.toContain(d);
  });

  it('is validated once with the other options: a bad dpop.key is named, dpop left out keeps Bearer tokens', () => {
    const base = { issuer: 'https://tenant.example/', clientId: 'c', clientSecret: 's', baseURL: 'https://app.example', session: { secrets: ['x'.repeat(32)] } };
    expect(validateOptions(base).dpop).toBeUndefined();
    expect(validateOptions({ ...base, dpop: { key: ecJwk() as JsonWebKey } }).dpop?.key.alg).toBe('ES256');
    const named = (options: object) => {
      try {
        validateOptions({ ...base, ...options });
      } catch (error) {
        return error as BffConfigError;
      }
      throw new Error('accepted');
    };
    expect(named({ dpop: { key: publicOf(ecJwk() as Record<string, unknown>) } })).toMatchObject({ option: 'dpop.key', message: expect.stringMatching(/^dpop\.key is a public key/) });
    expect(named({ dpop: {} })).toMatchObject({ option: 'dpop.key' });
    expect(named({ dpop: 'on' })).toMatchObject({ option: 'dpop' });
  });
});

describe('a DPoP proof', () => {
  const key = readDPoPKey(ecJwk());
  const now = Date.UTC(2030, 0, 1, 12, 0, 30, 999);
  const signer = new ProofSigner(key, () => now);

  it('is a dpop+jwt signed with the key it carries, for one method and URL, with iat, jti and ath', async () => {
    const token = 'an-access-token';
    const proof = signer.proof({ htm: 'GET', htu: 'https://api.example.com/items/7', ath: accessTokenHash(token) });
    const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', currentDate: new Date(now) });
    expect(protectedHeader).toEqual({ typ: 'dpop+jwt', alg: 'ES256', jwk: key.publicJwk });
    expect(payload).toEqual({ jti: expect.stringMatching(/^[0-9a-f-]{36}$/), htm: 'GET', htu: 'https://api.example.com/items/7', iat: Math.floor(now / 1000), ath: createHash('sha256').update(token).digest('base64url') });
  });

  it('on an API call, carries the ath of the token entry it is given, call after call, and a renewed entry\'s, leaving the entry as it was', async () => {
    const proofs = new DPoP({ key, previousKeys: [] }, () => now, { warn() {}, error() {} }).forUpstream(new URL('https://api.example.com'));
    const first = { token: 'first-token', expiresAt: 2, refreshAt: 1, scope: undefined, jkt: key.thumbprint };
    const renewed = { token: 'renewed-token', expiresAt: 4, refreshAt: 3, scope: undefined, jkt: key.thumbprint };
    const athSent = async (entry: typeof first) => {
      const headers: Record<string, string | string[]> = {};
      proofs.authorize(headers, 'GET', '/items?x=1', entry);
      expect(headers.authorization).toBe(`DPoP ${entry.token}`);
      return (await jwtVerify(headers.dpop as string, EmbeddedJWK, { currentDate: new Date(now) })).payload.ath;
    };

    expect(await athSent(first)).toBe(accessTokenHash('first-token'));
    expect(await athSent(first)).toBe(accessTokenHash('first-token'));
    expect(await athSent(renewed)).toBe(accessTokenHash('renewed-token'));
    expect(JSON.stringify(first)).toBe(JSON.stringify({ token: 'first-token', expiresAt: 2, refreshAt: 1, jkt: key.thumbprint }));
    expect(first).toEqual({ token: 'first-token', expiresAt: 2, refreshAt: 1, scope: undefined, jkt: key.thumbprint });
  });

  it('never carries the private key, and gets a new jti every time', () => {
    const jwk = key.privateKey.export({ format: 'jwk' });
    const proofs = Array.from({ length: 50 }, () => signer.proof({ htm: 'POST', htu: 'https://tenant.example/oauth/token' }));
    expect(JSON.stringify(decodeProtectedHeader(proofs[0]!))).not.toContain(jwk.d);
    expect(new Set(proofs.map((p) => JSON.parse(Buffer.from(p.split('.')[1]!, 'base64url').toString()).jti)).size).toBe(50);
  });

  it('carries the server nonce it is given, and escapes what a server or path chose', async () => {
    const proof = signer.proof({ htm: 'GET', htu: 'https://api.example.com/a"b', nonce: 'n-"1' });
    const { payload } = await jwtVerify(proof, EmbeddedJWK, { currentDate: new Date(now) });
    expect(payload).toMatchObject({ htu: 'https://api.example.com/a"b', nonce: 'n-"1' });
    expect(payload).not.toHaveProperty('ath');
  });

  it('is signed with Ed25519 keys too', async () => {
    const ed = new ProofSigner(readDPoPKey(generateKeyPairSync('ed25519').privateKey), () => now);
    const { protectedHeader } = await jwtVerify(ed.proof({ htm: 'GET', htu: 'https://api.example.com/' }), EmbeddedJWK, { currentDate: new Date(now) });
    expect(protectedHeader.alg).toBe('Ed25519');
  });

  it('hashes the access token as RFC 9449 7.1 does', () => {
    expect(accessTokenHash('Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU')).toBe('fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo');
  });
});

describe('DPoP nonces', () => {
  it('are remembered per server origin, the last one given wins', () => {
    const nonces = new NonceCache();
    nonces.set('https://a.example', 'n1');
    nonces.set('https://b.example', 'n2');
    nonces.set('https://a.example', 'n3');
    expect(nonces.get('https://a.example')).toBe('n3');
    expect(nonces.get('https://b.example')).toBe('n2');
    expect(nonces.get('https://c.example')).toBeUndefined();
  });

  it('are ignored when they are not RFC 9449 nonces (quotes, spaces, control characters, empty)', () => {
    const nonces = new NonceCache();
    nonces.set('https://a.example', 'good');
    for (const bad of ['', 'a b', 'a"b', 'a\\b', 'a\r\nb', 'x'.repeat(2000)]) nonces.set('https://a.example', bad);
    expect(nonces.get('https://a.example')).toBe('good');
  });

  it('are kept for a bounded number of servers', () => {
    const nonces = new NonceCache();
    for (let i = 0; i < 150; i++) nonces.set(`https://s${i}.example`, `n${i}`);
    expect(nonces.get('https://s0.example')).toBeUndefined();
    expect(nonces.get('https://s149.example')).toBe('n149');
  });
});

describe('WWW-Authenticate challenges', () => {
  it('parse schemes and parameters, quoted or not, several per header', () => {
    expect(parseChallenges('Bearer realm="api", DPoP algs="ES256 PS256", error=use_dpop_nonce, error_description="say \\"hi\\""')).toEqual([
      { scheme: 'bearer', params: { realm: 'api' } },
      { scheme: 'dpop', params: { algs: 'ES256 PS256', error: 'use_dpop_nonce', error_description: 'say "hi"' } },
    ]);
    expect(parseChallenges(['Basic realm="x"', 'DPoP error="invalid_token"'])).toEqual([
      { scheme: 'basic', params: { realm: 'x' } },
      { scheme: 'dpop', params: { error: 'invalid_token' } },
    ]);
  });

  it.each([
    ['DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"', true],
    ['dpop error=use_dpop_nonce', true],
    ['Bearer realm="x", DPoP error="use_dpop_nonce"', true],
    ['Bearer error="use_dpop_nonce"', false],
    ['DPoP error="invalid_token"', false],
    ['DPoP algs="ES256", Bearer error="use_dpop_nonce"', false],
    ['', false],
  ])('%j demands a nonce: %s', (header, expected) => {
    expect(demandsNonce(header)).toBe(expected);
  });

  it.each([
    ['Bearer error="invalid_token", error_description="expired"', true],
    ['DPoP error=invalid_token', true],
    ['Basic realm="api", DPoP error="invalid_token"', true],
    ['Basic realm="api", Bearer error="invalid_token"', true],
    ['Basic error="invalid_token"', false],
    ['Bearer error="invalid_token_type"', false],
    ['Bearer error="insufficient_scope"', false],
  ])('%j says the access token is invalid: %s', (header, expected) => {
    expect(invalidToken(header)).toBe(expected);
  });
});

describe('a stored access token', () => {
  const entry = { token: 'tok', expiresAt: 2_000, refreshAt: 1_000, scope: 'read:a' };

  it('keeps the thumbprint of the key it is bound to, and a Bearer token none', () => {
    expect(decodeAccessToken(encodeAccessToken({ ...entry, jkt: 'thumb-print_1' }, plainCipher), plainCipher)).toEqual({ ...entry, jkt: 'thumb-print_1' });
    expect(decodeAccessToken(encodeAccessToken(entry, plainCipher), plainCipher)).toEqual({ ...entry, jkt: undefined });
  });

  it('reads entries stored before DPoP as Bearer tokens, and refuses a truncated bound one', () => {
    expect(decodeAccessToken('1000|2000|tok|read:a', plainCipher)).toEqual({ ...entry, jkt: undefined });
    expect(decodeAccessToken('#thumb', plainCipher)).toBeUndefined();
  });
});
