/**
 * The tenant's settings for this BFF, as the Management API shows them: its API allows online access (without
 * ephemeral sessions), its application allows the grants and registers the URLs the BFF uses, and back-channel
 * logout reaches the BFF for every way an Auth0 session ends. Pure functions of what was read.
 */
import type { BffConfig } from '../config/validate.js';
import { findingsOf, type Finding } from './finding.js';
import type { Json } from './management-client.js';
import type { ProbeResult } from './token-probes.js';

const tenant = findingsOf('tenant');
const APP_SETTINGS = 'Dashboard > Applications > Applications > your application > Settings';
const GRANTS = ['authorization_code', 'refresh_token'] as const;
/** The session ends that must reach the BFF (`rp-logout` and `idp-logout` are always on). */
const INITIATORS = ['session-expired', 'session-revoked', 'password-changed', 'account-deleted'];

/**
 * The audiences the BFF asks users' tokens for (through the ORT): its default one and each API's whose token policy
 * uses the user's token. APIs with the application's own token (`client`) or none need no online access.
 */
export function audiencesOf(config: BffConfig): string[] {
  const userApis = config.apis.filter((api) => api.token === 'user' || api.token === 'user-or-none' || api.token === 'user-or-client');
  return [...new Set([config.audience, ...userApis.map((api) => api.audience)].filter((a): a is string => a !== undefined))];
}

/** Each audience has an API that allows online access, without ephemeral sessions. */
/** The API's access token lifetime in words (Auth0's default is 24 hours). */
function lifetimeOf(api: Json): string {
  const seconds = api.token_lifetime;
  if (typeof seconds !== 'number') return 'its token lifetime';
  return seconds >= 3600 && seconds % 3600 === 0 ? `after ${seconds / 3600} h` : `after ${seconds} s`;
}

export function checkApis(audiences: readonly string[], resourceServers: readonly Json[]): Finding[] {
  return audiences.flatMap((audience) => {
    const api = resourceServers.find((server) => server.identifier === audience);
    const settings = `Dashboard > Applications > APIs > ${typeof api?.name === 'string' ? api.name : audience} > Settings`;
    if (!api) {
      return [
        tenant.fail('api.exists', `The tenant has no API with the identifier ${audience}`, {
          detail: 'Auth0 refuses a login for an unknown audience ("Service not found").',
          fix: `Create it (Dashboard > Applications > APIs > Create API, identifier ${audience}), or set AUDIENCE to the identifier of an existing API.`,
        }),
      ];
    }
    const online = api.allow_online_access === true
      ? tenant.ok('api.online-access', `The API ${audience} allows online access`)
      : tenant.fail('api.online-access', `The API ${audience} does not allow online access (allow_online_access)`, {
          detail: `Auth0 then issues no Online Refresh Token at login: every BFF session ends when its first access token expires (${lifetimeOf(api)}).`,
          fix: `${settings}: turn on "Allow Online Access" (or PATCH /api/v2/resource-servers/{id} {"allow_online_access": true}).`,
        });
    const ephemeral = api.allow_online_access_with_ephemeral_sessions === true
      ? tenant.fail('api.ephemeral-sessions', `The API ${audience} allows online access with ephemeral sessions (allow_online_access_with_ephemeral_sessions)`, {
          detail: 'Auth0 then issues the ORT but refuses it with invalid_grant at its first exchange: users are logged out when their first access token expires.',
          fix: `${settings}: turn off "Allow for Ephemeral Sessions" (or PATCH /api/v2/resource-servers/{id} {"allow_online_access_with_ephemeral_sessions": false}).`,
        })
      : tenant.ok('api.ephemeral-sessions', `The API ${audience} does not use ephemeral sessions for online access`);
    return [online, ephemeral];
  });
}

/**
 * The grant types the BFF uses: from the application's settings when the Management API could be read, else
 * from how the token endpoint answered the made-up grants. Either way it is one finding.
 */
export function checkGrantTypes(client: Json | null | undefined, probed: ProbeResult['grants']): Finding | undefined {
  let missing: string[];
  let section: 'tenant' | 'client';
  if (client) {
    const granted = Array.isArray(client.grant_types) ? client.grant_types : [];
    missing = GRANTS.filter((grant) => !granted.includes(grant));
    section = 'tenant';
  } else if (probed && (probed.authorization_code !== 'unknown' || probed.refresh_token !== 'unknown')) {
    missing = GRANTS.filter((grant) => probed[grant] === 'not_allowed');
    section = 'client';
  } else {
    return undefined;
  }
  const { ok, fail } = findingsOf(section);
  if (missing.length === 0) return ok('client.grant-types', 'The application allows the authorization_code and refresh_token grants');
  return fail('client.grant-types', `The application does not allow the ${missing.join(' and ')} grant`, {
    detail: missing.includes('refresh_token')
      ? 'Without refresh_token, Auth0 issues no ORT and refuses its exchange: every BFF session ends when its first access token expires.'
      : 'Without authorization_code, no login can complete.',
    fix: `${APP_SETTINGS} > Advanced Settings > Grant Types: tick ${missing.map((g) => (g === 'refresh_token' ? '"Refresh Token"' : '"Authorization Code"')).join(' and ')}.`,
  });
}

