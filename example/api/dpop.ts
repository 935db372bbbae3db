/**
 * What the example API checks of a DPoP-bound call (RFC 9449 4.3 and 7.1): the proof's signature with the key it
 * carries, `typ`, `htm`, `htu`, a recent `iat`, `ath` of the access token, a `jti` never seen before, the token's
 * `cnf.jkt` naming that key, and, when it demands them, a nonce it issued itself (RFC 9449 9).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify, type JWTPayload } from 'jose';

export interface DPoPCheckOptions {
  /** Demand a nonce of this API in every proof; the nonce changes with `rotateNonce()`. Default false. */
  nonces?: boolean;
  /** Seconds a proof's `iat` may be off from this API's clock. Default 60. */
  iatWindowSeconds?: number;
}

/** Why a call was refused: the `error` of the `WWW-Authenticate: DPoP` challenge. */
export class DPoPRefusal extends Error {
  constructor(readonly error: 'invalid_token' | 'invalid_dpop_proof' | 'use_dpop_nonce', description: string) {
    super(description);
  }
}

export const PROOF_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'Ed25519', 'EdDSA'];

/**
 * Checks the proofs of the calls to one API, known by its own origin (what `htu` must name).
 *
 * @example
 * ```ts
 * const check = new DPoPCheck('http://127.0.0.1:4000', { nonces: true });
 * await check.verify(req, accessToken, claims); // throws DPoPRefusal
 * ```
 */
export class DPoPCheck {
  /** The nonce proofs must carry now; the one before it is still accepted (a client may not have seen the new one yet). */
  private nonce = randomBytes(16).toString('base64url');
  private previousNonce: string | undefined;
  /** jti -> when it may be forgotten (epoch seconds); insertion order is time order. */
  private readonly seen = new Map<string, number>();
  private readonly window: number;
  /** How many calls were refused for want of a (current) nonce. */
  nonceChallenges = 0;

  constructor(private readonly origin: string, private readonly options: DPoPCheckOptions = {}) {
    this.window = options.iatWindowSeconds ?? 60;
  }

  /** The nonce to send with an answer (undefined when this API does not demand nonces). */
  get currentNonce(): string | undefined {
    return this.options.nonces ? this.nonce : undefined;
  }

  rotateNonce(): void {
    this.previousNonce = this.nonce;
    this.nonce = randomBytes(16).toString('base64url');
  }

  /** @throws DPoPRefusal when the call does not prove possession of the key the token is bound to. */
  async verify(req: IncomingMessage, accessToken: string, claims: JWTPayload): Promise<void> {
    const header = req.headers.dpop;
    if (typeof header !== 'string') throw new DPoPRefusal('invalid_dpop_proof', 'A DPoP call needs exactly one DPoP proof header.');
    let proof: JWTPayload;
    let thumbprint: string;
    try {
      const verified = await jwtVerify(header, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: PROOF_ALGORITHMS });
      proof = verified.payload;
      thumbprint = await calculateJwkThumbprint(verified.protectedHeader.jwk!);
    } catch {
      throw new DPoPRefusal('invalid_dpop_proof', 'The DPoP proof is not a valid dpop+jwt signed with the key it carries.');
    }
    const now = Math.floor(Date.now() / 1000);
    const url = new URL(req.url ?? '/', this.origin);
    if (typeof proof.jti !== 'string' || proof.jti.length === 0) throw new DPoPRefusal('invalid_dpop_proof', 'The DPoP proof has no jti.');
    if (proof.htm !== req.method) throw new DPoPRefusal('invalid_dpop_proof', 'The DPoP proof is for another method.');
    if (typeof proof.htu !== 'string' || stripQuery(proof.htu) !== `${this.origin}${url.pathname}`) {
      throw new DPoPRefusal('invalid_dpop_proof', 'The DPoP proof is for another URL.');
    }
    if (typeof proof.iat !== 'number' || Math.abs(now - proof.iat) > this.window) throw new DPoPRefusal('invalid_dpop_proof', 'The DPoP proof is not recent.');
    if (proof.ath !== createHash('sha256').update(accessToken).digest('base64url')) {
      throw new DPoPRefusal('invalid_dpop_proof', 'The DPoP proof is for another access token.');
    }
    const cnf = claims.cnf as { jkt?: unknown } | undefined;
    if (cnf?.jkt !== thumbprint) throw new DPoPRefusal('invalid_token', 'The access token is not bound to the key of the DPoP proof.');
    if (this.options.nonces && (proof.nonce === undefined || (proof.nonce !== this.nonce && proof.nonce !== this.previousNonce))) {
      this.nonceChallenges++;
      throw new DPoPRefusal('use_dpop_nonce', 'The DPoP proof must carry this API\'s nonce.');
    }
    // Last: a proof refused for another reason was never used, and remembering its jti would help no one.
    this.forgetBefore(now);
    if (this.seen.has(proof.jti)) throw new DPoPRefusal('invalid_dpop_proof', 'The DPoP proof was used before.');
    this.seen.set(proof.jti, now + 2 * this.window);
  }

  private forgetBefore(now: number): void {
    for (const [jti, until] of this.seen) {
      if (until > now) break;
      this.seen.delete(jti);
    }
  }
}

function stripQuery(url: string): string {
  const end = url.search(/[?#]/);
  return end < 0 ? url : url.slice(0, end);
}
