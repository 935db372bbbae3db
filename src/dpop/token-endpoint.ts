import * as oidc from 'openid-client';
import { webCryptoKeyPair, type DPoPKey } from './key.js';

/**
 * openid-client's DPoP handle for the token endpoint (code exchange, ORT exchanges, client credentials): it adds
 * a proof to each token request, answers `use_dpop_nonce` with one retry carrying the nonce, and remembers the
 * server's nonces. Its proofs take `iat` from the BFF's clock, like the proxy's.
 */
export async function tokenEndpointHandle(configuration: oidc.Configuration, key: DPoPKey, clock: () => number): Promise<oidc.DPoPHandle> {
  const keyPair = await webCryptoKeyPair(key);
  return oidc.getDPoPHandle(configuration, keyPair, {
    [oidc.modifyAssertion]: (_header, payload) => {
      payload.iat = Math.floor(clock() / 1000);
    },
  });
}

/** Whether the issuer says it cannot verify proofs of this algorithm (silence is not taken as a no). */
export function issuerRefusesAlgorithm(metadata: oidc.ServerMetadata, alg: string): boolean {
  const supported = metadata.dpop_signing_alg_values_supported;
  return Array.isArray(supported) && !supported.includes(alg);
}
