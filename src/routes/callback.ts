import { randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import { ResponseBodyError, AuthorizationResponseError, ClientError } from 'openid-client';
import { BffError, ErrorCode } from '../errors.js';
import { sendError } from '../http/json-error.js';
import type { SessionRecord } from '../session/record.js';
import { sessionRef } from '../session/sessions.js';
import { shortUserAgent } from '../session/user-agent.js';
import { accessTokenEntry } from '../tokens/token-manager.js';
import { cookieValue } from '../session/session-cookie.js';
import { loginAudience, type BffContext } from './context.js';
import { bindingCookieName, digest, idpUnavailable, type LoginTransaction } from './login.js';

/**
 * GET /auth/callback: takes the pending login (single use), lets openid-client check state, PKCE, nonce and the
 * ID token, then starts a fresh session (a new id: no fixation) whose record holds the tokens server-side.
 * Any failure answers 400 (502 when Auth0 is unreachable) and creates no session.
 */
export function callbackRoute(ctx: BffContext) {
  const { config } = ctx;
  const bindingName = bindingCookieName(config.session.cookieName);

  return async function callback(req: Request, res: Response): Promise<void> {
    try {
      const query = req.query as Record<string, unknown>;
      const state = query.state;
      if (typeof state !== 'string' || state.length === 0 || state.length > 256) {
        throw new BffError(ErrorCode.INVALID_REQUEST, 'The callback has no valid state: no login is pending.');
      }
      const stored = await ctx.sessions.backend.takeTransaction(state);
      if (stored === undefined) throw new BffError(ErrorCode.INVALID_REQUEST, 'No login is pending for this state (it expired, was used already, or was never started here).');
      const transaction = JSON.parse(stored) as LoginTransaction;
      const binding = cookieValue(req.headers.cookie ?? '', bindingName);
      if (binding === undefined || digest(binding) !== transaction.binding) {
        throw new BffError(ErrorCode.INVALID_REQUEST, 'This login was started in another browser.');
      }
      if (typeof query.error === 'string') {
        const description = typeof query.error_description === 'string' ? `: ${query.error_description.slice(0, 200)}` : '';
        throw new BffError(ErrorCode.LOGIN_FAILED, `Auth0 answered ${query.error.slice(0, 64)}${description}`);
      }

      const currentUrl = new URL(req.originalUrl, config.baseURL);
      const requestedAt = config.clock();
      let answer;
      try {
        answer = await ctx.idp.exchangeCode(currentUrl, { codeVerifier: transaction.codeVerifier, state, nonce: transaction.nonce });
      } catch (error) {
        throw loginFailure(error);
      }
      const claims = answer.claims;
      if (!claims || typeof claims.sub !== 'string') throw new BffError(ErrorCode.LOGIN_FAILED, 'Auth0 returned no ID token.');
      if (answer.refreshToken === undefined) {
        config.logger.warn('Login granted no refresh token: turn on "Allow Online Access" for the API; the session ends when its first access token does', { sub: claims.sub });
      }

      const now = config.clock();
      const absoluteExpiresAt = now + config.session.absoluteTimeoutMs;
      const idleExpiresAt = Math.min(absoluteExpiresAt, now + config.session.idleTimeoutMs);
      const record: SessionRecord = {
        sub: claims.sub,
        sid: typeof claims.sid === 'string' ? claims.sid : undefined,
        createdAt: now,
        absoluteExpiresAt,
        idleExpiresAt,
        lastActiveAt: now,
        userAgent: shortUserAgent(req.headers['user-agent']),
        logoutId: randomBytes(16).toString('base64url'),
        refreshToken: answer.refreshToken,
        idToken: answer.idToken,
        scope: answer.scope,
        claims,
        accessTokens: {
          [loginAudience(config)]: accessTokenEntry(answer, requestedAt, config.tokens),
        },
      };

      // The session this browser had before (another user, or the same one logging in again) ends here: its
      // record would otherwise stay usable by whoever holds the old cookie.
      const previous = ctx.sessions.idOf(req);
      if (previous !== undefined) await ctx.sessions.backend.destroy([previous]);
      await regenerate(req);
      req.session.bff = { idleExpiresAt, absoluteExpiresAt };
      await ctx.sessions.backend.createRecord(req.sessionID, record);
      await save(req);
      ctx.events.emit('login', { sub: record.sub, sid: record.sid, sessionRef: sessionRef(req.sessionID) });
      res.setHeader('Cache-Control', 'no-store');
      const target = new URL(transaction.returnTo, config.baseURL);
      res.redirect(302, target.origin === config.baseURL.origin ? target.href : new URL('/', config.baseURL).href);
    } catch (error) {
      sendError(res, error instanceof BffError ? error : idpUnavailable(error), config.logger);
    }
  };
}

/** A refusal by Auth0 or a token that does not check out is the login's fault (400); anything else is Auth0 being unreachable (502). */
function loginFailure(error: unknown): BffError {
  if (error instanceof ResponseBodyError) {
    if (error.status >= 500 || error.status === 429) return idpUnavailable(error);
    return new BffError(ErrorCode.LOGIN_FAILED, `Auth0 refused the login: ${error.error}.`, { cause: error });
  }
  if (error instanceof AuthorizationResponseError) return new BffError(ErrorCode.LOGIN_FAILED, `Auth0 answered ${error.error}.`, { cause: error });
  if (error instanceof ClientError && !((error as { cause?: unknown }).cause instanceof Response)) {
    return new BffError(ErrorCode.LOGIN_FAILED, 'The login response did not pass validation.', { cause: error });
  }
  return idpUnavailable(error);
}

const regenerate = (req: Request): Promise<void> =>
  new Promise((resolve, reject) => req.session.regenerate((error: unknown) => (error ? reject(storeFailure(error)) : resolve())));
const save = (req: Request): Promise<void> =>
  new Promise((resolve, reject) => req.session.save((error: unknown) => (error ? reject(storeFailure(error)) : resolve())));
const storeFailure = (error: unknown): BffError =>
  error instanceof BffError ? error : new BffError(ErrorCode.SESSION_STORE_UNAVAILABLE, 'The session store failed; try again shortly.', { cause: error });
