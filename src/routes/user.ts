import type { Request, Response } from 'express';
import type { BffConfig } from '../config/validate.js';
import { BffError, ErrorCode } from '../errors.js';
import { sendError, toBffError } from '../http/json-error.js';
import type { SessionRecord } from '../session/record.js';
import type { BffUser } from './bff-user.js';
import type { BffContext } from './context.js';

/** Claims about the token itself, not the user: never part of /auth/user. */
const PROTOCOL_CLAIMS = new Set(['iss', 'aud', 'exp', 'iat', 'nbf', 'nonce', 'at_hash', 'c_hash', 's_hash', 'azp', 'auth_time', 'acr', 'amr', 'jti', 'sid', 'org_id']);

/**
 * GET /auth/user: who is logged in and until when, for the SPA. Never a token.
 * `logoutUrl` carries a value bound to this session, so a cross-site page cannot log the user out.
 * `?touch=false` asks without counting as activity: a page polling whether its session is alive does not keep it
 * alive (API calls, and this route without it, roll the idle expiry).
 */
export function userRoute(ctx: BffContext) {
  const { config } = ctx;
  const logoutPath = config.routes.logout;
  return async function user(req: Request, res: Response): Promise<void> {
    try {
      const touch = (req.query as Record<string, unknown>).touch;
      if (touch !== undefined && touch !== 'true' && touch !== 'false') {
        throw new BffError(ErrorCode.INVALID_REQUEST, 'touch must be "true" or "false".');
      }
      const { record } = await ctx.sessions.loadRecord(req, { touch: touch !== 'false' });
      res.setHeader('Cache-Control', 'no-store');
      res.json({
        ...describeUser(record, config),
        logoutUrl: logoutPath === undefined ? null : `${logoutPath}?sid=${encodeURIComponent(record.logoutId)}`,
      });
    } catch (error) {
      sendError(res, toBffError(error), ctx.report, { operation: 'user' });
    }
  };
}

/** The user's claims (allow-listed, without protocol claims) and the session's expiries. */
export function describeUser(record: SessionRecord, config: BffConfig): BffUser {
  const claims: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(record.claims)) {
    if (name === 'sub') continue;
    if (config.userClaims ? config.userClaims.includes(name) : !PROTOCOL_CLAIMS.has(name)) claims[name] = value;
  }
  return {
    user: { sub: record.sub, ...claims },
    expiresAt: Math.floor(record.absoluteExpiresAt / 1000),
    idleExpiresAt: Math.floor(record.idleExpiresAt / 1000),
  };
}
