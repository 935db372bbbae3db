/**
 * The soak's exchange accounting: from when the emulator issued each session's access tokens (its login's, then
 * one per exchange) and when each session last called, how many token expiries each session went through, and
 * whether each got exactly one exchange.
 */

/** An event as bench/servers/lib-bff.ts reports it: its name, when it was emitted (epoch ms), and its payload. */
export interface BffEvent {
  name: 'login' | 'refresh' | 'refresh_failed' | 'logout' | 'revocation_failed';
  at: number;
  sub?: string;
  durationMs?: number;
  reason?: string;
}

export interface ExchangeAccounting {
  /** Access tokens issued after the login's, by the emulator's count. */
  exchanges: number;
  /** Refresh points that passed before the session's last call: each needs one exchange. */
  expiries: number;
  minExpiries: number;
  /**
   * Exchanges asked for before the session's previous token reached its refresh point: a second exchange for one
   * expiry. Told from the emulator's issue times and the BFF's exchange durations (see `exchangeAccounting`).
   */
  duplicates: number;
  /** Sessions whose exchange count differs from their expiries by more than one (the edges of the run). */
  mismatched: number;
  perSession: string;
}

/** Both sides read the same machine's clock, in whole milliseconds. */
const CLOCK_MS = 2;

/**
 * How long a token is used before it is renewed, with the BFF's default token options: it expires
 * `expires_in - 1` s after it was requested, and is renewed the refresh margin (min(60 s, 10 % of its life))
 * plus the clock-skew allowance (1 s) before that.
 */
export function usableMs(tokenTtlSec: number): number {
  return (tokenTtlSec - 1 - Math.min(60, tokenTtlSec * 0.1) - 1) * 1000;
}

/**
 * `issued`: epoch ms of each access token the emulator issued, by sub (`auth0|<username>`), the login's first.
 * `lastCallAt`: when each session's last call started, by username. `events`: the BFFs' events of the same time.
 *
 * A second exchange for one expiry is one asked for before the previous token's refresh point, which is
 * `usableMs` after that token was asked for. When a token was asked for is not seen at the emulator, only when it
 * was issued; but it was asked for at most its exchange's duration (the `refresh` event's `durationMs`, from the
 * request to the answer) before it was issued, and the next one was issued after it was asked for. So an
 * exchange counts as a second one when its token was issued less than `usable - duration` after the previous
 * token: exact however slow the machine made the exchanges. The login's token has no duration: the longest
 * exchange of the run stands in for it.
 */
export function exchangeAccounting(
  issued: Readonly<Record<string, readonly number[]>>,
  lastCallAt: ReadonlyMap<string, number>,
  tokenTtlSec: number,
  events: readonly BffEvent[],
): ExchangeAccounting {
  const usable = usableMs(tokenTtlSec);
  const durations = new Map<string, number[]>();
  let longest = 0;
  for (const event of [...events].sort((a, b) => a.at - b.at)) {
    if (event.name !== 'refresh' || event.sub === undefined) continue;
    const duration = event.durationMs ?? 0;
    longest = Math.max(longest, duration);
    const list = durations.get(event.sub) ?? [];
    list.push(duration);
    durations.set(event.sub, list);
  }
  let exchanges = 0;
  let expiries = 0;
  let duplicates = 0;
  let mismatched = 0;
  let minExpiries = Infinity;
  const counts: number[] = [];
  for (const [user, last] of lastCallAt) {
    const times = issued[`auth0|${user}`] ?? [];
    const n = Math.max(0, times.length - 1);
    const took = durations.get(`auth0|${user}`) ?? [];
    for (let k = 1; k < times.length; k++) {
      // Token k - 1 was asked for at most this long before it was issued (the exchange k - 2's duration).
      const askedBefore = k === 1 ? longest : (took[k - 2] ?? longest);
      if ((times[k] as number) - (times[k - 1] as number) < usable - askedBefore - CLOCK_MS) duplicates++;
    }
    const expired = times.filter((t) => t + usable <= last).length;
    if (Math.abs(n - expired) > 1) mismatched++;
    exchanges += n;
    expiries += expired;
    minExpiries = Math.min(minExpiries, expired);
    counts.push(n);
  }
  counts.sort((a, b) => a - b);
  const perSession = counts.length === 0 ? '-' : `${counts[0]} / ${counts[Math.floor(counts.length / 2)]} / ${counts[counts.length - 1]}`;
  return { exchanges, expiries, minExpiries: Number.isFinite(minExpiries) ? minExpiries : 0, duplicates, mismatched, perSession };
}
