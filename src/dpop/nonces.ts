/** RFC 9449 8: `nonce = 1*NQCHAR` (printable ASCII without `"` and `\`). */
const NONCE = /^[\x21\x23-\x5b\x5d-\x7e]+$/;
/** More APIs than any BFF proxies: the bound only stops a misbehaving server from growing the map. */
const MAX_ORIGINS = 100;
const MAX_NONCE_LENGTH = 1024;

/**
 * The last DPoP nonce each server gave (RFC 9449 8 and 9), by origin: a challenge's `DPoP-Nonce`, and the fresh
 * one a server may send with any answer. Kept in this process only: a nonce is short-lived, and an instance that
 * has none yet is told one by the server's first challenge.
 */
export class NonceCache {
  private readonly byOrigin = new Map<string, string>();

  get(origin: string): string | undefined {
    return this.byOrigin.get(origin);
  }

  /** Remembers a server's nonce, and says so; ignores a value that is not a valid nonce (false). */
  set(origin: string, nonce: string): boolean {
    if (nonce.length > MAX_NONCE_LENGTH || !NONCE.test(nonce)) return false;
    if (!this.byOrigin.has(origin) && this.byOrigin.size >= MAX_ORIGINS) {
      this.byOrigin.delete(this.byOrigin.keys().next().value as string);
    }
    this.byOrigin.set(origin, nonce);
    return true;
  }
}
