import type { Logger } from './logger.js';

/**
 * Keeps a fault that repeats on every request (Redis down, an upstream down, Auth0 failing) from flooding the
 * log: the first of a kind is logged at once; like ones within the next `windowMs` are only counted, and when the
 * window closes the count is logged in one line. Events and metrics still see every one.
 */
export class RepeatFilter {
  private readonly open = new Map<string, { held: number; timer: NodeJS.Timeout }>();

  constructor(private readonly windowMs = 10_000, private readonly maxKinds = 100) {}

  /** True when this one should be logged now; false when it was counted into the window of its kind. */
  admit(kind: string, summarize: (held: number) => void): boolean {
    const window = this.open.get(kind);
    if (window !== undefined) {
      window.held++;
      return false;
    }
    // Kinds are few (an error code per operation); past the bound, log rather than remember more.
    if (this.open.size >= this.maxKinds) return true;
    const opened = {
      held: 0,
      timer: setTimeout(() => {
        this.open.delete(kind);
        if (opened.held > 0) summarize(opened.held);
      }, this.windowMs),
    };
    opened.timer.unref();
    this.open.set(kind, opened);
    return true;
  }

  /** Forgets every window (their counts are not logged). */
  close(): void {
    for (const { timer } of this.open.values()) clearTimeout(timer);
    this.open.clear();
  }
}

/**
 * Log lines of faults that may repeat: the first of each `kind` is written, like ones within the window are counted
 * and summed up in one line when it closes (see RepeatFilter). Kinds are bounded names (an operation, an error
 * code, a cause's class), never a session, a path or a value from a request.
 */
export class RepeatedLines {
  constructor(
    private readonly log: Pick<Logger, 'warn' | 'error'>,
    private readonly repeats = new RepeatFilter(),
  ) {}

  warn(kind: string, message: string, details: Record<string, unknown> = {}): void {
    if (this.repeats.admit(kind, (held) => this.log.warn(`${message} (${held} more like it in the last 10 s)`, { ...details, repeated: held }))) {
      this.log.warn(message, details);
    }
  }

  error(kind: string, message: string, details: Record<string, unknown> = {}): void {
    if (this.repeats.admit(kind, (held) => this.log.error(`${message} (${held} more like it in the last 10 s)`, { ...details, repeated: held }))) {
      this.log.error(message, details);
    }
  }

  /** Forgets every window (their counts are not logged). */
  close(): void {
    this.repeats.close();
  }
}
