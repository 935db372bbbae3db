/**
 * RP-initiated logout as Auth0 does it: `GET /oidc/logout` (and the legacy `GET /v2/logout?returnTo=`) ends
 * the session at once, without oidc-provider's confirmation page, sends back-channel logout tokens to the
 * session's applications, and redirects to the registered `post_logout_redirect_uri` (with `state`).
 *
 * The session ended is the browser's (session cookie) and the one named by `logout_hint` (a sid) or by the
 * `sid` of `id_token_hint`, so that a server without the browser's cookies can end it too. As on Auth0, a
 * `logout_hint` needs `id_token_hint` or `client_id` beside it, and one that is not the `sid` of the
 * `id_token_hint` is refused: the logout fails and ends no session.
 */
import { decodeJwt } from 'jose';
import type Provider from 'oidc-provider';

import type { Counters } from './admin-state.js';
import { readParams, type Context, type Middleware } from './koa-helpers.js';
import type { ResolvedOptions } from './options.js';
import { AUTH0_ROUTES, escapeHtml } from './provider-config.js';
import type { SessionRegistry } from './sessions.js';
import type { SigningKey } from './signing-key.js';

interface LogoutServices {
  provider: Provider;
  options: ResolvedOptions;
  registry: SessionRegistry;
  counters: Counters;
  key: SigningKey;
  issuer: string;
}

class LogoutError extends Error {}

function page(ctx: Context, status: number, title: string, text: string): void {
  ctx.status = status;
  ctx.type = 'html';
  ctx.set('cache-control', 'no-store');
  ctx.body = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1><p>${escapeHtml(text)}</p></body></html>`;
}

/** Checks the ID token hint's signature and issuer; an expired hint is fine (OIDC RP-Initiated Logout 1.0 §2). */
async function verifyHint(hint: string, key: SigningKey, issuer: string): Promise<{ aud: string; sid?: string; sub?: string }> {
  try {
    await key.verifySignature(hint);
    const claims = decodeJwt(hint);
    const aud = Array.isArray(claims.aud) ? claims.aud[0] : claims.aud;
    if (claims.iss !== issuer || typeof aud !== 'string') throw new Error('wrong issuer or audience');
    return {
      aud,
      ...(typeof claims.sid === 'string' ? { sid: claims.sid } : {}),
      ...(typeof claims.sub === 'string' ? { sub: claims.sub } : {}),
    };
  } catch {
    throw new LogoutError('id_token_hint is not a valid ID token of this tenant');
  }
}

/** The logout routes, as `provider.use` middleware. */
export function logoutRoutes(services: LogoutServices): Middleware {
  const { provider, options, registry, counters, key, issuer } = services;

  async function logout(ctx: Context, params: URLSearchParams): Promise<void> {
    const hint = params.get('id_token_hint');
    const claims = hint ? await verifyHint(hint, key, issuer) : undefined;
    const clientId = params.get('client_id') ?? claims?.aud;
    if (claims && params.has('client_id') && params.get('client_id') !== claims.aud) {
      throw new LogoutError('client_id does not match the id_token_hint');
    }
    const logoutHint = params.get('logout_hint');
    if (logoutHint !== null && !claims && !params.has('client_id')) {
      // Auth0: "logout_hint ... must be accompanied by either id_token_hint or client_id".
      throw new LogoutError('logout_hint needs id_token_hint or client_id');
    }
    if (logoutHint !== null && claims && logoutHint !== claims.sid) {
      throw new LogoutError('logout_hint does not match the sid of the id_token_hint');
    }
    const client = clientId === undefined ? undefined : options.clients.get(clientId);
    if (clientId !== undefined && !client) throw new LogoutError(`unknown client_id ${clientId}`);
    const returnTo = params.get('post_logout_redirect_uri');
    if (returnTo !== null && !client?.postLogoutRedirectUris?.includes(returnTo)) {
      throw new LogoutError('post_logout_redirect_uri is not in the Allowed Logout URLs of the application');
    }

    const sids = new Set<string>();
    const cookieSession = await provider.Session.get(ctx);
    if (cookieSession.accountId) sids.add(cookieSession.uid);
    const hinted = logoutHint ?? claims?.sid;
    if (hinted) {
      const session = registry.find(hinted);
      if (session && (claims?.sub === undefined || session.sub === claims.sub)) sids.add(hinted);
    }
    for (const sid of sids) await registry.end(sid, { backchannel: 'rp-logout' });
    ctx.cookies.set(provider.cookieName('session'), null, { signed: true, path: '/' });

    if (returnTo !== null) {
      const target = new URL(returnTo);
      const state = params.get('state');
      if (state !== null) target.searchParams.set('state', state);
      ctx.set('cache-control', 'no-store');
      ctx.redirect(target.href);
      return;
    }
    page(ctx, 200, 'Logged out', 'You are logged out.');
  }

  return async function auth0Logout(ctx, next) {
    const legacy = ctx.path === '/v2/logout';
    if ((ctx.path !== AUTH0_ROUTES.end_session && !legacy) || (ctx.method !== 'GET' && ctx.method !== 'POST')) {
      return next();
    }
    counters.endSession += 1;
    const params = await readParams(ctx);
    if (legacy && params.has('returnTo')) {
      // /v2/logout names the target `returnTo` and takes no `state`.
      params.set('post_logout_redirect_uri', params.get('returnTo')!);
      params.delete('state');
    }
    try {
      await logout(ctx, params);
    } catch (error) {
      if (!(error instanceof LogoutError)) throw error;
      page(ctx, 400, 'Logout failed', `invalid_request: ${error.message}`);
    }
    return undefined;
  };
}
