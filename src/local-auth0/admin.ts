/**
 * The admin handle: what a test (or the demo) can see and do to the emulated tenant, the way an Auth0
 * administrator, an Action or an outage would.
 */
import type { Counters, IssuedToken, LocalAuth0Counts, TokenEndpointFailure, TokenEndpointFaults } from './admin-state.js';
import type { BackchannelDelivery, BackchannelSender } from './backchannel.js';
import type { ManagementScope, ManagementTokens } from './management-api.js';
import { BACKCHANNEL_LOGOUT_INITIATORS, type BackchannelLogoutInitiator } from './options.js';
import { isOnlineRefreshToken } from './provider-config.js';
import type { LocalAuth0Session, SessionRegistry } from './sessions.js';
import type { SigningKey } from './signing-key.js';
import type { MemoryStore } from './store.js';

/** Control of a running emulator. Times are epoch seconds. */
export interface LocalAuth0Admin {
  /** Requests counted since the start or the last {@link LocalAuth0Admin.resetCounts}. */
  counts(): LocalAuth0Counts;
  resetCounts(): void;
  /** The live Auth0 sessions (idle and absolute lifetimes measured with the `clock` option). */
  sessions(): LocalAuth0Session[];
  /**
   * Ends the matching sessions as an Auth0 administrator or an Action (`api.session.revoke`) would: their ORTs
   * die and SSO ends. With `backchannel: true` (default false) logout tokens are sent to the sessions'
   * applications subscribed to `initiator` (default `session-revoked`) and awaited. Resolves to the number of
   * sessions ended.
   */
  endSession(
    selector: { sid?: string; sub?: string },
    options?: { backchannel?: boolean; initiator?: BackchannelLogoutInitiator },
  ): Promise<number>;
  /**
   * Makes `/oauth/token` fail until {@link LocalAuth0Admin.reset} (or for `times` requests): `{ status: 503 }`,
   * `{ status: 429, retryAfter }` (with `Retry-After` and a `too_many_requests` body), `{ delayMs }` (the real
   * answer, late) or any `{ status, body }`.
   */
  failTokenEndpoint(mode: TokenEndpointFailure, options?: { times?: number }): void;
  /** Clears the failure modes. */
  reset(): void;
  /** The tokens issued and still usable (access tokens: all issued, until they expire), without their values. */
  tokens(): IssuedToken[];
  /** Every back-channel logout delivery attempted. */
  backchannelDeliveries(): BackchannelDelivery[];
  /** Signs `claims` as given with the tenant's RS256 key (header `{ alg, kid, ...header }`), e.g. to forge logout tokens. */
  sign(claims: object, header?: object): Promise<string>;
  /**
   * A bearer token for the Management API endpoints, with `scopes` (default `read:clients` and
   * `read:resource_servers`), as an administrator would copy from the Dashboard's API Explorer.
   */
  issueManagementToken(options?: { scopes?: ManagementScope[] }): string;
}

interface AdminServices {
  store: MemoryStore;
  registry: SessionRegistry;
  counters: Counters;
  faults: TokenEndpointFaults;
  backchannel: BackchannelSender;
  accessTokens: IssuedToken[];
  key: SigningKey;
  managementTokens: ManagementTokens;
}

function audienceOf(resource: unknown): string | undefined {
  if (typeof resource === 'string') return resource;
  return Array.isArray(resource) && typeof resource[0] === 'string' ? resource[0] : undefined;
}

/** Builds the admin handle over the emulator's services. */
export function createAdmin(services: AdminServices): LocalAuth0Admin {
  const { store, registry, counters, faults, backchannel, accessTokens, key, managementTokens } = services;

  function storedTokens(model: 'RefreshToken' | 'AuthorizationCode', kind: IssuedToken['kind']): IssuedToken[] {
    return store
      .entries(model)
      .filter(([, payload]) => !payload.consumed)
      .filter(([, payload]) => !payload.expiresWithSession || registry.isLive(payload.sessionUid))
      .map(([, payload]) => {
        const audience = audienceOf(payload.resource);
        return {
          kind,
          clientId: payload.clientId ?? '',
          sub: payload.accountId ?? '',
          ...(payload.sid ? { sid: payload.sid } : {}),
          ...(audience ? { audience } : {}),
          online: isOnlineRefreshToken(payload),
          expiresAt: payload.exp ?? 0,
        };
      });
  }

  return {
    counts: () => ({
      token: structuredClone(counters.token),
      revocations: counters.revocations,
      backchannelSent: backchannel.sent,
      endSession: counters.endSession,
    }),
    resetCounts() {
      counters.reset();
      backchannel.sent = 0;
    },
    sessions: () => registry.list(),
    async endSession(selector, options = {}) {
      if (typeof selector !== 'object' || selector === null || (selector.sid === undefined && selector.sub === undefined)) {
        throw new TypeError('"selector" must give "sid" or "sub"');
      }
      const initiator = options.initiator ?? 'session-revoked';
      if (!BACKCHANNEL_LOGOUT_INITIATORS.includes(initiator)) {
        throw new TypeError(`"options.initiator" must be one of ${BACKCHANNEL_LOGOUT_INITIATORS.join(', ')}`);
      }
      return registry.endMatching(selector, options.backchannel === true ? initiator : false);
    },
    failTokenEndpoint: (mode, options) => faults.set(mode, options),
    reset: () => faults.clear(),
    tokens() {
      const now = Math.floor(Date.now() / 1000);
      return [
        ...accessTokens.filter((token) => token.expiresAt > now).map((token) => ({ ...token })),
        ...storedTokens('RefreshToken', 'refresh_token'),
        ...storedTokens('AuthorizationCode', 'authorization_code'),
      ];
    },
    backchannelDeliveries: () => backchannel.deliveries.map((delivery) => ({ ...delivery })),
    sign: (claims, header) => key.sign(claims, header),
    issueManagementToken: (options = {}) => managementTokens.issue(options.scopes),
  };
}
