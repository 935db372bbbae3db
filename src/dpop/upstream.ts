import type { NonceCache } from './nonces.js';
import type { ProofSigner } from './proof.js';

/** What the proxy knows of the token it attaches. */
export interface BoundToken {
  readonly token: string;
  /** The thumbprint of the key the token is bound to. */
  readonly jkt?: string | undefined;
}

/**
 * DPoP for the calls to one upstream API: `Authorization: DPoP <token>` and a fresh proof per call for its
 * method and URL, with the last nonce this API gave. Synchronous: the key is imported once, the token's
 * `ath` is computed once per token entry.
 */
export class UpstreamProofs {
  constructor(
    private readonly origin: string,
    /** Whose nonces the calls use and keep: the API's upstream URL (see NonceCache). */
    private readonly nonceScope: string,
    /** The thumbprint of `signer`'s key, the BFF's key now. */
    private readonly thumbprint: string,
    private readonly signer: ProofSigner,
    /** The signers of the keys used before it, by thumbprint, for tokens still bound to one of them. */
    private readonly previousSigners: ReadonlyMap<string, ProofSigner>,
    private readonly nonces: NonceCache,
    private readonly athOf: (entry: BoundToken) => string,
  ) {}

  /**
   * Sets the credentials of a call to `path` (the upstream path with its query) in `headers`.
   * `htu` is the upstream URL without its query (RFC 9449 4.2): what the API sees, not the browser's URL.
   */
  authorize(headers: Record<string, string | string[]>, method: string, path: string, entry: BoundToken): void {
    const q = path.indexOf('?');
    headers.authorization = `DPoP ${entry.token}`;
    const signer = entry.jkt === this.thumbprint || entry.jkt === undefined ? this.signer : this.previousSigners.get(entry.jkt) ?? this.signer;
    headers.dpop = signer.proof({
      htm: method,
      htu: this.origin + (q < 0 ? path : path.slice(0, q)),
      ath: this.athOf(entry),
      nonce: this.nonces.get(this.nonceScope),
    });
  }

  /** Remembers the `DPoP-Nonce` of any answer of this API: a challenge's, or a fresh one sent along with a success. */
  readonly rememberNonce = (nonce: string): boolean => this.nonces.set(this.nonceScope, nonce);
}
