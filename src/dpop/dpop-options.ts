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
  /**
   * Keys the BFF used before `key`, while a change of key rolls out: a stored token bound to one of them is used with
   * it (each call's proof signed by it) instead of being renewed, and new tokens are bound to `key`. Without them,
   * instances with the old key and the new one renew each other's tokens on every call a load balancer sends across.
   * Keep an old key for one access token lifetime after every instance has the new one.
   */
  previousKeys?: ReadonlyArray<PrivateJwk | webcrypto.CryptoKey>;
}
