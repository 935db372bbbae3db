/** RFC 9449 8: `nonce = 1*NQCHAR` (printable ASCII without `"` and `\`). */
const NONCE = /^[\x21\x23-\x5b\x5d-\x7e]+$/;
/** More APIs than any BFF proxies: the bound only stops a misbehaving server from growing the map. */
const MAX_SERVERS = 100;
const MAX_NONCE_LENGTH = 1024;

/**
 * The last DPoP nonce each server gave (RFC 9449 8 and 9): a challenge's `DPoP-Nonce`, and the fresh one a server
 * may send with any answer. A server is an API's upstream URL (origin and base path), so that services behind one
 * gateway keep theirs apart; an API at two base paths of one server is told its nonce once for each. Kept in this
 * process only: a nonce is short-lived, and an instance that has none yet is told one by the server's first
 * challenge.
 */
export class NonceCache {
  private readonly byServer = new Map<string, string>();

  get(server: string): string | undefined {
    return this.byServer.get(server);
  }

  /** Remembers a server's nonce, and says so; ignores a value that is not a valid nonce (false). */
  set(server: string, nonce: string): boolean {
    if (nonce.length > MAX_NONCE_LENGTH || !NONCE.test(nonce)) return false;
    if (!this.byServer.has(server) && this.byServer.size >= MAX_SERVERS) {
      this.byServer.delete(this.byServer.keys().next().value as string);
    }
    this.byServer.set(server, nonce);
    return true;
  }
}
