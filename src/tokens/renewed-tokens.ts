/**
 * Tokens that a renewal forced by an upstream's rejection produced, known by their signature's tail, each for
 * `forMs` from when it was added: an upstream that rejects one of those too (misconfigured on its side) gets no
 * second renewal meanwhile, so it costs one exchange per `forMs`, not one per call. Bounded: past `max` entries it
 * forgets those whose time is over, and starts over if that is not enough.
 */
export class RenewedTokens {
  /** Until when (the clock's time) each tail is known. */
  private readonly tails = new Map<string, number>();
  /**
   * The token asked about last and until when it is known (0: not known): asked on every API call, mostly about the
   * token of the call before (the same string), which then costs neither a cut-off tail nor hashing it.
   */
  private lastAsked = '';
  private lastUntil = 0;

  constructor(
    private readonly max: number,
    private readonly clock: () => number = Date.now,
    private readonly forMs = Number.POSITIVE_INFINITY,
  ) {}

  has(token: string): boolean {
    // Almost always empty: no tail to cut then.
    if (this.tails.size === 0) return false;
    if (token !== this.lastAsked) {
      this.lastUntil = this.tails.get(token.slice(-32)) ?? 0;
      this.lastAsked = token;
    }
    return this.lastUntil !== 0 && this.clock() < this.lastUntil;
  }

  /** `at`: when the token was produced (default now). */
  add(token: string, at = this.clock()): void {
    if (this.tails.size >= this.max) this.forgetPast();
    this.tails.set(token.slice(-32), at + this.forMs);
    this.lastAsked = '';
  }

  /** Makes room: the tails whose time is over go; when that is not enough, all of them. */
  private forgetPast(): void {
    const now = this.clock();
    for (const [tail, until] of this.tails) if (until <= now) this.tails.delete(tail);
    if (this.tails.size >= this.max) this.tails.clear();
  }
}
