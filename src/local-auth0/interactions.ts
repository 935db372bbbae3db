/**
 * The hosted login page: `GET /interaction/:uid` shows a username/password form (prefilled from
 * `login_hint`), `POST /interaction/:uid/login` checks the credentials and resumes the authorization request.
 * Consent never shows: like Auth0 for first-party applications, it is granted on the spot.
 */
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';

import { readForm, type Context, type Middleware } from './koa-helpers.js';
import { LOGIN_FORM_MARKER } from './login-form-marker.js';
import type { ResolvedOptions } from './options.js';
import { escapeHtml } from './provider-config.js';

const ROUTE = /^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/;

function loginPage(uid: string, view: { clientId: string; username: string; error?: string; signup: boolean }): string {
  const title = view.signup ? 'Sign up' : 'Log in';
  const error = view.error ? `<p role="alert" class="error">${escapeHtml(view.error)}</p>` : '';
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${title} | local Auth0</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:sans-serif;max-width:22rem;margin:3rem auto}label,input,button{display:block;width:100%;margin:.3rem 0}
input,button{padding:.5rem;box-sizing:border-box}.error{color:#b00020}</style></head>
<body><h1>${title}</h1><p>to continue to ${escapeHtml(view.clientId)}</p>${error}
<form method="post" action="/interaction/${uid}/login" ${LOGIN_FORM_MARKER}>
<label for="username">Username</label><input id="username" name="username" autocomplete="username" value="${escapeHtml(view.username)}" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button id="login" type="submit">Continue</button>
</form></body></html>`;
}

/** Grants everything the pending consent prompt lists, on the interaction's grant. */
async function grantAll(provider: Provider, details: Awaited<ReturnType<Provider['interactionDetails']>>): Promise<string> {
  const { prompt, params, session, grantId } = details;
  const accountId = session!.accountId;
  const clientId = params.client_id as string;
  const grant = (grantId ? await provider.Grant.find(grantId) : undefined) ?? new provider.Grant({ accountId, clientId });
  const missing = prompt.details as {
    missingOIDCScope?: string[];
    missingOIDCClaims?: string[];
    missingResourceScopes?: Record<string, string[]>;
  };
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return grant.save();
}

async function finish(ctx: Context, provider: Provider, result: InteractionResults, merge: boolean): Promise<void> {
  const location = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: merge });
  ctx.status = 303;
  ctx.redirect(location);
}

/** The login form and automatic consent, as `provider.use` middleware. */
export function interactionRoutes(provider: Provider, options: ResolvedOptions): Middleware {
  return async function loginForm(ctx, next) {
    const match = ROUTE.exec(ctx.path);
    if (!match || (ctx.method !== 'GET' && ctx.method !== 'POST')) return next();
    const [, uid, login] = match;
    ctx.set('cache-control', 'no-store');

    let details: Awaited<ReturnType<Provider['interactionDetails']>>;
    try {
      details = await provider.interactionDetails(ctx.req, ctx.res);
    } catch {
      ctx.status = 400;
      ctx.type = 'html';
      ctx.body = '<!DOCTYPE html><title>Expired</title><p>This login request has expired or is unknown. Start again from the application.</p>';
      return undefined;
    }
    if (details.uid !== uid) ctx.throw(400, 'interaction mismatch');
    const { params, prompt } = details;
    const view = {
      clientId: String(params.client_id),
      username: typeof params.login_hint === 'string' ? params.login_hint : '',
      signup: params.screen_hint === 'signup',
    };

    if (prompt.name === 'consent') {
      return finish(ctx, provider, { consent: { grantId: await grantAll(provider, details) } }, true);
    }
    if (prompt.name !== 'login') ctx.throw(400, `unsupported prompt ${prompt.name}`);

    if (ctx.method === 'GET' && !login) {
      ctx.type = 'html';
      ctx.body = loginPage(uid!, view);
      return undefined;
    }
    if (ctx.method !== 'POST' || !login) return next();

    const form = await readForm(ctx);
    const username = form.get('username') ?? '';
    const user = options.users.find((candidate) => candidate.username === username);
    if (!user || user.password !== form.get('password')) {
      ctx.status = 401;
      ctx.type = 'html';
      ctx.body = loginPage(uid!, { ...view, username, error: 'Wrong username or password.' });
      return undefined;
    }
    return finish(ctx, provider, { login: { accountId: user.sub } }, false);
  };
}