/** Glob match for Auth0's subdomain wildcards (`https://*.example.com/callback`). */
function registered(list: unknown, url: string): boolean {
  if (!Array.isArray(list)) return false;
  return list.some((entry) => {
    if (typeof entry !== 'string') return false;
    if (entry === url) return true;
    if (!entry.includes('*')) return false;
    const pattern = entry.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[^./]+');
    return new RegExp(`^${pattern}$`).test(url);
  });
}

/** The URLs the BFF sends to Auth0 or receives from it, and the back-channel logout initiators. */
export function checkClientUrls(config: BffConfig, client: Json, endSessionAdvertised: boolean): Finding[] {
  const findings: Finding[] = [];
  if (config.routes.callback !== undefined) {
    const callback = new URL(config.routes.callback, config.baseURL).href;
    findings.push(
      registered(client.callbacks, callback)
        ? tenant.ok('client.callback-url', `Callback URL registered: ${callback}`)
        : tenant.fail('client.callback-url', `The callback URL ${callback} is not in Allowed Callback URLs`, {
            detail: 'Auth0 refuses every login that would return there ("Callback URL mismatch").',
            fix: `${APP_SETTINGS} > Allowed Callback URLs: add ${callback}.`,
          }),
    );
  }
  if (config.logout.idpLogout && endSessionAdvertised) {
    const returnTo = new URL(config.logout.returnTo, config.baseURL).href;
    findings.push(
      registered(client.allowed_logout_urls, returnTo)
        ? tenant.ok('client.logout-url', `Logout URL registered: ${returnTo}`)
        : tenant.fail('client.logout-url', `The logout return URL ${returnTo} is not in Allowed Logout URLs`, {
            detail: 'Auth0 shows an error page instead of sending the user back after logout.',
            fix: `${APP_SETTINGS} > Allowed Logout URLs: add ${returnTo}.`,
          }),
    );
  }
  if (config.routes.backchannelLogout !== undefined) findings.push(...checkBackchannel(config, client));
  return findings;
}

function checkBackchannel(config: BffConfig, client: Json): Finding[] {
  const uri = new URL(config.routes.backchannelLogout!, config.baseURL).href;
  const oidcLogout = (client.oidc_logout ?? {}) as { backchannel_logout_urls?: unknown; backchannel_logout_initiators?: { mode?: unknown; selected_initiators?: unknown } };
  const urls = Array.isArray(oidcLogout.backchannel_logout_urls) ? oidcLogout.backchannel_logout_urls : [];
  if (!urls.includes(uri)) {
    const other = urls.length > 0 ? ` (registered: ${urls.join(', ')})` : '';
    return [
      tenant.warn('client.backchannel-url', `The back-channel logout URI ${uri} is not registered${other}`, {
        detail: 'Auth0 cannot tell the BFF that a session ended (admin revocation, expiry, logout in another app): the BFF finds out at its next ORT exchange, when the access token expires.',
        fix: config.baseURL.protocol === 'https:'
          ? `${APP_SETTINGS} > OpenID Connect Back-Channel Logout > Back-Channel Logout URI: ${uri} (or PATCH /api/v2/clients/{id} {"oidc_logout": {"backchannel_logout_urls": ["${uri}"]}}).`
          : 'Auth0 accepts only a public https URI: register it for the deployed BFF (its https BASE_URL).',
      }),
    ];
  }
  const findings = [tenant.ok('client.backchannel-url', `Back-channel logout URI registered: ${uri}`)];
  const initiators = oidcLogout.backchannel_logout_initiators;
  const selected = Array.isArray(initiators?.selected_initiators) ? initiators.selected_initiators : [];
  const missing = initiators?.mode === 'all' ? [] : INITIATORS.filter((initiator) => !selected.includes(initiator));
  findings.push(
    missing.length === 0
      ? tenant.ok('client.backchannel-initiators', initiators?.mode === 'all' ? 'Back-channel logout for every way a session ends (initiators: all)' : `Back-channel logout initiators: ${selected.join(', ')}`)
      : tenant.warn('client.backchannel-initiators', `Back-channel logout is not sent when a session ends by: ${missing.join(', ')}`, {
          detail: 'Those session ends reach the BFF only at its next ORT exchange, when the access token expires.',
          fix: `${APP_SETTINGS} > OpenID Connect Back-Channel Logout > Back-Channel Logout Initiators: select "All" (or PATCH /api/v2/clients/{id} {"oidc_logout": {"backchannel_logout_urls": ["${uri}"], "backchannel_logout_initiators": {"mode": "all"}}}).`,
        }),
  );
  return findings;
}
