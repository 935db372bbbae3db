import type { Request, Response } from 'express';
import type { BffContext } from './context.js';

const PING_TIMEOUT_MS = 1_000;

/** GET /healthz: 200 once the issuer metadata is loaded and the session store answers; 503 JSON otherwise. */
export function healthzRoute(ctx: BffContext) {
  return async function healthz(_req: Request, res: Response): Promise<void> {
    const issuer = ctx.idp.isReady;
    if (!issuer) ctx.idp.start();
    let sessionStore = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        ctx.sessions.backend.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('timeout')), PING_TIMEOUT_MS);
        }),
      ]);
    } catch {
      sessionStore = false;
    } finally {
      clearTimeout(timer);
    }
    res.setHeader('Cache-Control', 'no-store');
    if (issuer && sessionStore) {
      res.status(200).json({ status: 'ok', checks: { issuer, sessionStore } });
      return;
    }
    res.status(503).json({
      error: issuer ? 'session_store_unavailable' : 'idp_unavailable',
      error_description: issuer ? 'The session store is not answering.' : 'The issuer metadata has not been loaded yet.',
      checks: { issuer, sessionStore },
    });
  };
}
