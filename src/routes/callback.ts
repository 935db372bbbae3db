import { randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import { ResponseBodyError, AuthorizationResponseError, ClientError, WWWAuthenticateChallengeError } from 'openid-client';
import { BffError, ErrorCode } from '../errors.js';
import { sendError } from '../http/json-error.js';
import { classifyTokenFailure, isTimeoutFailure, oauthErrorCode, refusesTheApplication } from '../idp/failures.js';
import type { SessionRecord } from '../session/record.js';
import { sessionExpiryOf } from '../session/session-expiry.js';
import { sessionRef } from '../session/sessions.js';
import { shortUserAgent } from '../session/user-agent.js';
import { accessTokenEntry } from '../tokens/token-manager.js';
import { cookieValue } from '../session/session-cookie.js';
import { loginAudience, type BffContext } from './context.js';
import { bindingCookieName, bindingCookieOptions, digest, idpUnavailable, loginBindingCookieName, type LoginTransaction } from './login.js';

/**
 * GET /auth/callback: takes the pending login (single use), lets openid-client check state, PKCE, nonce and the
 * ID token, then starts a fresh session (a new id: no fixation) whose record holds the tokens server-side.
 * Any failure answers 400 (502 when Auth0 is unreachable) and creates no session. A silent login (`prompt=none`)
 * instead always goes back to its `returnTo`, with `error` added when it failed; `returnTo` comes only from the
 * server-side transaction, so a forged callback (no pending state bound to this browser) redirects nowhere.
 */
export function callbackRoute(ctx: BffContext) {
  const { config } = ctx;
  const bindingName = bindingCookieName(config.session.cookieName);

  return async function callback(req: Request, res: Response): Promise<void> {
    let transaction: LoginTransaction | undefined;
    try {
      const query = req.query as Record<string, unknown>;
      const state = query.state;
      if (typeof state !== 'string' || state.length === 0 || state.length > 256) {
        throw new BffError(ErrorCode.INVALID_REQUEST, 'The callback has no valid state: no login is pending.');
      }
      const stored = await ctx.sessions.backend.takeTransaction(state);
      if (stored === undefined) throw new BffError(ErrorCode.INVALID_REQUEST, 'No login is pending for this state (it expired, was used already, or was never started here).');
      const pending = JSON.parse(stored) as LoginTransaction;
      // The browser's shared binding, or (a login started at once with another, in another tab) its own.
      const cookies = req.headers.cookie ?? '';
      const ownName = loginBindingCookieName(config.session.cookieName, state);
      const own = cookieValue(cookies, ownName);
      if (own !== undefined) {
        const { maxAge: _maxAge, ...attributes } = bindingCookieOptions(config);
        res.clearCookie(ownName, attributes);
      }
      if (![cookieValue(cookies, bindingName), own].some((binding) => binding !== undefined && digest(binding) === pending.binding)) {
        throw new BffError(ErrorCode.INVALID_REQUEST, 'This login was started in another browser.');
      }
      transaction = pending;
      if (typeof query.error === 'string') {
        const code = query.error.slice(0, 64);
        const description = refusalText(query.error_description);
        const cause = new AuthorizationError(query.error);
        if (refusesTheApplication(code, undefined, description)) throw configurationRefusal(code, description, cause);
        throw new BffError(ErrorCode.LOGIN_FAILED, `Auth0 answered ${code}${description === undefined ? '' : `: ${description}`}`, { cause });
      }
      await startSession(ctx, req, state, transaction);
      res.setHeader('Cache-Control', 'no-store');
      res.redirect(302, returnUrl(transaction.returnTo, config.baseURL).href);
    } catch (error) {
      const failure = error instanceof BffError ? error : idpUnavailable(error);
      if (transaction?.silent !== true) return sendError(res, failure, ctx.report, { operation: 'callback' });
      // The SPA asked without showing a page: it learns the outcome from its own URL, never from an error page.
      const code = silentErrorCode(failure);
      if (failure.code === ErrorCode.LOGIN_FAILED && NEEDS_A_PAGE.has(code)) ctx.report.silentLoginDeclined(code);
      else ctx.report.requestFailed(failure, { operation: 'callback' });
      const target = returnUrl(transaction.returnTo, config.baseURL);
      target.searchParams.set('error', code);
      res.setHeader('Cache-Control', 'no-store');
      res.redirect(302, target.href);
    }
  };
}

/** Checks and exchanges the code, and starts the new session; any failure throws and creates nothing. */
async function startSession(ctx: BffContext, req: Request, state: string, transaction: LoginTransaction): Promise<void> {
  const { config } = ctx;
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
  const audience = loginAudience(config);
  const mismatch = ctx.tokens.audiences.mismatch(answer.accessToken, audience);
  if (mismatch) throw mismatch;
  if (answer.refreshToken === undefined) {
    // Every login says the same until the API's setting changes: the first is logged, the rest counted.
    ctx.report.lines.warn('login:no-refresh-token', 'Login granted no refresh token: turn on "Allow Online Access" for the API; the session ends when its first access token does', { audience: audience ?? null });
  }

  const now = config.clock();
  // An enterprise IdP's session end (session_expiry) caps the absolute lifetime: the BFF session never outlives it.
  const idpSessionEnd = sessionExpiryOf(claims);
  if (idpSessionEnd !== undefined && idpSessionEnd <= now) {
    throw new BffError(ErrorCode.LOGIN_FAILED, 'The identity provider\'s session has already ended (session_expiry).');
  }
  const absoluteExpiresAt = Math.min(now + config.session.absoluteTimeoutMs, idpSessionEnd ?? Infinity);
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
      [audience]: accessTokenEntry(answer, requestedAt, config.tokens),
    },
  };

  // The session this browser had before (another user, or the same one logging in again) ends here: its
  // record would otherwise stay usable by whoever holds the old cookie, and its WebSockets and long responses
  // (on every instance) would go on with its token. Its ORT is not revoked: a login again in the same browser is
  // most often the same Auth0 session, which that would end.
  // With SameSite=Strict the callback (a navigation from Auth0's site) comes without the session cookie: the
  // session the browser had when the login started is known from its transaction.
  const previous = [...new Set([ctx.sessions.idOf(req), transaction.replaces])].filter((id): id is string => typeof id === 'string');
  if (previous.length > 0) {
    const replaced = await ctx.sessions.end({ id: previous[0] }, previous);
    if (replaced.sessions > 0) ctx.report.logout('replaced', replaced);
  }
  await regenerate(req);
  const id = req.sessionID;
  try {
    req.session.bff = { idleExpiresAt, absoluteExpiresAt };
    await ctx.sessions.backend.createRecord(id, record);
    await save(req);
  } catch (error) {
    abandon(ctx, req, id);
    throw error;
  }
  ctx.report.login({ sub: record.sub, sid: record.sid, sessionRef: sessionRef(id) });
}

