/**
 * The emulator itself: oidc-provider configured to behave like an Auth0 tenant with Online Refresh Tokens, on a
 * loopback HTTP server. Only `startLocalAuth0()` loads this module, on demand, so that the rest of
 * `express-ort-bff/local-auth0` works without oidc-provider installed.
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import Provider from 'oidc-provider';

import { createAdmin } from './admin.js';
import { Counters, TokenEndpointFaults } from './admin-state.js';
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
import type { ResolvedOptions } from './options.js';
import { providerConfiguration } from './provider-config.js';
import { SessionRegistry } from './sessions.js';
import { createSigningKey } from './signing-key.js';
import { MemoryStore } from './store.js';
import type { IssuedToken, LocalAuth0 } from './types.js';

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

/** Starts the emulated tenant on `resolved.host:resolved.port`. */
export async function startEmulator(resolved: ResolvedOptions): Promise<LocalAuth0> {
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
  // Aborted at stop(), so that a pending delayed answer or back-channel delivery neither keeps the process alive
  // nor runs on a cleared store.
  const stopping = new AbortController();
  const backchannel = new BackchannelSender(issuer, key, backchannelTargets, resolved.logger, stopping.signal);
  const registry = new SessionRegistry(store, backchannel, resolved);

  const provider = new Provider(issuer, providerConfiguration(resolved, key, store, (sub) => registry.sessionExpiryOf(sub)));
  provider.proxy = false;
  const onlineAudiences = [...resolved.apis.values()].filter((api) => api.allowOnlineAccess).map((api) => api.audience);
  patchModels(provider, onlineAudiences);
  recordAccessTokens(provider, accessTokens);
  provider.on('server_error', (_ctx: unknown, error: Error) => {
    resolved.logger.warn(`local-auth0: server error: ${error.stack ?? error.message}`);
  });

  const ephemeralAudiences = new Set(
    [...resolved.apis.values()].filter((api) => api.allowOnlineAccessWithEphemeralSessions).map((api) => api.audience),
  );
  const services = { registry, counters, faults, ephemeralAudiences, clients: resolved.clients, onlineAudiences, store, stopped: stopping.signal };
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
        stopping.abort();
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
