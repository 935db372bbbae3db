/**
 * Where oidc-provider and Auth0 disagree, this file adapts oidc-provider (reference:
 * shared/reference/auth0-ort-protocol.md, "What oidc-provider does differently from Auth0"):
 * - one `sid` per Auth0 session, the same for every application (oidc-provider makes one per client);
 * - ORT values start with `ORT`;
 * - a refresh answers without `refresh_token` unless it rotated; an ORT exchange restarts the session's idle timer;
 * - an unusable grant is 403 `invalid_grant` (oidc-provider: 400), bad client credentials 401 `access_denied`
 *   at the token and the revocation endpoints (oidc-provider: `invalid_client`), a grant type the application
 *   does not allow 403 `unauthorized_client` (oidc-provider: 400 `invalid_request`);
 * - an ORT of an API with `allow_online_access_with_ephemeral_sessions` is refused at its first exchange;
 * - revoking an ORT ends the whole session, with back-channel logout;
 * - an exchange for an API that the refresh token may not have (outside the application's refresh token
 *   policies, which default to every API that allows online access; without online access; unknown) gets,
 *   without an error, a token for the login's audience (Multi-Resource Refresh Token; oidc-provider: 400
 *   `invalid_target`);
 * - SSO at /authorize restarts the idle timer;
 * plus the admin handle's counters and token-endpoint failure modes.
 */
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { decodeJwt } from 'jose';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';

import type { Counters, TokenEndpointFaults } from './admin-state.js';
import { readForm, sendJson, type Context, type Middleware } from './koa-helpers.js';
import type { LocalAuth0Client } from './options.js';
import { AUTH0_ROUTES, isOnlineRefreshToken } from './provider-config.js';
import type { SessionRegistry } from './sessions.js';
import type { MemoryStore } from './store.js';
import type { IssuedToken, TokenEndpointFailure } from './types.js';

const INVALID_REFRESH_TOKEN = 'Unknown or invalid refresh token.';
/** The token request's form, read once by the emulator before oidc-provider reads its replayed copy. */
const formOf = new WeakMap<object, URLSearchParams>();

interface Services {
  registry: SessionRegistry;
  counters: Counters;
  faults: TokenEndpointFaults;
  /** APIs whose ORTs Auth0 issues but refuses at the first exchange (`allow_online_access_with_ephemeral_sessions`). */
  ephemeralAudiences: ReadonlySet<string>;
  clients: ReadonlyMap<string, Readonly<LocalAuth0Client>>;
  /** The APIs that allow online access: those an ORT may be exchanged for by default. */
  onlineAudiences: readonly string[];
  /** oidc-provider's records, to read the refresh token an exchange presents. */
  store: MemoryStore;
  /** Aborted by `stop()`: a delayed answer still pending is dropped, and its timer with it. */
  stopped: AbortSignal;
}

