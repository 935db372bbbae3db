import type { Request } from 'express';
import { BffError, ErrorCode } from '../errors.js';
import { loginAudience, type BffContext } from '../routes/context.js';
import type { BffUser } from '../routes/bff-user.js';
import type { BffSession } from './guard-types.js';

/** The session of each request the guard let through; kept off the request object (no property to collide with). */
const sessions = new WeakMap<object, BffSession>();

export function rememberSession(req: Request, user: BffUser, ctx: BffContext): void {
  sessions.set(req, { ...user, accessToken: (options) => requestAccessToken(ctx, req, options) });
}

/** The session `bff.requireSession()` found for this request; a TypeError when the guard did not run on it. */
export function sessionOf(req: object): BffSession {
  const found = sessions.get(req);
  if (found === undefined) throw new TypeError('bff.session(req) needs bff.requireSession() to run first on this route');
  return found;
}

/** A fresh access token of the request's session for an API (`bff.getAccessToken`, `bff.session(req).accessToken`). */
export async function requestAccessToken(ctx: BffContext, req: Request, options: { audience?: string; scope?: string } = {}): Promise<string> {
  const audience = options.audience ?? loginAudience(ctx.config);
  checkScope(ctx, audience, options.scope);
  const loaded = await ctx.sessions.load(req, audience);
  return (await ctx.tokens.accessToken(loaded, { audience, scope: options.scope })).token;
}

/**
 * One user token is kept per audience: for an audience the proxy calls with the user's token, another scope would
 * replace the proxy's token with one that has other permissions (as validation refuses two such APIs of one
 * audience with different scopes). The app's own calls to that audience use the proxy's scope, or none.
 */
function checkScope(ctx: BffContext, audience: string, scope: string | undefined): void {
  if (scope === undefined) return;
  const proxied = ctx.config.apis.find((api) => api.audience === audience && api.token !== 'client' && api.token !== 'none');
  if (proxied === undefined || proxied.scope === scope) return;
  throw new BffError(
    ErrorCode.CONFIGURATION_ERROR,
    `The API at ${proxied.mount} is called with this audience's token${proxied.scope === undefined ? '' : ` for the scope "${proxied.scope}"`}, and one token is kept per audience: ask for ${proxied.scope === undefined ? 'no scope' : 'that scope, or none'}.`,
  );
}
