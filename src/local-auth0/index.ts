/**
 * `express-ort-bff/local-auth0`: a local stand-in for an Auth0 tenant with Online Refresh Tokens enabled,
 * built on oidc-provider, for tests, demos and development without a tenant.
 *
 * @example
 * ```ts
 * import { startLocalAuth0 } from 'express-ort-bff/local-auth0';
 *
 * const auth0 = await startLocalAuth0({
 *   clients: [{ clientId: 'bff', clientSecret: 's3cret', redirectUris: ['http://127.0.0.1:3000/auth/callback'] }],
 *   users: [{ username: 'alice', password: 'alice-pw', email: 'alice@example.com' }],
 *   apis: [{ audience: 'https://api.example.com' }],
 * });
 * console.log(auth0.issuer); // http://127.0.0.1:<port>/
 * await auth0.stop();
 * ```
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import Provider from 'oidc-provider';

import { createAdmin, type LocalAuth0Admin } from './admin.js';
import { Counters, TokenEndpointFaults, type IssuedToken } from './admin-state.js';
import {
  authorizationActivity,
  patchModels,
  recordAccessTokens,
  revocationEndpoint,
  tokenEndpoint,
} from './auth0-compat.js';
import { BackchannelSender } from './backchannel.js';
import { interactionRoutes } from './interactions.js';
import { logoutRoutes } from './logout.js';
import { ManagementTokens, managementApiRoutes } from './management-api.js';
import { resolveOptions, type LocalAuth0Options } from './options.js';
import { providerConfiguration } from './provider-config.js';
import { SessionRegistry } from './sessions.js';
import { createSigningKey } from './signing-key.js';
import { MemoryStore } from './store.js';

export type { LocalAuth0Admin } from './admin.js';
export type { IssuedToken, LocalAuth0Counts, TokenEndpointFailure } from './admin-state.js';
export type { BackchannelDelivery } from './backchannel.js';
export type { ManagementScope } from './management-api.js';
export type {
  BackchannelLogoutInitiator,
  LocalAuth0Api,
  LocalAuth0Client,
  LocalAuth0ClientGrant,
  LocalAuth0GrantType,
  LocalAuth0Options,
  LocalAuth0User,
} from './options.js';
export type { LocalAuth0Session } from './sessions.js';
export { CookieJar, scriptedLogin, type ScriptedLoginOptions, type ScriptedLoginResult } from './scripted-login.js';

/** A running emulator. */
export interface LocalAuth0 {
  /** The issuer, e.g. `http://127.0.0.1:54321/` (trailing slash, like Auth0's `https://TENANT/`). */
  issuer: string;
  admin: LocalAuth0Admin;
  /** Closes the HTTP server and its connections; the emulator's state is dropped. */
  stop(): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Starts an emulated Auth0 tenant on `host:port` (default: a random port on 127.0.0.1).
 * @throws TypeError for an invalid option, naming it (`"clients[0].redirectUris" must list at least one URL`).
 */
export async function startLocalAuth0(options: LocalAuth0Options): Promise<LocalAuth0> {
  const resolved = resolveOptions(options);
  const key = await createSigningKey();

  // The issuer includes the port, so the server listens first and gets its handler once the provider exists.
  let handler: RequestListener | undefined;
  const server = createServer((req, res) => {
    if (handler) handler(req, res);
    else res.writeHead(503).end();
  });
  const address = await listen(server, resolved.port, resolved.host);
  const issuer = resolved.issuerUrl ?? `http://${formatHost(resolved.host)}:${address.port}/`;

  const store = new MemoryStore();
  const counters = new Counters();
  const faults = new TokenEndpointFaults();
  const accessTokens: IssuedToken[] = [];
  const backchannelTargets = new Map(
    [...resolved.clients.values()].flatMap((client) =>
      client.backchannelLogoutUri
        ? [[client.clientId, { uri: client.backchannelLogoutUri, initiators: client.backchannelLogoutInitiators ?? 'all' }] as const]
        : [],
    ),
  );
  const backchannel = new BackchannelSender(issuer, key, backchannelTargets, resolved.logger);
  const registry = new SessionRegistry(store, backchannel, resolved);

  const provider = new Provider(issuer, providerConfiguration(resolved, key, store));
  provider.proxy = false;
  patchModels(provider, [...resolved.apis.values()].filter((api) => api.allowOnlineAccess).map((api) => api.audience));
  recordAccessTokens(provider, accessTokens);
  provider.on('server_error', (_ctx: unknown, error: Error) => {
    resolved.logger.warn(`local-auth0: server error: ${error.stack ?? error.message}`);
  });

  const ephemeralAudiences = new Set(
    [...resolved.apis.values()].filter((api) => api.allowOnlineAccessWithEphemeralSessions).map((api) => api.audience),
  );
  const services = { registry, counters, faults, ephemeralAudiences, clients: resolved.clients };
  const managementTokens = new ManagementTokens(resolved.managementApiToken);
  provider.use(managementApiRoutes(resolved, managementTokens));
  provider.use(interactionRoutes(provider, resolved));
  provider.use(logoutRoutes({ provider, options: resolved, registry, counters, key, issuer }));
  provider.use(tokenEndpoint(services));
  provider.use(revocationEndpoint(services));
  provider.use(authorizationActivity(services));
  handler = provider.callback();

  let stopped: Promise<void> | undefined;
  return {
    issuer,
    admin: createAdmin({ store, registry, counters, faults, backchannel, accessTokens, key, managementTokens }),
    stop() {
      stopped ??= new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }).finally(() => {
        faults.clear();
        store.clear();
        provider.removeAllListeners();
      });
      return stopped;
    },
  };
}
