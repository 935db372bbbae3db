import type { Logger } from '../events/logger.js';
import { RepeatedLines } from '../events/repeats.js';
import { backoffDelay } from '../tokens/backoff.js';

export interface RetryPolicy {
  /** Gives up this long after the work was added. */
  readonly maxAgeMs: number;
  /** Full-jitter exponential backoff between attempts. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

/**
 * Work the session store refused (it was failing over, resharding or stalled) after the request it belonged to was
 * answered: the end of sessions whose logout already happened, the release of an exchange lock. Each piece is
 * retried in the background with a growing, jittered delay until it succeeds or its policy gives up. Kept in
 * this process only: a restart forgets it (the README says what that leaves behind).
 */
export class BackgroundRetries {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  constructor(
    private readonly logger: Logger,
    /** An outage that outlasts the policies gives up every piece of work: one line per kind, then a count. */
    private readonly lines = new RepeatedLines(logger),
    private readonly capacity = 10_000,
  ) {}

  /** How many pieces of work wait for the store. */
  get size(): number {
    return this.timers.size;
  }

  /**
   * Retries `work` until it resolves. `key` names it: a newer piece of work under the same key replaces the older.
   * `what` names it in the log line written if it is given up (never a token or a session id).
   */
  add(key: string, what: string, work: () => Promise<unknown>, policy: RetryPolicy): void {
    this.cancel(key);
    if (this.timers.size >= this.capacity) {
      this.cancel(this.timers.keys().next().value as string);
      this.lines.warn(`dropped:${what}`, 'Too much work is waiting for the session store; dropped the oldest', { what });
    }
    const giveUpAt = performance.now() + policy.maxAgeMs;
    const attempt = (n: number) => {
      const timer = setTimeout(() => {
        work().then(
          () => {
            if (this.timers.get(key) === timer) this.timers.delete(key);
          },
          () => {
            if (this.timers.get(key) !== timer) return;
            if (performance.now() >= giveUpAt) {
              this.timers.delete(key);
              this.lines.warn(`gave-up:${what}`, 'Gave up waiting for the session store', { what });
              return;
            }
            attempt(n + 1);
          },
        );
      }, Math.max(10, backoffDelay(n, policy.baseDelayMs, policy.maxDelayMs)));
      timer.unref();
      this.timers.set(key, timer);
    };
    attempt(0);
  }

  /** Stops retrying (the BFF is closing). */
  close(): void {
    if (this.timers.size > 0) this.logger.warn('Closing with work the session store has not taken yet', { pieces: this.timers.size });
    for (const key of [...this.timers.keys()]) this.cancel(key);
  }

  private cancel(key: string): void {
    const timer = this.timers.get(key);
    if (timer !== undefined) clearTimeout(timer);
    this.timers.delete(key);
  }
}
