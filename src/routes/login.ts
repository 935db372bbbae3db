import { createHash, randomBytes } from 'node:crypto';
import type { CookieOptions, Request, Response } from 'express';
import * as oidc from 'openid-client';
import { BffError, ErrorCode } from '../errors.js';
import { sendError, toBffError } from '../http/json-error.js';
import { cookieValue } from '../session/session-cookie.js';
import type { BffContext } from './context.js';
import { safeReturnTo } from './return-to.js';

/** How long a started login may take before its transaction is forgotten. */
export const LOGIN_TRANSACTION_TTL_MS = 10 * 60 * 1000;

/** A pending login, kept server-side under its `state` (never in a cookie of its own). */
export interface LoginTransaction {
  readonly codeVerifier: string;
  readonly nonce: string;
  readonly returnTo: string;
  /** Digest of the browser's binding cookie: a callback from another browser is refused (login CSRF). */
  readonly binding: string;
  /** `prompt=none`: whatever the outcome, the browser goes back to `returnTo` (with `error` when it failed). */
  readonly silent?: true;
  /**
   * The session the browser had when the login started, which the new one replaces: with SameSite=Strict its cookie
   * does not come with the callback (a navigation from Auth0's site), so it is known from here.
   */
  readonly replaces?: string;
}

const ALLOWED_VALUES: Record<string, (value: string) => boolean> = {
  prompt: (v) => ['none', 'login', 'consent', 'select_account'].includes(v),
  screen_hint: (v) => ['signup', 'login'].includes(v),
  organization: (v) => /^[\w.-]{1,128}$/.test(v),
  login_hint: (v) => v.length <= 256,
};

export const bindingCookieName = (cookieName: string): string => `${cookieName}.tx`;
/**
 * The cookie that also holds a binding a login had to make (the browser sent none): logins started at once in
 * several tabs each make one, and the shared cookie keeps only the last. Named by the login's state, it lives as
 * long as the login and is cleared by its callback.
 */
export const loginBindingCookieName = (cookieName: string, state: string): string => `${cookieName}.tx.${digest(state).slice(0, 12)}`;
export const digest = (value: string): string => createHash('sha256').update(value).digest('base64url');

/**
 * GET /auth/login: starts Authorization Code + PKCE (S256) with state and nonce, asking for `openid online_access`
 * and the audience. One binding cookie per browser (reused by every tab) instead of a cookie per transaction,
 * so parallel logins neither pile up cookies nor overwrite each other.
 */
export function loginRoute(ctx: BffContext) {
  const { config } = ctx;
  const bindingName = bindingCookieName(config.session.cookieName);
  const redirectUri = new URL(config.routes.callback ?? '/auth/callback', config.baseURL).href;

  return async function login(req: Request, res: Response): Promise<void> {
    try {
      const query = req.query as Record<string, unknown>;
      if (query.returnTo !== undefined && safeReturnTo(query.returnTo, config.allowedReturnTo, config.baseURL) === undefined) {
        throw new BffError(ErrorCode.INVALID_REQUEST, 'returnTo must be a path on this site.');
      }
      const returnTo = safeReturnTo(query.returnTo, config.allowedReturnTo, config.baseURL) ?? '/';
      const extra: Record<string, string> = {};
      for (const name of config.loginParameters) {
        const value = query[name];
        if (value === undefined) continue;
        const check = ALLOWED_VALUES[name];
        if (typeof value !== 'string' || (check !== undefined && !check(value))) throw new BffError(ErrorCode.INVALID_REQUEST, `The login parameter ${name} has a value that is not allowed.`);
        extra[name] = value;
      }

      const sent = cookieValue(req.headers.cookie ?? '', bindingName);
      const made = sent === undefined || !/^[\w-]{43}$/.test(sent);
      const binding = made ? randomBytes(32).toString('base64url') : sent;
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      const codeVerifier = oidc.randomPKCECodeVerifier();
      const replaces = ctx.sessions.idOf(req);
      const transaction: LoginTransaction = {
        codeVerifier, nonce, returnTo, binding: digest(binding),
        ...(extra.prompt === 'none' ? { silent: true } : {}),
        ...(replaces === undefined ? {} : { replaces }),
      };

      const url = await ctx.idp.authorizationUrl({
        ...extra,
        response_type: 'code',
        redirect_uri: redirectUri,
        scope: config.scope,
        state,
        nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
        ...(config.audience === undefined ? {} : { audience: config.audience }),
      });
      await ctx.sessions.backend.putTransaction(state, JSON.stringify(transaction), LOGIN_TRANSACTION_TTL_MS);

      const cookie = bindingCookieOptions(config);
      res.cookie(bindingName, binding, cookie);
      if (made) res.cookie(loginBindingCookieName(config.session.cookieName, state), binding, cookie);
      res.setHeader('Cache-Control', 'no-store');
      res.redirect(302, url.href);
    } catch (error) {
      sendError(res, error instanceof BffError ? error : idpUnavailable(error), ctx.report, { operation: 'login' });
    }
  };
}

/** The binding cookies' attributes: a login's lifetime, sent back on Auth0's top-level redirect (Lax). */
export function bindingCookieOptions(config: BffContext['config']): CookieOptions {
  return {
    httpOnly: true,
    secure: config.session.secure,
    sameSite: 'lax',
    path: '/',
    maxAge: LOGIN_TRANSACTION_TTL_MS,
    ...(config.session.domain === undefined ? {} : { domain: config.session.domain }),
  };
}

export function idpUnavailable(error: unknown): BffError {
  if (error instanceof BffError) return error;
  if (error instanceof TypeError && !(error as { cause?: unknown }).cause) return toBffError(error);
  return new BffError(ErrorCode.IDP_UNAVAILABLE, 'Auth0 could not be reached; try again shortly.', { cause: error });
}
