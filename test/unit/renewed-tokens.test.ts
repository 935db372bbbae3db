import { describe, expect, it } from 'vitest';
import { RenewedTokens } from '../../src/tokens/renewed-tokens.js';

const token = (n: number) => `eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1${n}In0.${String(n).padStart(4, '0')}${'s'.repeat(40)}${n}`;

describe('tokens a forced renewal produced', () => {
  it('knows a token once it is added, also when it was asked about just before', () => {
    const renewed = new RenewedTokens(10);
    const [first, second] = [token(1), token(2)];
    expect(renewed.has(first)).toBe(false);
    renewed.add(second);
    // Asked twice in a row: the second answer is the remembered one, and must still be right.
    expect(renewed.has(first)).toBe(false);
    expect(renewed.has(first)).toBe(false);
    renewed.add(first);
    expect(renewed.has(first)).toBe(true);
    expect(renewed.has(first)).toBe(true);
    expect(renewed.has(second)).toBe(true);
    expect(renewed.has(token(3))).toBe(false);
  });

  it('answers for a copy of a token as for the token', () => {
    const renewed = new RenewedTokens(10);
    renewed.add(token(7));
    expect(renewed.has(token(7))).toBe(true);
    expect(renewed.has([...token(7)].join(''))).toBe(true);
  });

  it('starts over past its bound, forgetting what it answered', () => {
    const renewed = new RenewedTokens(2);
    renewed.add(token(1));
    renewed.add(token(2));
    expect(renewed.has(token(1))).toBe(true);
    renewed.add(token(3));
    expect(renewed.has(token(1))).toBe(false);
    expect(renewed.has(token(3))).toBe(true);
  });

  it('knows a token only for its time from when it was added, by the clock given', () => {
    let now = 1_000;
    const renewed = new RenewedTokens(10, () => now, 60_000);
    renewed.add(token(1));
    renewed.add(token(2), 500);
    expect(renewed.has(token(1))).toBe(true);
    expect(renewed.has(token(2))).toBe(true);
    now = 60_500;
    // Asked about just before, with nothing else asked since: the remembered answer follows the clock too.
    expect(renewed.has(token(2))).toBe(false);
    expect(renewed.has(token(1))).toBe(true);
    now = 61_000;
    expect(renewed.has(token(1))).toBe(false);
  });

  it('makes room past its bound by forgetting the tokens whose time is over first', () => {
    let now = 0;
    const renewed = new RenewedTokens(2, () => now, 60_000);
    renewed.add(token(1));
    now = 30_000;
    renewed.add(token(2));
    now = 61_000;
    renewed.add(token(3));
    expect(renewed.has(token(2))).toBe(true);
    expect(renewed.has(token(3))).toBe(true);
    expect(renewed.has(token(1))).toBe(false);
  });
});
