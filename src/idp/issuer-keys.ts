import { createLocalJWKSet, createRemoteJWKSet, customFetch, errors as joseErrors, type JWTVerifyGetKey } from 'jose';

/** How long jose serves the issuer's key set before it fetches it again (its default). */
const CACHE_MAX_AGE_MS = 600_000;

/**
 * The issuer's signing keys (its `jwks_uri`), fetched through the BFF's fetch and cached as jose does, with one
 * addition: when the key set cannot be fetched again after its cache time, the keys fetched before still verify a
 * token signed with one of them (stale if error). Auth0 sends a logout token once: a moment when its key set does
 * not answer must not lose a logout it signed with a key the BFF already has.
 */
export function issuerKeys(jwksUri: URL, fetchImpl: typeof fetch, timeoutMs: number, cacheMaxAgeMs = CACHE_MAX_AGE_MS): JWTVerifyGetKey {
  const remote = createRemoteJWKSet(jwksUri, { [customFetch]: keySetFetch(fetchImpl), timeoutDuration: timeoutMs, cacheMaxAge: cacheMaxAgeMs });
  return async (header, token) => {
    try {
      return await remote(header, token);
    } catch (error) {
      const known = remote.jwks();
      if (!isKeySetFault(error) || known === undefined) throw error;
      try {
        return await createLocalJWKSet(known)(header, token);
      } catch (stale) {
        // A key it never had may be one Auth0 published since: the key set's fault, not the token's.
        throw stale instanceof joseErrors.JWKSNoMatchingKey ? error : stale;
      }
    }
  };
}

/** The key set could not be had (no answer, an error answer, not a key set): Auth0 failing, not the token. */
export function isKeySetFault(error: unknown): boolean {
  return error instanceof joseErrors.JWKSTimeout || error instanceof joseErrors.JWKSInvalid || (error instanceof TypeError && !(error instanceof joseErrors.JOSEError));
}

/**
 * The issuer's key set through the BFF's fetch, where an answer that is not a key set (a 5xx, an HTML error page)
 * fails as a network error does: Auth0 failing, not the token (jose would call it a malformed token otherwise).
 */
function keySetFetch(fetchImpl: typeof fetch): typeof fetch {
  return async (input, init) => {
    const response = await fetchImpl(input, init);
    if (response.status !== 200) throw new TypeError(`The issuer's key set answered ${response.status}`);
    try {
      await response.clone().json();
    } catch {
      throw new TypeError('The issuer\'s key set is not JSON');
    }
    return response;
  };
}
