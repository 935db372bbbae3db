/**
 * Tokens that a renewal forced by an upstream's rejection produced, known by their signature's tail: an upstream
 * that rejects one of those too (misconfigured on its side) gets no second renewal, so it costs one exchange, not
 * one per call. Bounded: past `max` entries it starts over.
 */
export class RenewedTokens {
  private readonly tails = new Set<string>();
  /**
   * The token asked about last and the answer: asked on every API call, mostly about the token of the call
   * before (the same string), which then costs neither a cut-off tail nor hashing it.
   */
  private lastAsked = '';
  private lastAnswer = false;

  constructor(private readonly max: number) {}

  has(token: string): boolean {
    // Almost always empty: no tail to cut then.
    if (this.tails.size === 0) return false;
    if (token === this.lastAsked) return this.lastAnswer;
    this.lastAnswer = this.tails.has(token.slice(-32));
    this.lastAsked = token;
    return this.lastAnswer;
  }

  add(token: string): void {
    if (this.tails.size >= this.max) this.tails.clear();
    this.tails.add(token.slice(-32));
    this.lastAsked = '';
  }
}
