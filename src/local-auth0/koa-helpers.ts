/**
 * Small helpers for the emulator's own Koa middleware (mounted with `provider.use`), which runs before
 * oidc-provider's router and so has no `ctx.oidc` and no parsed body of its own.
 */
import type Provider from 'oidc-provider';

/** The Koa middleware type that `provider.use` accepts. */
export type Middleware = Parameters<Provider['use']>[0];
/** The Koa context given to such middleware. */
export type Context = Parameters<Middleware>[0];

const BODY_LIMIT = 64 * 1024;

/** Reads an `application/x-www-form-urlencoded` body (the stream is consumed: do not call `next()` after). */
export async function readForm(ctx: Context): Promise<URLSearchParams> {
  if (!ctx.is('application/x-www-form-urlencoded')) return new URLSearchParams();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > BODY_LIMIT) ctx.throw(413, 'request entity too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** The request's parameters: the query for GET, the form body for POST. */
export async function readParams(ctx: Context): Promise<URLSearchParams> {
  if (ctx.method === 'POST') return readForm(ctx);
  return new URLSearchParams(ctx.querystring);
}

/** Answers JSON with `Cache-Control: no-store`, as Auth0's endpoints do. */
export function sendJson(ctx: Context, status: number, body: object, headers: Record<string, string> = {}): void {
  ctx.status = status;
  ctx.set({ 'cache-control': 'no-store', pragma: 'no-cache', ...headers });
  ctx.body = body;
}
