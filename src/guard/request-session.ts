import type { Request } from 'express';
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
  const loaded = await ctx.sessions.load(req, audience);
  return (await ctx.tokens.accessToken(loaded, { audience, scope: options.scope })).token;
}
