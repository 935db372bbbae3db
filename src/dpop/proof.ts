import { createHash, randomUUID, sign } from 'node:crypto';
import { digestOf, signingKey, type DPoPKey } from './key.js';

/** What one proof says (RFC 9449 4.2); `iat` and `jti` are the signer's. */
export interface ProofClaims {
  /** The request's method. */
  readonly htm: string;
  /** The request's URL without query and fragment. */
  readonly htu: string;
  /** base64url SHA-256 of the access token the request carries (resource requests only). */
  readonly ath?: string | undefined;
  /** The server's last DPoP-Nonce, when it gave one. */
  readonly nonce?: string | undefined;
}

/**
 * Signs DPoP proofs with node:crypto, synchronously: the protected header (`typ`, `alg`, `jwk`) is encoded once,
 * so a proof costs one small JSON payload, one base64url encoding and one signature.
 *
 * @example
 * ```ts
 * const signer = new ProofSigner(readDPoPKey(jwk), Date.now);
 * headers.dpop = signer.proof({ htm: 'GET', htu: 'https://api.example.com/items', ath: accessTokenHash(token) });
 * ```
 */
export class ProofSigner {
  private readonly encodedHeader: string;
  private readonly digest: string | null;
  private readonly key: ReturnType<typeof signingKey>;

  constructor(dpopKey: DPoPKey, private readonly clock: () => number) {
    const header = { typ: 'dpop+jwt', alg: dpopKey.alg, jwk: dpopKey.publicJwk };
    this.encodedHeader = Buffer.from(JSON.stringify(header)).toString('base64url');
    this.digest = digestOf(dpopKey.alg);
    this.key = signingKey(dpopKey.privateKey);
  }

  /** A fresh proof: a new `jti`, `iat` from the clock (whole seconds). */
  proof(claims: ProofClaims): string {
    // JSON.stringify for the values a server or a path chose; the rest are known to need no escaping.
    let payload = `{"jti":"${randomUUID()}","htm":${JSON.stringify(claims.htm)},"htu":${JSON.stringify(claims.htu)},"iat":${Math.floor(this.clock() / 1000)}`;
    if (claims.ath !== undefined) payload += `,"ath":"${claims.ath}"`;
    if (claims.nonce !== undefined) payload += `,"nonce":${JSON.stringify(claims.nonce)}`;
    const input = `${this.encodedHeader}.${Buffer.from(`${payload}}`).toString('base64url')}`;
    return `${input}.${sign(this.digest, Buffer.from(input), this.key).toString('base64url')}`;
  }
}

/** RFC 9449 4.2 `ath`: base64url SHA-256 of the access token's ASCII bytes. */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken).digest('base64url');
}