/**
 * A login the store failed midway leaves the browser logged out, as its error answer says: no session cookie
 * (express-session sets one for a changed session, whatever the answer), and what was written, or may have been
 * (an answer that never came), removed now or once the store answers again. It was never a login: no event.
 */
function abandon(ctx: BffContext, req: Request, id: string): void {
  (req as { session: unknown }).session = null;
  ctx.sessions.end({ id }).catch(() => ctx.sessions.endLater({ id }, 'session_ended', undefined, true));
}

/** Where the browser goes after the login: the transaction's `returnTo`, on this origin only. */
function returnUrl(returnTo: string, baseURL: URL): URL {
  const target = new URL(returnTo, baseURL);
  return target.origin === baseURL.origin ? target : new URL('/', baseURL);
}

/** An error Auth0 put in the callback URL (`error=login_required`, ...). */
class AuthorizationError extends Error {
  constructor(readonly error: string) {
    super(error);
    this.name = 'AuthorizationError';
  }
}

/**
 * The `error` a silent login adds to `returnTo`: Auth0's own code when Auth0 refused (`login_required` when it has
 * no session, `consent_required`, `interaction_required`, ...), else the BFF's error code (`idp_unavailable`, ...).
 */
/** Auth0's answers to `prompt=none` that only say the user would have to see a page (OIDC Core 3.1.2.6). */
const NEEDS_A_PAGE = new Set(['login_required', 'consent_required', 'interaction_required', 'account_selection_required']);

