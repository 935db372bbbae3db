import type * as oidc from 'openid-client';
import type { Logger } from '../events/events.js';
import type { DPoPKey } from './key.js';
import { NonceCache } from './nonces.js';
import type { DPoPConfig } from './options.js';
import { accessTokenHash, ProofSigner } from './proof.js';
import { issuerRefusesAlgorithm, tokenEndpointHandle } from './token-endpoint.js';
import { UpstreamProofs, type BoundToken } from './upstream.js';

/**
 * Sender-constrained tokens (RFC 9449) for one BFF: its key, the proofs of its token requests and API calls, and
 * the nonces the APIs gave. Every instance of the BFF holds the same key, so that a token bound on one instance
 * is usable on all of them.
 */
export class DPoP {
  readonly key: DPoPKey;
  private readonly signer: ProofSigner;
  /** The signers of `previousKeys`, by thumbprint: for the stored tokens bound to them. */
  private readonly previousSigners: ReadonlyMap<string, ProofSigner>;
  /** The APIs' nonces (the token endpoint's are kept by openid-client's handle). */
  private readonly nonces = new NonceCache();
  private readonly warnedUnbound = new Set<string>();

  constructor(
    config: DPoPConfig,
    private readonly clock: () => number,
    private readonly logger: Logger,
  ) {
    this.key = config.key;
    this.signer = new ProofSigner(config.key, clock);
    this.previousSigners = new Map(config.previousKeys.map((key) => [key.thumbprint, new ProofSigner(key, clock)]));
  }

  /** The key's thumbprint: a token bound to it carries it as `cnf.jkt`. */
  get thumbprint(): string {
    return this.key.thumbprint;
  }

  /**
   * Proofs for the calls to one upstream API (its `upstream` URL). Its nonces are its own: two APIs behind one
   * gateway origin may each have theirs, and would otherwise take each other's nonce on every call.
   */
  forUpstream(upstream: URL): UpstreamProofs {
    const scope = upstream.origin + upstream.pathname.replace(/\/+$/, '');
    return new UpstreamProofs(upstream.origin, scope, this.key.thumbprint, this.signer, this.previousSigners, this.nonces, athOf);
  }

  /** openid-client's options for every token request of a discovered issuer. */
  async tokenRequestOptions(configuration: oidc.Configuration): Promise<oidc.DPoPOptions> {
    if (issuerRefusesAlgorithm(configuration.serverMetadata(), this.key.alg)) {
      this.logger.warn('The issuer does not list the DPoP key\'s algorithm in dpop_signing_alg_values_supported: token requests will fail', {
        alg: this.key.alg, supported: configuration.serverMetadata().dpop_signing_alg_values_supported,
      });
    }
    return { DPoP: await tokenEndpointHandle(configuration, this.key, this.clock) };
  }

  /**
   * A token request carried a proof and Auth0 answered with a Bearer token: the API does not use DPoP (its
   * sender-constraining setting is off). The token works as before, but is not bound: said once per API.
   */
  unboundToken(audience: string): void {
    if (this.warnedUnbound.has(audience)) return;
    this.warnedUnbound.add(audience);
    this.logger.warn('DPoP is on, but Auth0 issued a Bearer token for this API: turn on DPoP for the API in Auth0 to bind its tokens', { audience });
  }
}

/**
 * `ath` (the token's hash a proof carries), worked out once per token entry and kept on it, as the proxy keeps the
 * `Authorization` value (src/proxy/headers.ts): the hot path's entries are the same objects while a session's view
 * is cached, and a WeakMap's table would keep the size of its busiest moment after the entries are gone.
 * Not enumerable: the entry looks the same to everything else.
 */
const ATH = Symbol('express-ort-bff.dpop-ath');
function athOf(entry: BoundToken): string {
  const held = (entry as { [ATH]?: string })[ATH];
  if (held !== undefined) return held;
  const ath = accessTokenHash(entry.token);
  Object.defineProperty(entry, ATH, { value: ath });
  return ath;
}

/**
 * Whether a stored token may be sent with the BFF's keys (or without one): a Bearer token always, a bound token
 * only when the BFF holds the key it is bound to, `key` or one of `previousKeys`. A token bound to another key (the
 * key was changed and the old one let go, or DPoP turned off) must be renewed first: no API would accept it.
 */
export function fitsKey(entry: { readonly jkt?: string | undefined }, dpop: DPoPConfig | undefined): boolean {
  const jkt = entry.jkt;
  return jkt === undefined || (dpop !== undefined && (jkt === dpop.key.thumbprint || (dpop.previousKeys.length > 0 && dpop.previousKeys.some((k) => k.thumbprint === jkt))));
}
