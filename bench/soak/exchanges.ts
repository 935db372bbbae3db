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
  /** Tokens issued less than half a token's usable life after the session's previous one: a second exchange for one expiry. */
  duplicates: number;
  /** Sessions whose exchange count differs from their expiries by more than one (the edges of the run). */
  mismatched: number;
  perSession: string;
}

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
 * `lastCallAt`: when each session's last call started, by username.
 */
export function exchangeAccounting(issued: Readonly<Record<string, readonly number[]>>, lastCallAt: ReadonlyMap<string, number>, tokenTtlSec: number): ExchangeAccounting {
  const usable = usableMs(tokenTtlSec);
  let exchanges = 0;
  let expiries = 0;
  let duplicates = 0;
  let mismatched = 0;
  let minExpiries = Infinity;
  const counts: number[] = [];
  for (const [user, last] of lastCallAt) {
    const times = issued[`auth0|${user}`] ?? [];
    const n = Math.max(0, times.length - 1);
    // Two exchanges for one expiry come within one exchange's latency of each other; consecutive expiries a
    // usable life apart, less the variation of an exchange's latency. Half a usable life tells them apart.
    for (let k = 1; k < times.length; k++) if ((times[k] as number) - (times[k - 1] as number) < usable / 2) duplicates++;
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
