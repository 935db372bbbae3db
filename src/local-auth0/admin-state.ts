/**
 * The mutable state that the admin handle reads and drives: request counters, the failure mode of the token
 * endpoint, and the access tokens issued (JWT access tokens are not stored by oidc-provider).
 */
import type { LocalAuth0Counts, TokenEndpointFailure } from './types.js';

/** Request counters. */
export class Counters {
  token: LocalAuth0Counts['token'] = {};
  revocations = 0;
  endSession = 0;

  tokenRequest(grantType: string, outcome: 'ok' | 'error'): void {
    const entry = (this.token[grantType] ??= { ok: 0, error: 0 });
    entry[outcome] += 1;
  }

  reset(): void {
    this.token = {};
    this.revocations = 0;
    this.endSession = 0;
  }
}

function checkFailure(mode: TokenEndpointFailure): TokenEndpointFailure {
  if (typeof mode !== 'object' || mode === null) throw new TypeError('"mode" must be an object');
  if ('delayMs' in mode) {
    if (!Number.isFinite(mode.delayMs) || mode.delayMs < 0) throw new TypeError('"mode.delayMs" must be a number >= 0');
    return { delayMs: mode.delayMs };
  }
  if (!Number.isInteger(mode.status) || mode.status < 100 || mode.status > 599) {
    throw new TypeError('"mode.status" must be an HTTP status code, or give "mode.delayMs"');
  }
  if (mode.status === 429 && 'retryAfter' in mode && (!Number.isInteger(mode.retryAfter) || mode.retryAfter < 0)) {
    throw new TypeError('"mode.retryAfter" must be an integer number of seconds');
  }
  return { ...mode };
}

/** The token endpoint's failure mode: on until cleared, or for a number of requests. */
export class TokenEndpointFaults {
  #mode: TokenEndpointFailure | undefined;
  #remaining = Infinity;

  set(mode: TokenEndpointFailure, options: { times?: number } = {}): void {
    const times = options.times ?? Infinity;
    if (times !== Infinity && (!Number.isInteger(times) || times < 1)) {
      throw new TypeError('"options.times" must be a positive integer');
    }
    this.#mode = checkFailure(mode);
    this.#remaining = times;
  }

  /** The failure to apply to the current request, if any (counts one use). */
  take(): TokenEndpointFailure | undefined {
    const mode = this.#mode;
    if (!mode) return undefined;
    this.#remaining -= 1;
    if (this.#remaining <= 0) this.clear();
    return mode;
  }

  clear(): void {
    this.#mode = undefined;
    this.#remaining = Infinity;
  }
}

