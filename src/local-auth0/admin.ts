/**
 * The admin handle: what a test (or the demo) can see and do to the emulated tenant, the way an Auth0
 * administrator, an Action or an outage would.
 */
import type { Counters, TokenEndpointFaults } from './admin-state.js';
import type { BackchannelSender } from './backchannel.js';
import type { ManagementTokens } from './management-api.js';
import { BACKCHANNEL_LOGOUT_INITIATORS } from './options.js';
import { isOnlineRefreshToken } from './provider-config.js';
import type { SessionRegistry } from './sessions.js';
import type { SigningKey } from './signing-key.js';
import type { MemoryStore } from './store.js';
import type { IssuedToken, LocalAuth0Admin } from './types.js';

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
      // A wrong type would match no session and end nothing, which a test would read as "no session to end".
      for (const field of ['sid', 'sub'] as const) {
        const value: unknown = selector[field];
        if (value !== undefined && (typeof value !== 'string' || value.length === 0)) {
          throw new TypeError(`"selector.${field}" must be a non-empty string`);
        }
      }
      if (typeof options !== 'object' || options === null) throw new TypeError('"options" must be an object');
      if (options.backchannel !== undefined && typeof options.backchannel !== 'boolean') {
        throw new TypeError('"options.backchannel" must be a boolean');
      }
      const initiator = options.initiator ?? 'session-revoked';
      if (!BACKCHANNEL_LOGOUT_INITIATORS.includes(initiator)) {
        throw new TypeError(`"options.initiator" must be one of ${BACKCHANNEL_LOGOUT_INITIATORS.join(', ')}`);
      }
      return registry.endMatching(selector, options.backchannel ? initiator : false);
    },
    failTokenEndpoint: (mode, options) => faults.set(mode, options),
    reset: () => faults.clear(),
    setSessionExpiry(sub, sessionExpiry) {
      if (typeof sub !== 'string' || sub.length === 0) throw new TypeError('"sub" must be a non-empty string');
      if (sessionExpiry !== undefined && (!Number.isFinite(sessionExpiry) || sessionExpiry <= 0)) throw new TypeError('"sessionExpiry" must be epoch seconds, or undefined');
      registry.setSessionExpiry(sub, sessionExpiry);
    },
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
