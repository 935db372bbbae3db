/**
 * The oidc-provider configuration that makes it look like an Auth0 tenant with Online Refresh Tokens enabled:
 * Auth0's endpoint paths, the `audience` parameter, JWT access tokens for known APIs, PKCE S256 required,
 * first-party consent (granted without asking), `online_access` refresh tokens bound to the login session and
 * never rotated, classic `offline_access` refresh tokens that outlive it.
 */
import { randomBytes } from 'node:crypto';

import { errors, type Account, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';

import { checkClientGrant, clientCredentialsClaims, isClientCredentials } from './client-credentials.js';
import type { ResolvedOptions } from './options.js';
import type { SigningKey } from './signing-key.js';
import type { MemoryStore } from './store.js';

/** Auth0's endpoint paths (oidc-provider's route names on the left). */
export const AUTH0_ROUTES = {
  authorization: '/authorize',
  token: '/oauth/token',
  revocation: '/oauth/revoke',
  end_session: '/oidc/logout',
  userinfo: '/userinfo',
  jwks: '/.well-known/jwks.json',
  pushed_authorization_request: '/oauth/par',
} as const;

const OIDC_SCOPES = ['openid', 'profile', 'email', 'offline_access', 'online_access'];
/** Classic refresh tokens: Auth0's default inactivity lifetime for them is 30 days. */
const CLASSIC_REFRESH_TOKEN_TTL = 30 * 24 * 60 * 60;
const BOTH_ACCESS_SCOPES = 'Cannot request both online_access and offline_access scopes';

interface RefreshTokenLike {
  scope?: string | undefined;
  expiresWithSession?: boolean | undefined;
}

/** An ORT: a refresh token issued for `online_access`, bound to the Auth0 session. */
export function isOnlineRefreshToken(token: RefreshTokenLike | undefined): boolean {
  return token?.scope?.split(' ').includes('online_access') === true;
}

/** The scope exactly as the client sent it to /authorize, before oidc-provider trimmed it. */
function requestedScope(ctx: KoaContextWithOIDC): string[] {
  const raw = ctx.method === 'POST' ? (ctx.oidc.body as { scope?: unknown } | undefined)?.scope : ctx.query.scope;
  return typeof raw === 'string' ? raw.split(' ') : [];
}

/**
 * Runs in the /authorize pipeline once the client, redirect_uri and scope are known (errors become error
 * redirects). oidc-provider drops `offline_access` unless `prompt=consent` (OIDC Core 11); Auth0 does not
 * require that, so the scope is put back.
 */
function checkAccessScopes(ctx: KoaContextWithOIDC): void {
  const raw = requestedScope(ctx);
  if (raw.includes('online_access') && raw.includes('offline_access')) {
    throw new errors.InvalidRequest(BOTH_ACCESS_SCOPES);
  }
  const params = ctx.oidc.params!;
  const scopes = new Set(params.scope?.toString().split(' ') ?? []);
  if (raw.includes('offline_access') && ctx.oidc.client?.grantTypeAllowed('refresh_token')) {
    scopes.add('offline_access');
    params.scope = [...scopes].join(' ');
  }
}

/** The configuration object for `new Provider(issuer, configuration)`. */
export function providerConfiguration(
  options: ResolvedOptions,
  key: SigningKey,
  store: MemoryStore,
  /** The user's `session_expiry` now (the admin can move it). */
  sessionExpiryOf: (sub: string) => unknown,
): Configuration {
  const { apis, clients, users } = options;
  const customClaims = [
    ...new Set(['session_expiry', ...users.flatMap((user) => Object.keys(user))]),
  ].filter((claim) => !['username', 'password', 'sub', 'email', 'name', 'email_verified'].includes(claim));

  async function findAccount(_ctx: KoaContextWithOIDC, sub: string): Promise<Account | undefined> {
    const user = users.find((candidate) => candidate.sub === sub);
    if (!user) return undefined;
    const { username: _username, password: _password, session_expiry: _given, ...claims } = user as typeof user & { session_expiry?: unknown };
    return {
      accountId: sub,
      claims: () => {
        const sessionExpiry = sessionExpiryOf(sub);
        return { ...claims, ...(sessionExpiry === undefined ? {} : { session_expiry: sessionExpiry }), sub };
      },
    };
  }

  const configuration: Configuration = {
    adapter: store.adapterFactory,
    clients: [...clients.values()].map((client) => ({
      client_id: client.clientId,
      ...(client.clientSecret !== undefined ? { client_secret: client.clientSecret } : {}),
      redirect_uris: client.redirectUris,
      post_logout_redirect_uris: client.postLogoutRedirectUris ?? [],
      token_endpoint_auth_method: client.tokenEndpointAuthMethod!,
      ...(client.tokenEndpointAuthMethod === 'private_key_jwt' ? { jwks: client.jwks as Configuration['jwks'] } : {}),
      grant_types: client.grantTypes!,
      response_types: client.grantTypes!.includes('authorization_code') ? ['code'] : [],
      id_token_signed_response_alg: 'RS256',
    })),
    jwks: { keys: [key.privateJwk as NonNullable<Configuration['jwks']>['keys'][number]] },
    cookies: {
      keys: [randomBytes(32).toString('base64url')],
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    claims: {
      openid: ['sub', ...customClaims],
      profile: ['name', 'nickname', 'picture', 'given_name', 'family_name', 'updated_at'],
      email: ['email', 'email_verified'],
    },
    scopes: OIDC_SCOPES,
    responseTypes: ['code'],
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    // Auth0 accepts these; `audience` selects the API, the others only shape its hosted login page.
    extraParams: {
      audience: checkAccessScopes,
      screen_hint: null,
      organization: null,
      connection: null,
      invitation: null,
    },
    pkce: { required: () => true },
    clockTolerance: 0,
    // Auth0 puts the profile claims in the ID token, whatever the access token's audience.
    conformIdTokenClaims: false,
    findAccount,
    // First-party applications: Auth0 skips consent, so every requested scope and API is granted.
    async loadExistingGrant(ctx) {
      const { oidc } = ctx;
      const accountId = oidc.session!.accountId!;
      const grantId = oidc.result?.consent?.grantId ?? oidc.session!.grantIdFor(oidc.client!.clientId);
      const existing = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
      const grant =
        existing?.accountId === accountId ? existing : new oidc.provider.Grant({ accountId, clientId: oidc.client!.clientId });
      const requested = [...oidc.requestParamScopes];
      grant.addOIDCScope(requested.filter((scope) => OIDC_SCOPES.includes(scope)).join(' '));
      for (const [indicator, server] of Object.entries(oidc.resourceServers ?? {})) {
        grant.addResourceScope(indicator, requested.filter((scope) => server.scopes.has(scope)).join(' '));
      }
      await grant.save();
      return grant;
    },
    async issueRefreshToken(_ctx, client, code) {
      const online = code.scopes.has('online_access');
      if (!client.grantTypeAllowed('refresh_token') || (!online && !code.scopes.has('offline_access'))) return false;
      const api = typeof code.resource === 'string' ? apis.get(code.resource) : undefined;
      return api === undefined || (online ? api.allowOnlineAccess : api.allowOfflineAccess);
    },
    // ORTs (and codes) die with the session; classic offline refresh tokens do not.
    expiresWithSession: async (_ctx, code) => !code.scopes.has('offline_access'),
    rotateRefreshToken(ctx) {
      const token = ctx.oidc.entities.RefreshToken;
      if (isOnlineRefreshToken(token)) return false;
      return clients.get(ctx.oidc.client!.clientId)?.refreshTokenRotation === true;
    },
    // Revoking one classic refresh token revokes that grant's tokens, not the grant of the session.
    revokeGrantPolicy: (ctx) => ctx.oidc.route !== 'revocation',
    extraTokenClaims: (_ctx, token) => ({ azp: token.clientId }),
    formats: {
      customizers: {
        jwt: (_ctx, token, jwt) => {
          if (token.kind === 'ClientCredentials') clientCredentialsClaims(jwt.payload as Record<string, unknown>, token.clientId!);
        },
      },
    },
    ttl: {
      AccessToken: options.accessTokenTtl,
      ClientCredentials: options.accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: options.idTokenTtl,
      Interaction: 60 * 60,
      Grant: Math.max(options.absoluteTimeout, CLASSIC_REFRESH_TOKEN_TTL),
      // The clock-driven session lifetimes are enforced by the session registry; these are the storage limits.
      Session: options.absoluteTimeout,
      RefreshToken: (_ctx, token) =>
        isOnlineRefreshToken(token) ? options.absoluteTimeout : CLASSIC_REFRESH_TOKEN_TTL,
    },
    routes: AUTH0_ROUTES,
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      userinfo: { enabled: true },
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      backchannelLogout: { enabled: true },
      // DPoP-bound access tokens for any token request with a proof; server nonces (the secret derives them).
      dPoP: {
        enabled: true,
        nonceSecret: randomBytes(32),
        requireNonce: () => options.dpopRequireNonce,
      },
      rpInitiatedLogout: {
        enabled: true,
        // /oidc/logout is answered by the emulator's own handler (Auth0 logs out without asking); these
        // pages are only reached through oidc-provider's own confirm route (login as another user).
        logoutSource: async (ctx, form) => {
          ctx.body = `<!DOCTYPE html><title>Log out</title>${form}<script>document.forms[0].submit()</script>`;
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.body = '<!DOCTYPE html><title>Logged out</title><p>You are logged out.</p>';
        },
      },
      resourceIndicators: {
        enabled: true,
        // Auth0 names the API with `audience`; oidc-provider's resource indicators do the rest.
        defaultResource: async (ctx, _client, oneOf) =>
          oneOf?.[0] ?? (ctx.oidc.route === 'authorization' ? (ctx.oidc.params?.audience as string | undefined) : undefined),
        useGrantedResource: async () => true,
        async getResourceServerInfo(ctx, indicator, client) {
          const api = apis.get(indicator);
          if (!api) throw new errors.AccessDenied(`Service not found: ${indicator}`);
          if (isClientCredentials(ctx)) checkClientGrant(ctx, client, api.audience, clients);
          return {
            scope: [...OIDC_SCOPES, ...api.scopes].join(' '),
            audience: api.audience,
            accessTokenTTL: options.accessTokenTtl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    clientBasedCORS: (_ctx, origin, client) => client.redirectUris?.some((uri) => new URL(uri).origin === origin) ?? false,
    async renderError(ctx, out) {
      ctx.type = 'html';
      const rows = Object.entries(out)
        .map(([name, value]) => `<dt>${escapeHtml(name)}</dt><dd>${escapeHtml(String(value))}</dd>`)
        .join('');
      ctx.body = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Error</title></head><body><h1>Something went wrong</h1><dl>${rows}</dl></body></html>`;
    },
  };
  return configuration;
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