function silentErrorCode(failure: BffError): string {
  const cause = failure.cause;
  const auth0 = cause instanceof AuthorizationError ? cause.error : cause instanceof AuthorizationResponseError || cause instanceof ResponseBodyError ? cause.error : undefined;
  // Only an OAuth error code's characters (RFC 6749 4.1.2.1): it is put in a URL the SPA reads.
  return oauthErrorCode(auth0) ?? failure.code;
}

/**
 * A refusal by Auth0 or a token that does not check out is the login's fault (400), unless Auth0 refused the BFF's
 * own configuration (500, logged as an error: no user can log in until it is fixed); anything else is Auth0 being
 * unreachable (502).
 */
function loginFailure(error: unknown): BffError {
  if (error instanceof ResponseBodyError || error instanceof WWWAuthenticateChallengeError) {
    if (error.status >= 500 || error.status === 429) return idpUnavailable(error);
    const code = classifyTokenFailure(error).error;
    const description = error instanceof ResponseBodyError ? refusalText(error.error_description) : undefined;
    if (refusesTheApplication(code, error.status, description)) return configurationRefusal(code, description, error);
    return new BffError(ErrorCode.LOGIN_FAILED, `Auth0 refused the login: ${code === 'invalid_response' ? 'an answer that is not an OAuth error' : code}.`, { cause: error });
  }
  if (error instanceof AuthorizationResponseError) return new BffError(ErrorCode.LOGIN_FAILED, `Auth0 answered ${oauthErrorCode(error.error) ?? 'an error that is not an OAuth error code'}.`, { cause: error });
  // openid-client reports a request that ran out of time as a ClientError too: Auth0 was slow, the login was fine.
  if (isTimeoutFailure(error)) return idpUnavailable(error);
  if (error instanceof ClientError && !((error as { cause?: unknown }).cause instanceof Response)) {
    return new BffError(ErrorCode.LOGIN_FAILED, 'The login response did not pass validation.', { cause: error });
  }
  return idpUnavailable(error);
}

/**
 * The description of a refusal, as it may be shown and logged: 200 characters at most, printable ASCII only (it
 * comes from the callback URL, or from whatever answered for the token endpoint: a WAF's page as well as Auth0).
 */
function refusalText(description: unknown): string | undefined {
  return typeof description === 'string' ? description.slice(0, 200).replace(/[^\x20-\x7e]/g, '?') : undefined;
}

/** Auth0 refused the BFF itself (its credentials, a grant, an audience): every login fails until it is fixed. */
function configurationRefusal(code: string, description: string | undefined, cause: unknown): BffError {
  const said = description === undefined ? '' : ` (${description})`;
  return new BffError(ErrorCode.CONFIGURATION_ERROR, `Auth0 refused the login because of the BFF's configuration: ${code}${said}. Check the client id and secret, the application's grant types and the audience.`, { cause });
}

const regenerate = (req: Request): Promise<void> =>
  new Promise((resolve, reject) => req.session.regenerate((error: unknown) => (error ? reject(storeFailure(error)) : resolve())));
const save = (req: Request): Promise<void> =>
  new Promise((resolve, reject) => req.session.save((error: unknown) => (error ? reject(storeFailure(error)) : resolve())));
const storeFailure = (error: unknown): BffError =>
  error instanceof BffError ? error : new BffError(ErrorCode.SESSION_STORE_UNAVAILABLE, 'The session store failed; try again shortly.', { cause: error });
