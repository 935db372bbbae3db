/**
 * Tokens that a renewal forced by an upstream's rejection produced, known by their signature's tail: an upstream
 * that rejects one of those too (misconfigured on its side) gets no second renewal, so it costs one exchange, not
 * one per call. Bounded: past `max` entries it starts over.
 */
export class RenewedTokens {
  private readonly tails = new Set<string>();

  constructor(private readonly max: number) {}

  has(token: string): boolean {
    // Asked on every API call, and almost always empty: no tail to cut then.
    return this.tails.size > 0 && this.tails.has(token.slice(-32));
  }

  add(token: string): void {
    if (this.tails.size >= this.max) this.tails.clear();
    this.tails.add(token.slice(-32));
  }
}
