import type { Request, Response } from 'express';
import { BffError, ErrorCode } from '../errors.js';
import { sendError, toBffError } from '../http/json-error.js';
import { classifyTokenFailure } from '../idp/failures.js';
import type { Ended } from '../events/reporter.js';
import { cookieValue } from '../session/session-cookie.js';
import { sessionRef } from '../session/sessions.js';
import type { BffContext } from './context.js';

/**
 * GET|POST /auth/logout?sid=<logoutId from /auth/user>: revokes the ORT at Auth0 (which ends the Auth0 session,
 * and with it SSO for every app), ends every BFF session of that Auth0 session, clears the cookie, and sends the
 * browser to Auth0's /oidc/logout (or straight back to the app). A failed revocation still logs out locally.
 * Once the ORT is revoked the logout has happened, whatever the session store does: the browser is answered as
 * logged out even when the store is failing over or resharding, and the store is cleaned up when it answers again
 * (DESIGN invariant 13). Without a revocation, a store failure changes nothing and answers 503.
 */
export function logoutRoute(ctx: BffContext) {
  const { config } = ctx;
  const localReturn = new URL(config.logout.returnTo, config.baseURL).href;

  return async function logout(req: Request, res: Response): Promise<void> {
    try {
      const id = ctx.sessions.idOf(req);
      const record = id === undefined ? undefined : await ctx.sessions.backend.readRecord(id);
      const query = { ...(req.query as Record<string, unknown>), ...((req.body ?? {}) as Record<string, unknown>) };
      if (id !== undefined && record !== undefined) {
        if (query.sid !== record.logoutId) {
          throw new BffError(ErrorCode.INVALID_REQUEST, 'This logout link is not bound to the current session; use logoutUrl from /auth/user.');
        }
        // The BFF sessions end before the revocation: the back-channel logout Auth0 may send because of it then
        // finds nothing left to end, and this stays one logout, reported once, as the user's.
        const ending = { id, sub: record.sub, sid: record.sid };
        let ended: Ended | undefined;
        let storeFailure: unknown;
        try {
          ended = await ctx.sessions.end(ending);
        } catch (error) {
          // The store is failing over or resharding: the logout goes on at Auth0, and decides below.
          if (!(error instanceof BffError) || error.code !== ErrorCode.SESSION_STORE_UNAVAILABLE) throw error;
          storeFailure = error;
        }
        let revoked = false;
        if (record.refreshToken !== undefined) {
          try {
            await ctx.idp.revoke(record.refreshToken);
            revoked = true;
          } catch (error) {
            ctx.report.revocationFailed({ sub: record.sub, sid: record.sid, sessionRef: sessionRef(id) }, classifyTokenFailure(error));
          }
        }
        if (ended !== undefined) ctx.report.logout('user', ended, { revoked });
        // Nothing at Auth0 keeps these sessions alive once the ORT is revoked (or there never was one): the logout
        // has happened, and the store is told when it answers again. Otherwise nothing happened: 503.
        else if (revoked || record.refreshToken === undefined) ctx.sessions.endLater(ending, 'user', { revoked });
        else throw storeFailure;
        await destroySession(req);
        clearCookie(res, ctx);
        const target = config.logout.idpLogout
          ? ctx.idp.endSessionUrl({
              client_id: config.clientId,
              post_logout_redirect_uri: localReturn,
              // Auth0 accepts the session id as logout_hint: no ID token travels through the browser.
              ...(record.sid === undefined ? {} : { logout_hint: record.sid }),
              ...(config.logout.idTokenHint && record.idToken !== undefined ? { id_token_hint: record.idToken } : {}),
            })
          : undefined;
        res.setHeader('Cache-Control', 'no-store');
        res.redirect(302, target?.href ?? localReturn);
        return;
      }
      await destroySession(req);
      // Only a cookie the request carried: clearing one it did not carry would let a cross-site form (which a
      // SameSite cookie does not go with, but whose answer's Set-Cookie the browser applies) log the user out.
      if (cookieValue(req.headers.cookie ?? '', config.session.cookieName) !== undefined) clearCookie(res, ctx);
      res.setHeader('Cache-Control', 'no-store');
      res.redirect(302, localReturn);
    } catch (error) {
      sendError(res, toBffError(error), ctx.report, { operation: 'logout' });
    }
  };
}

function clearCookie(res: Response, ctx: BffContext): void {
  if (ctx.config.session.external) return;
  const { session } = ctx.config;
  res.clearCookie(session.cookieName, {
    path: '/',
    httpOnly: true,
    secure: session.secure,
    sameSite: session.sameSite,
    ...(session.domain === undefined ? {} : { domain: session.domain }),
  });
}

const destroySession = (req: Request): Promise<void> =>
  new Promise((resolve) => {
    if (!req.session) return resolve();
    // The record is gone already; a failure here leaves only an empty express-session entry behind.
    req.session.destroy(() => resolve());
  });
