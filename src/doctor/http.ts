/**
 * How the doctor talks to the tenant: GET requests for JSON, each bounded by the doctor's timeout (through the
 * library's own bounded fetch), and failures told in words that carry nothing of the request.
 */
import { fetchWithin } from '../idp/idp-client.js';
import { parseRetryAfter } from '../idp/failures.js';
import { backoffDelay, sleep } from '../tokens/backoff.js';

/** The fetch to use and how long one request may take. */
export interface DoctorHttp {
  readonly fetch: typeof fetch;
  readonly timeoutMs: number;
}

/**
 * An answer: `body` is undefined when it is not JSON; `attempts` counts the requests it took; `location` is the
 * Location header of a redirect that was not followed.
 */
export interface JsonAnswer {
  readonly status: number;
  readonly body: unknown;
  readonly attempts: number;
  readonly location?: string;
}

/** How a request treats a redirect: `follow` (fetch's default) or `manual` (the 3xx is the answer). */
export interface GetOptions {
  readonly redirect?: 'follow' | 'manual';
}

/** Requests made again after a 429 or 5xx: a couple, as a person would press "retry". */
const RETRIES = 2;

/**
 * GETs `url`; `body` is undefined when the answer is not JSON. Throws when there is no answer (in time). With
 * `redirect: 'manual'` a 3xx is returned as it is, with its `location`.
 */
export async function getJson(url: URL, headers: Record<string, string>, http: DoctorHttp, options: GetOptions = {}): Promise<JsonAnswer> {
  const { status, body, location } = await getOnce(url, headers, http, options);
  return { status, body, attempts: 1, ...(location === undefined ? {} : { location }) };
}

/**
 * GETs `url` as `getJson` does, and asks again after a 429 or 5xx answer (a rate limit or a passing fault says
 * nothing about the request), at most twice: after the wait the answer asks for (Retry-After, or Auth0's
 * X-RateLimit-Reset on a 429), else after a short backoff. The waits of one call add up to the doctor's timeout at
 * most: an answer that asks for longer is the last one, and is returned as it is.
 */
export async function getJsonRetrying(url: URL, headers: Record<string, string>, http: DoctorHttp): Promise<JsonAnswer> {
  let budget = http.timeoutMs;
  for (let attempt = 1; ; attempt += 1) {
    const { status, body, wait } = await getOnce(url, headers, http);
    const passing = status === 429 || status >= 500;
    const waitMs = wait ?? backoffDelay(attempt);
    if (!passing || attempt > RETRIES || waitMs > budget) return { status, body, attempts: attempt };
    budget -= waitMs;
    await sleep(waitMs);
  }
}

async function getOnce(
  url: URL,
  headers: Record<string, string>,
  http: DoctorHttp,
  options: GetOptions = {},
): Promise<{ status: number; body: unknown; wait: number | undefined; location: string | undefined }> {
  const init: RequestInit = { headers: { accept: 'application/json', ...headers }, ...(options.redirect ? { redirect: options.redirect } : {}) };
  const response = await fetchWithin(http.fetch, url.href, init, http.timeoutMs);
  const location = response.status >= 300 && response.status < 400 ? (response.headers.get('location') ?? undefined) : undefined;
  return { status: response.status, body: await response.json().catch(() => undefined), wait: waitAskedBy(response), location };
}

/** Milliseconds an answer asks the client to wait before asking again, if it says. */
function waitAskedBy(response: Response): number | undefined {
  const retryAfter = parseRetryAfter(response.headers.get('retry-after'));
  if (retryAfter !== undefined) return retryAfter * 1000;
  // Auth0's Management API tells when its rate limit resets, in seconds since the epoch.
  const reset = response.status === 429 ? response.headers.get('x-ratelimit-reset') : null;
  if (reset === null || !/^\d+$/.test(reset.trim())) return undefined;
  return Math.max(0, Number(reset.trim()) * 1000 - Date.now());
}

/** What went wrong with a request, in words (`ECONNREFUSED`, `no answer in time`), without anything of the request itself. */
export function describeFailure(error: unknown): string {
  const e = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'no answer in time';
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(error);
}
