/** Full-jitter exponential backoff (AWS architecture blog's "full jitter"): spreads retries of many sessions apart. */
export function backoffDelay(attempt: number, baseMs = 100, capMs = 1_000, random = Math.random): number {
  return Math.round(random() * Math.min(capMs, baseMs * 2 ** attempt));
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
