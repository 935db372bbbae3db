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

  /** Counts one token request by the HTTP status it was answered with: `ok` is 200, anything else an error. */
  tokenRequest(grantType: string, status: number): void {
    const entry = (this.token[grantType] ??= { ok: 0, error: 0 });
    entry[status === 200 ? 'ok' : 'error'] += 1;
  }

  reset(): void {
    this.token = {};
    this.revocations = 0;
    this.endSession = 0;
  }
}

function checkFailure(mode: TokenEndpointFailure): TokenEndpointFailure {
  if (typeof mode !== 'object' || mode === null) throw new TypeError('"mode" must be an object');
  const given = mode as { status?: unknown; delayMs?: unknown; retryAfter?: unknown; body?: unknown };
  if ('delayMs' in mode) {
    // A late answer is the real answer: a status or a body as well would be silently dropped.
    if ('status' in mode || 'body' in mode || 'retryAfter' in mode) {
      throw new TypeError('"mode" must give either "delayMs" or "status" (with "retryAfter" or "body"), not both');
    }
    if (typeof mode.delayMs !== 'number' || !Number.isFinite(mode.delayMs) || mode.delayMs < 0) {
      throw new TypeError('"mode.delayMs" must be a number >= 0');
    }
    return { delayMs: mode.delayMs };
  }
  const status = given.status;
  // A 1xx status is an interim answer, not a reply: the client would wait for the real one forever.
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) {
    throw new TypeError('"mode.status" must be an HTTP status code from 200 to 599, or give "mode.delayMs"');
  }
  if (given.body !== undefined && (typeof given.body !== 'object' || given.body === null)) {
    throw new TypeError('"mode.body" must be an object (the JSON body to answer with)');
  }
  if ('retryAfter' in mode) {
    if (status !== 429) throw new TypeError('"mode.retryAfter" is only for "mode.status" 429');
    if (typeof given.retryAfter !== 'number' || !Number.isInteger(given.retryAfter) || given.retryAfter < 0) {
      throw new TypeError('"mode.retryAfter" must be an integer number of seconds');
    }
  } else if (status === 429 && given.body === undefined) {
    // The built-in 429 carries Retry-After: its value is the test's to choose, not the emulator's to make up.
    throw new TypeError('"mode.retryAfter" is required for "mode.status" 429 without "mode.body"');
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

