import type { Request, Response } from 'express';
import { sendError, toBffError } from '../http/json-error.js';
import type { BffContext } from './context.js';

/** Claims about the token itself, not the user: never part of /auth/user. */
const PROTOCOL_CLAIMS = new Set(['iss', 'aud', 'exp', 'iat', 'nbf', 'nonce', 'at_hash', 'c_hash', 's_hash', 'azp', 'auth_time', 'acr', 'amr', 'jti', 'sid', 'org_id']);

/**
 * GET /auth/user: who is logged in and until when, for the SPA. Never a token.
 * `logoutUrl` carries a value bound to this session, so a cross-site page cannot log the user out.
 */
export function userRoute(ctx: BffContext) {
  const { config } = ctx;
  const logoutPath = config.routes.logout;
  return async function user(req: Request, res: Response): Promise<void> {
    try {
      const { record } = await ctx.sessions.loadRecord(req);
      const claims: Record<string, unknown> = {};
      for (const [name, value] of Object.entries(record.claims)) {
        if (name === 'sub') continue;
        if (config.userClaims ? config.userClaims.includes(name) : !PROTOCOL_CLAIMS.has(name)) claims[name] = value;
      }
      res.setHeader('Cache-Control', 'no-store');
      res.json({
        user: { sub: record.sub, ...claims },
        expiresAt: Math.floor(record.absoluteExpiresAt / 1000),
        idleExpiresAt: Math.floor(record.idleExpiresAt / 1000),
        logoutUrl: logoutPath === undefined ? null : `${logoutPath}?sid=${encodeURIComponent(record.logoutId)}`,
      });
    } catch (error) {
      sendError(res, toBffError(error));
    }
  };
}
