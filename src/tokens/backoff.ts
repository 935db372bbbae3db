/** Full-jitter exponential backoff (AWS architecture blog's "full jitter"): spreads retries of many sessions apart. */
export function backoffDelay(attempt: number, baseMs = 100, capMs = 1_000, random = Math.random): number {
  return Math.round(random() * Math.min(capMs, baseMs * 2 ** attempt));
}

/**
 * How long to wait before the next token request: what Auth0's Retry-After asks, but never less than the backoff.
 * A `Retry-After: 0`, or a date already past (Auth0's clock a little behind), on every answer would otherwise
 * send hundreds of requests to a rate-limited Auth0 within one exchange deadline.
 */
export function retryWait(retryAfterSeconds: number | undefined, attempt: number): number {
  return Math.max((retryAfterSeconds ?? 0) * 1000, backoffDelay(attempt));
}

/**
 * The longest wait a Retry-After from Auth0 (429, 503) is remembered for, and passed on to the browser. A longer
 * one (a proxy's in front of the tenant, or a mistake) must not lock users out for hours: Auth0 is asked again
 * after a minute at most, which costs one token request per minute while it lasts.
 */
export const RETRY_AFTER_CAP_MS = 60_000;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
