/**
 * The `dpop` option's public type. A file of its own, types only: the package's declarations reach it from
 * `BffOptions`, and must not reach the key handling (whose types need the DOM's Web Crypto names).
 */
import type { webcrypto } from 'node:crypto';

import type { PrivateJwk } from '../config/options.js';

/** The `dpop` option: sender-constrained tokens (RFC 9449). */
export interface DPoPOptions {
  /**
   * The BFF's private DPoP key, the same on every instance: a private JWK object (EC P-256 for ES256, P-384,
   * P-521, or Ed25519) or a private `CryptoKey` created with `extractable: true`. Its algorithm follows from the key.
   */
  key: PrivateJwk | webcrypto.CryptoKey;
}
