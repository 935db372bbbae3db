/**
 * The tenant's one RS256 signing key: oidc-provider signs ID and access tokens with it, the emulator signs
 * logout tokens (and whatever a test asks `admin.sign` for) with it, and `/.well-known/jwks.json` publishes it.
 */
import { SignJWT, calculateJwkThumbprint, compactVerify, exportJWK, generateKeyPair, type JWK, type JWTPayload } from 'jose';

/** A freshly generated signing key. */
export interface SigningKey {
  readonly kid: string;
  /** The private JWK, for oidc-provider's `jwks` configuration. */
  readonly privateJwk: JWK;
  /** Signs `claims` as they are (no claim is added) with header `{ alg: 'RS256', kid, ...header }`. */
  sign(claims: object, header?: object): Promise<string>;
  /** Resolves when `jws` carries a valid signature of this key (claims are not checked). */
  verifySignature(jws: string): Promise<void>;
}

/** Generates a 2048-bit RSA key, new on every start (nothing is persisted). */
export async function createSigningKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const privateJwk: JWK = { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };

  return {
    kid,
    privateJwk,
    sign(claims, header = {}) {
      return new SignJWT(claims as JWTPayload)
        .setProtectedHeader({ alg: 'RS256', kid, ...header })
        .sign(privateKey);
    },
    async verifySignature(jws) {
      await compactVerify(jws, publicKey, { algorithms: ['RS256'] });
    },
  };
}
