import { describe, expect, it } from 'vitest';
import { exchangeAccounting, usableMs, type BffEvent } from '../../bench/soak/exchanges.js';

/** The soak's exchange accounting, which decides whether the soak saw a second exchange for one expiry. */
describe('the soak\'s exchange accounting', () => {
  const TTL = 5;
  const usable = usableMs(TTL); // 2,500 ms: 5 s - 1 s (rounding) - 0.5 s (margin) - 1 s (skew)
  const refresh = (at: number, durationMs: number): BffEvent => ({ name: 'refresh', at, sub: 'auth0|u1', durationMs });

  it('gives a token the usable life the BFF gives it', () => {
    expect(usable).toBe(2_500);
  });

  it('counts no second exchange when a slow exchange made the next one come soon after its token was issued', () => {
    // Exchange 1 asked at 2,500 and took 1,400 ms: Auth0 issued its token at 3,890. Exchange 2 asked at its refresh
    // point, 2,500 + 2,500 = 5,000, and was issued at 5,010: 1,120 ms after the previous token, one expiry apart.
    const issued = { 'auth0|u1': [0, 3_890, 5_010] };
    const accounting = exchangeAccounting(issued, new Map([['u1', 7_600]]), TTL, [refresh(3_900, 1_400), refresh(5_020, 20)]);
    expect(accounting.duplicates).toBe(0);
  });

  it('counts a second exchange asked for while the previous token was still fresh', () => {
    // Exchange 1 asked at 2,500, answered in 20 ms; a second exchange issued 300 ms later was asked before 5,000.
    const issued = { 'auth0|u1': [0, 2_510, 2_810] };
    const accounting = exchangeAccounting(issued, new Map([['u1', 5_200]]), TTL, [refresh(2_520, 20), refresh(2_820, 20)]);
    expect(accounting.duplicates).toBe(1);
  });

  it('counts expiries by when the session last called', () => {
    const issued = { 'auth0|u1': [0, 2_510, 5_020] };
    const accounting = exchangeAccounting(issued, new Map([['u1', 7_600]]), TTL, [refresh(2_520, 10), refresh(5_030, 10)]);
    expect(accounting).toMatchObject({ exchanges: 2, expiries: 3, duplicates: 0, mismatched: 0 });
  });
});
