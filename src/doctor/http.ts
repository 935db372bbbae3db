/**
 * How the doctor talks to the tenant: GET requests for JSON, each bounded by the doctor's timeout (through the
 * library's own bounded fetch), and failures told in words that carry nothing of the request.
 */
import { fetchWithin } from '../idp/idp-client.js';

/** The fetch to use and how long one request may take. */
export interface DoctorHttp {
  readonly fetch: typeof fetch;
  readonly timeoutMs: number;
}

/** GETs `url`; `body` is undefined when the answer is not JSON. Throws when there is no answer (in time). */
export async function getJson(url: URL, headers: Record<string, string>, http: DoctorHttp): Promise<{ status: number; body: unknown }> {
  const response = await fetchWithin(http.fetch, url.href, { headers: { accept: 'application/json', ...headers } }, http.timeoutMs);
  return { status: response.status, body: await response.json().catch(() => undefined) };
}

/** What went wrong with a request, in words (`ECONNREFUSED`, `no answer in time`), without anything of the request itself. */
export function describeFailure(error: unknown): string {
  const e = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'no answer in time';
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(error);
}
