import type { Browser } from '../../support/harness.js';

/** One answer the browsers got while the traffic ran. */
export interface Answer {
  readonly status: number;
  /** The JSON `error` code of an error answer. */
  readonly error: string | undefined;
  readonly path: string;
  /** Which browser (its index in the list given to `startTraffic`). */
  readonly browser: number;
}

export interface Traffic {
  readonly answers: Answer[];
  /** Answers that are not a success and not `503 session_store_unavailable`: what a user must never see. */
  unexpected(): Answer[];
  stop(): Promise<void>;
}

/**
 * Every browser calls the API (and now and then /auth/user) in a loop, alternating between the instances, until
 * stopped. Answers are recorded; errors are never thrown.
 */
export function startTraffic(browsers: Browser[], options: { pauseMs?: number } = {}): Traffic {
  const answers: Answer[] = [];
  let running = true;
  const loops = browsers.map(async (browser, n) => {
    for (let i = n; running; i++) {
      const path = i % 5 === 0 ? '/auth/user' : '/api/items';
      const call = path === '/auth/user' ? browser.use(i % 2).request(path) : browser.use(i % 2).api(path);
      try {
        const res = await call;
        const body = res.status >= 400 ? ((await res.json().catch(() => ({}))) as { error?: string }) : (await res.arrayBuffer(), {});
        answers.push({ status: res.status, error: body.error, path, browser: n });
      } catch (error) {
        answers.push({ status: 0, error: String((error as Error).message), path, browser: n });
      }
      await new Promise((r) => setTimeout(r, options.pauseMs ?? 5));
    }
  });
  return {
    answers,
    unexpected: () => answers.filter((a) => !(a.status === 200 || (a.status === 503 && a.error === 'session_store_unavailable'))),
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}