/** The client a token request authenticates as: `client_id` in the form, HTTP Basic, or a client assertion's `sub`. */
function clientIdOf(ctx: Context, form: URLSearchParams): string | undefined {
  const named = form.get('client_id');
  if (named) return named;
  const basic = /^Basic (.+)$/i.exec(ctx.get('authorization'))?.[1];
  if (basic) return decodeURIComponent(Buffer.from(basic, 'base64').toString('utf8').split(':')[0] ?? '');
  const assertion = form.get('client_assertion');
  if (!assertion) return undefined;
  try {
    const sub = decodeJwt(assertion).sub;
    return typeof sub === 'string' ? sub : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The APIs a refresh token may be exchanged for: its own (the login's audience), and for an ORT every API that
 * allows online access (Multi-Resource Refresh Tokens). oidc-provider reads this as the token's
 * `resourceIndicators`.
 */
function refreshTokenAudiences(
  token: { scope?: string | undefined; resource?: string | string[] | undefined },
  onlineAudiences: readonly string[],
): Set<string> {
  const own = new Set((Array.isArray(token.resource) ? token.resource : [token.resource]).filter((r) => r !== undefined));
  if (isOnlineRefreshToken(token)) for (const audience of onlineAudiences) own.add(audience);
  return own;
}

/**
 * Whether an exchange may name this API: Auth0 gives a refresh token another API's token only when the API is
 * in the application's refresh token policies (default here: every API that allows online access) and the
 * token may have it, and otherwise ignores `audience` without an error. oidc-provider would answer 400
 * `invalid_target`, which Auth0 does not use.
 */
function exchangeMayName(
  client: Readonly<LocalAuth0Client> | undefined,
  token: { scope?: string; resource?: string | string[] } | undefined,
  audience: string,
  onlineAudiences: readonly string[],
): boolean {
  // An unknown or dead refresh token fails anyway, with Auth0's invalid_grant rather than a target error.
  if (!token || !refreshTokenAudiences(token, onlineAudiences).has(audience)) return false;
  const policies = client?.refreshTokenPolicies;
  return policies === undefined || policies.some((policy) => policy.audience === audience);
}

const GRANT_NOT_ALLOWED = 'requested grant type is not allowed for this client';

/** The OIDC context that oidc-provider's router attached to the Koa context, if a route ran. */
function oidcOf(ctx: object): KoaContextWithOIDC['oidc'] | undefined {
  return (ctx as Partial<KoaContextWithOIDC>).oidc;
}

/**
 * Changes three oidc-provider models in place (they are per-provider classes, so no other provider is
 * affected): every ID token carries `sid` (oidc-provider only adds it for clients that require it for
 * back-channel logout; Auth0 always does), the session's sid for every client is the session uid, and ORT
 * values get Auth0's `ORT` prefix. An ORT may also be exchanged for the access token of any other API that allows
 * online access (Auth0's Multi-Resource Refresh Tokens: `audience` on the refresh request).
 */
export function patchModels(provider: Provider, onlineAudiences: readonly string[]): void {
  (provider.Client.prototype as unknown as { includeSid(): boolean }).includeSid = () => true;

  const session = provider.Session.prototype as unknown as {
    uid: string;
    ensureClientContainer(clientId: string): void;
    sidFor(clientId: string, value?: string): string | undefined;
  };
  session.ensureClientContainer = function ensureClientContainer(this: typeof session, clientId: string) {
    if (!this.sidFor(clientId)) this.sidFor(clientId, this.uid);
  };

  Object.defineProperty(provider.RefreshToken.prototype, 'resourceIndicators', {
    configurable: true,
    get(this: { scope?: string; resource?: string | string[] }) {
      return refreshTokenAudiences(this, onlineAudiences);
    },
  });

  const refreshToken = provider.RefreshToken.prototype as unknown as {
    scope?: string;
    generateTokenId(this: unknown): string;
  };
  const generateTokenId = refreshToken.generateTokenId;
  refreshToken.generateTokenId = function prefixedTokenId(this: typeof refreshToken) {
    const id = generateTokenId.call(this);
    return isOnlineRefreshToken(this) ? `ORT${id}` : id;
  };
}

/** Auth0's error body for a refresh token or authorization code that cannot be used. */
function invalidGrantDescription(grantType: string, original: string | undefined): string {
  if (grantType === 'refresh_token') return INVALID_REFRESH_TOKEN;
  if (grantType === 'authorization_code') {
    return original?.includes('PKCE') ? 'Failed to verify code verifier' : 'Invalid authorization code';
  }
  return original ?? 'invalid grant';
}

/** `/oauth/token`: failure modes, counters, and the Auth0 shape of answers. */
export function tokenEndpoint(services: Services): Middleware {
  const { registry, counters, faults, ephemeralAudiences, clients, onlineAudiences, store, stopped } = services;
  return async function auth0TokenEndpoint(ctx, next) {
    if (ctx.path !== AUTH0_ROUTES.token || ctx.method !== 'POST') return next();

    // Auth0 names the API of a refresh or a client-credentials grant with `audience`; oidc-provider reads RFC 8707 `resource`.
    if (ctx.is('application/x-www-form-urlencoded')) {
      const form = await readForm(ctx);
      const audience = form.get('audience');
      const grantType = form.get('grant_type');
      if (grantType === 'client_credentials' && audience) {
        form.delete('audience');
        form.set('resource', audience);
      } else if (grantType === 'refresh_token' && audience) {
        form.delete('audience');
        // Not one the token may have: answered with a token for the refresh token's own (login) audience.
        const clientId = clientIdOf(ctx, form);
        const presented = form.get('refresh_token');
        const token = presented ? store.read('RefreshToken', presented) : undefined;
        const client = clientId === undefined ? undefined : clients.get(clientId);
        if (exchangeMayName(client, token, audience, onlineAudiences)) form.set('resource', audience);
      }
      // The body stream is consumed: hand oidc-provider a fresh one with the same (possibly rewritten) form.
      const raw = Buffer.from(form.toString());
      ctx.req.headers['content-length'] = String(raw.length);
      ctx.req = Object.assign(Readable.from([raw], { objectMode: false }), { headers: ctx.req.headers, method: ctx.req.method, url: ctx.req.url }) as unknown as typeof ctx.req;
      formOf.set(ctx, form);
    }

    const failure = faults.take();
    if (failure?.delayMs !== undefined) {
      try {
        await delay(failure.delayMs, undefined, { signal: stopped });
      } catch {
        // The emulator stopped: its connections are closed, and its state is gone.
        return;
      }
    } else if (failure) {
      const grantType = formOf.get(ctx)?.get('grant_type') ?? 'unknown';
      counters.tokenRequest(grantType, failure.status);
      answerFailure(ctx, failure);
      return;
    }

    await next();

    const oidc = oidcOf(ctx);
    const grantType = String(oidc?.params?.grant_type ?? (oidc?.body as { grant_type?: unknown } | undefined)?.grant_type ?? 'unknown');
    const body = ctx.body as Record<string, unknown> | undefined;
    if (ctx.status === 200 && grantType === 'refresh_token' && refusedAsEphemeral(oidc?.entities.RefreshToken, ephemeralAudiences)) {
      // Auth0's known limit: the ORT was issued, but its exchange fails as if the session were over.
      counters.tokenRequest(grantType, 403);
      sendJson(ctx, 403, { error: 'invalid_grant', error_description: INVALID_REFRESH_TOKEN });
      return;
    }
    counters.tokenRequest(grantType, ctx.status);

    if (ctx.status === 200 && grantType === 'refresh_token' && body) {
      // Auth0 sends a refresh_token only when it rotated it: never for an ORT, nor for a classic refresh
      // token of an application without rotation. The client keeps the one it has.
      if (body.refresh_token === oidc?.params?.refresh_token) delete body.refresh_token;
      const token = oidc?.entities.RefreshToken;
      if (isOnlineRefreshToken(token) && token?.sessionUid) registry.touch(token.sessionUid);
    } else if (ctx.status === 400 && body?.error === 'access_denied' && grantType === 'client_credentials') {
      // No client grant for the API, or a permission outside it: Auth0 answers 403.
      sendJson(ctx, 403, { error: 'access_denied', error_description: body.error_description });
    } else if (ctx.status === 400 && body?.error === 'invalid_grant') {
      sendJson(ctx, 403, { error: 'invalid_grant', error_description: invalidGrantDescription(grantType, body.error_description as string | undefined) });
    } else if (ctx.status === 400 && body?.error === 'invalid_request' && body.error_description === GRANT_NOT_ALLOWED) {
      sendJson(ctx, 403, { error: 'unauthorized_client', error_description: `Grant type '${grantType}' not allowed for the client.` });
    } else if (ctx.status === 401 && body?.error === 'invalid_client') {
      ctx.remove('www-authenticate');
      sendJson(ctx, 401, { error: 'access_denied', error_description: 'Unauthorized' });
    }
  };
}

/** Answers a token request with a status failure mode (`delayMs` is handled by the caller). */
function answerFailure(ctx: Context, failure: Exclude<TokenEndpointFailure, { delayMs: number }>): void {
  const body = 'body' in failure ? failure.body : undefined;
  if (failure.status === 429 && 'retryAfter' in failure) {
    const { retryAfter } = failure;
    sendJson(ctx, 429, body ?? { error: 'too_many_requests', error_description: 'Global limit has been reached' }, {
      'retry-after': String(retryAfter),
      'x-ratelimit-limit': '100',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + retryAfter),
    });
  } else {
    sendJson(ctx, failure.status, body ?? { error: 'temporarily_unavailable', error_description: 'Service Unavailable' });
  }
}

function refusedAsEphemeral(
  token: { scope?: string | undefined; resource?: string | string[] | undefined } | undefined,
  ephemeralAudiences: ReadonlySet<string>,
): boolean {
  if (!isOnlineRefreshToken(token)) return false;
  const resources = Array.isArray(token?.resource) ? token.resource : [token?.resource];
  return resources.some((resource) => resource !== undefined && ephemeralAudiences.has(resource));
}

/**
 * `/oauth/revoke`: revoking an ORT ends its Auth0 session (all its ORTs, SSO) with back-channel logout. Bad client
 * credentials get the token endpoint's 401 `access_denied` "Unauthorized".
 */
export function revocationEndpoint({ registry, counters }: Services): Middleware {
  return async function auth0Revocation(ctx, next) {
    if (ctx.path !== AUTH0_ROUTES.revocation || ctx.method !== 'POST') return next();
    await next();
    if (ctx.status === 401 && (ctx.body as { error?: unknown } | undefined)?.error === 'invalid_client') {
      ctx.remove('www-authenticate');
      sendJson(ctx, 401, { error: 'access_denied', error_description: 'Unauthorized' });
      return;
    }
    if (ctx.status !== 200) return;
    counters.revocations += 1;
    const token = oidcOf(ctx)?.entities.RefreshToken;
    if (isOnlineRefreshToken(token) && token?.sessionUid) {
      // Whether Auth0 sends a logout token here is undocumented; the emulator does, as the session was revoked.
      await registry.end(token.sessionUid, { backchannel: 'session-revoked' });
    }
  };
}

/** `/authorize`: a request answered from an existing session (SSO, or right after login) is session activity. */
export function authorizationActivity({ registry }: Services): Middleware {
  return async function auth0SessionActivity(ctx, next) {
    await next();
    const oidc = oidcOf(ctx);
    if (oidc?.route !== 'authorization' && oidc?.route !== 'resume') return;
    const session = oidc.session;
    if (session?.accountId && ctx.status < 400 && ctx.response.get('location').includes('code=')) {
      registry.touch(session.uid);
    }
  };
}

/** Records every access token issued (JWT access tokens are not stored, so this is the only place to see them). */
export function recordAccessTokens(provider: Provider, issued: IssuedToken[]): void {
  const record = (token: {
    clientId?: string;
    accountId?: string;
    sid?: string;
    aud?: string | string[];
    exp?: number;
    iat?: number;
    expiration?: number;
  }, sub = token.accountId ?? '') => {
    const now = Math.floor(Date.now() / 1000);
    // A long-running demo issues tokens forever: forget the expired ones now and then.
    if (issued.length >= 1000) issued.splice(0, issued.length, ...issued.filter((t) => t.expiresAt > now));
    issued.push({
      kind: 'access_token',
      clientId: token.clientId ?? '',
      sub,
      ...(token.sid ? { sid: token.sid } : {}),
      ...(typeof token.aud === 'string' ? { audience: token.aud } : {}),
      expiresAt: token.exp ?? (token.iat ?? now) + (token.expiration ?? 0),
      issuedAt: Date.now(),
    });
  };
  provider.on('access_token.issued', record);
  provider.on('access_token.saved', record);
  // An application's own token (client credentials): its subject is the application, as Auth0 writes it.
  provider.on('client_credentials.issued', (token: Parameters<typeof record>[0]) => record(token, `${token.clientId ?? ''}@clients`));
}
