import { exportJWK, generateKeyPair, jwtVerify, SignJWT, errors as joseErrors } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { isKeySetFault, issuerKeys } from '../../src/idp/issuer-keys.js';

const JWKS_URI = new URL('https://tenant.example/.well-known/jwks.json');

async function keyPair(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}
type Key = Awaited<ReturnType<typeof keyPair>>;

const sign = (key: Key) =>
  new SignJWT({ sub: 'auth0|alice' }).setProtectedHeader({ alg: 'RS256', kid: key.kid }).setIssuedAt().setExpirationTime('2m').sign(key.privateKey);

/** The issuer's key set endpoint, fake at the fetch layer: it serves `published`, or fails as `failure` says. */
function keySetEndpoint() {
  const endpoint = {
    published: [] as Key[],
    failure: undefined as undefined | 'network' | 'status',
    fetches: 0,
    fetch: (async () => {
      endpoint.fetches += 1;
      if (endpoint.failure === 'network') throw new TypeError('fetch failed');
      if (endpoint.failure === 'status') return new Response('upstream connect error', { status: 503 });
      return Response.json({ keys: endpoint.published.map((k) => k.jwk) });
    }) as typeof fetch,
  };
  return endpoint;
}

describe('the issuer\'s keys, when its key set cannot be fetched again', () => {
  let current: Key;
  let next: Key;
  beforeAll(async () => {
    [current, next] = await Promise.all([keyPair('current'), keyPair('next')]);
  });

  it('verifies a token signed with a key fetched before, whether the fetch fails or answers an error', async () => {
    const endpoint = keySetEndpoint();
    endpoint.published = [current];
    // A cache time of 0: every verification fetches the key set again, as one after jose's 10 minutes does.
    const keys = issuerKeys(JWKS_URI, endpoint.fetch, 1_000, 0);
    await jwtVerify(await sign(current), keys);

    for (const failure of ['network', 'status'] as const) {
      endpoint.failure = failure;
      const before = endpoint.fetches;
      const { payload } = await jwtVerify(await sign(current), keys);
      expect(payload.sub).toBe('auth0|alice');
      expect(endpoint.fetches).toBe(before + 1);
    }
  });

  it('still refuses a token whose signature does not verify with the key fetched before', async () => {
    const endpoint = keySetEndpoint();
    endpoint.published = [current];
    const keys = issuerKeys(JWKS_URI, endpoint.fetch, 1_000, 0);
    await jwtVerify(await sign(current), keys);
    endpoint.failure = 'network';
    const forged = await new SignJWT({ sub: 'auth0|alice' }).setProtectedHeader({ alg: 'RS256', kid: 'current' }).setIssuedAt().setExpirationTime('2m').sign(next.privateKey);
    await expect(jwtVerify(forged, keys)).rejects.toBeInstanceOf(joseErrors.JWSSignatureVerificationFailed);
  });

  it('answers a key set fault (Auth0 failing, not the token) for a key it never had, and before any fetch succeeded', async () => {
    const endpoint = keySetEndpoint();
    endpoint.published = [current];
    endpoint.failure = 'network';
    const keys = issuerKeys(JWKS_URI, endpoint.fetch, 1_000, 0);
    const first = await jwtVerify(await sign(current), keys).catch((error: unknown) => error);
    expect(isKeySetFault(first)).toBe(true);

    endpoint.failure = undefined;
    await jwtVerify(await sign(current), keys);
    endpoint.failure = 'status';
    const unknown = await jwtVerify(await sign(next), keys).catch((error: unknown) => error);
    expect(isKeySetFault(unknown)).toBe(true);
  });

  it('caches the key set (10 minutes by default): verifications in that time fetch nothing', async () => {
    const endpoint = keySetEndpoint();
    endpoint.published = [current];
    const keys = issuerKeys(JWKS_URI, endpoint.fetch, 1_000);
    for (let i = 0; i < 3; i++) await jwtVerify(await sign(current), keys);
    expect(endpoint.fetches).toBe(1);
  });

  it('takes a newly published key once the key set answers again', async () => {
    const endpoint = keySetEndpoint();
    endpoint.published = [current];
    const keys = issuerKeys(JWKS_URI, endpoint.fetch, 1_000, 0);
    await jwtVerify(await sign(current), keys);
    endpoint.published = [current, next];
    const { payload } = await jwtVerify(await sign(next), keys);
    expect(payload.sub).toBe('auth0|alice');
  });
});
