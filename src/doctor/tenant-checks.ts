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
export const APP_SETTINGS = 'Dashboard > Applications > Applications > your application > Settings';
const GRANTS = ['authorization_code', 'refresh_token'] as const;
/**
 * The session ends that must reach the BFF (`rp-logout` and `idp-logout` are always on): every other initiator
 * Auth0 has (Back-Channel Logout Initiators; `email-identifier-changed` ends the sessions of a user whose email
 * identifier changes).
 */
const INITIATORS = ['session-expired', 'session-revoked', 'password-changed', 'account-deleted', 'email-identifier-changed'];

/**
 * The audiences the BFF asks users' tokens for (through the ORT): its default one and each API's whose token policy
 * uses the user's token. APIs with the application's own token (`client`) or none need no online access.
 */
export function audiencesOf(config: BffConfig): string[] {
  const userApis = config.apis.filter((api) => api.token === 'user' || api.token === 'user-or-none' || api.token === 'user-or-client');
  return [...new Set([config.audience, ...userApis.map((api) => api.audience)].filter((a): a is string => a !== undefined))];
}

/** The API's access token lifetime in words (Auth0's default is 24 hours). */
function lifetimeOf(api: Json): string {
  const seconds = api.token_lifetime;
  if (typeof seconds !== 'number') return 'its token lifetime';
  return seconds >= 3600 && seconds % 3600 === 0 ? `after ${seconds / 3600} h` : `after ${seconds} s`;
}

const settingsOf = (api: Json | undefined, audience: string) =>
  `Dashboard > Applications > APIs > ${typeof api?.name === 'string' ? api.name : audience} > Settings`;

/**
 * Whether the BFF's tokens are sender-constrained: `off` without a DPoP key, `on` with one, `required` when the
 * application also requires it (require_proof_of_possession).
 */
export type SenderConstraining = 'off' | 'on' | 'required';

/**
 * Each audience has an API that allows online access, without ephemeral sessions, and binds its tokens with DPoP
 * when the BFF has a DPoP key. `resourceServers` undefined: they could not be read, and `unread` says why; each
 * check is then listed as not checked.
 */
export function checkApis(
  audiences: readonly string[],
  resourceServers: readonly Json[] | undefined,
  unread: string,
  dpop: SenderConstraining = 'off',
): Finding[] {
  return audiences.flatMap((audience) => {
    const notChecked = (why: string) => [
      tenant.skip('api.online-access', `Online access of the API ${audience} not checked: ${why}`),
      tenant.skip('api.ephemeral-sessions', `Ephemeral sessions of the API ${audience} not checked: ${why}`),
      ...(dpop === 'off' ? [] : [tenant.skip('api.dpop', `DPoP of the API ${audience} not checked: ${why}`)]),
    ];
    if (resourceServers === undefined) return notChecked(unread);
    const api = resourceServers.find((server) => server.identifier === audience);
    const settings = settingsOf(api, audience);
    if (!api) {
      return [
        tenant.fail('api.exists', `The tenant has no API with the identifier ${audience}`, {
          detail: 'Auth0 refuses a login for an unknown audience ("Service not found").',
          fix: `Create it (Dashboard > Applications > APIs > Create API, identifier ${audience}), or set AUDIENCE to the identifier of an existing API.`,
        }),
        ...notChecked('the tenant has no such API'),
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
    return dpop === 'off' ? [online, ephemeral] : [online, ephemeral, checkApiDPoP(audience, api, settings, dpop)];
  });
}

/**
 * Auth0 binds a token to the BFF's key only for an API whose sender-constraining method is DPoP; for another API it
 * answers the BFF's proof with a Bearer token, or, when the application requires sender-constraining, with no
 * token at all (Auth0's "Configure Sender Constraining").
 */
function checkApiDPoP(audience: string, api: Json, settings: string, dpop: 'on' | 'required'): Finding {
  const pop = (api.proof_of_possession ?? {}) as { mechanism?: unknown; required?: unknown };
  if (pop.mechanism === 'dpop') {
    return tenant.ok('api.dpop', `The API ${audience} binds its tokens with DPoP (${pop.required === true ? 'required' : 'allowed'})`);
  }
  const seen = `proof_of_possession: ${typeof pop.mechanism === 'string' ? pop.mechanism : 'none'}`;
  const fix = `${settings} > Token Sender-Constraining: choose DPoP (or PATCH /api/v2/resource-servers/{id} {"proof_of_possession": {"mechanism": "dpop", "required": false}}).`;
  return dpop === 'required'
    ? tenant.fail('api.dpop', `The API ${audience} does not use DPoP (${seen}), and the application requires sender-constrained tokens`, {
        detail: 'Auth0 then issues no token for this API to the application: every login fails.',
        fix,
      })
    : tenant.warn('api.dpop', `The API ${audience} does not use DPoP (${seen}): the BFF would get Bearer tokens for it`, {
        detail: 'The BFF sends a DPoP proof with each token request, but Auth0 binds the tokens only for an API that uses DPoP: these would work for whoever holds them.',
        fix,
      });
}

/**
 * The application's own setting for sender-constrained tokens: reported with a DPoP key; without one, a finding
 * only when the application requires them, as Auth0 then refuses every token request of the BFF.
 */
export function checkApplicationDPoP(hasKey: boolean, client: Json | undefined, unread: string): Finding[] {
  if (client === undefined) return hasKey ? [tenant.skip('client.dpop', `Sender-constraining of the application not checked: ${unread}`)] : [];
  const required = client.require_proof_of_possession === true;
  if (hasKey) {
    return [
      required
        ? tenant.ok('client.dpop', 'The application requires sender-constrained tokens (require_proof_of_possession): the BFF sends a DPoP proof with each token request')
        : tenant.ok('client.dpop', 'The BFF sends a DPoP proof with each token request; the application does not require one (require_proof_of_possession is off)'),
    ];
  }
  if (!required) return [];
  return [
    tenant.fail('client.dpop', 'The application requires sender-constrained tokens (require_proof_of_possession), but the BFF has no DPoP key', {
      detail: 'Auth0 then refuses every token request without a proof: every login fails at the code exchange.',
      fix: `Give the BFF a DPoP key (DPOP_PRIVATE_KEY, or the dpop.key option of createBff), or turn off "Require Token Sender-Constraining" in ${APP_SETTINGS}.`,
    }),
  ];
}

/**
 * The grant types the BFF uses: from the application's settings when the Management API could be read, else
 * from how the token endpoint answered the made-up grants. Either way it is one finding; a grant the token endpoint
 * neither allowed nor refused (a 429, a 5xx, no answer) is not confirmed, never counted as allowed.
 */
export function checkGrantTypes(client: Json | null | undefined, probed: ProbeResult['grants']): Finding | undefined {
  let missing: string[];
  let unconfirmed: string[] = [];
  let section: 'tenant' | 'client';
  if (client) {
    const granted = Array.isArray(client.grant_types) ? client.grant_types : [];
    missing = GRANTS.filter((grant) => !granted.includes(grant));
    section = 'tenant';
  } else if (probed && (probed.authorization_code !== 'unknown' || probed.refresh_token !== 'unknown')) {
    missing = GRANTS.filter((grant) => probed[grant] === 'not_allowed');
    unconfirmed = GRANTS.filter((grant) => probed[grant] === 'unknown');
    section = 'client';
  } else {
    return undefined;
  }
  const { ok, warn, fail } = findingsOf(section);
  if (missing.length > 0) {
    return fail('client.grant-types', `The application does not allow the ${missing.join(' and ')} grant`, {
      detail: missing.includes('refresh_token')
        ? 'Without refresh_token, Auth0 issues no ORT and refuses its exchange: every BFF session ends when its first access token expires.'
        : 'Without authorization_code, no login can complete.',
      fix: `${APP_SETTINGS} > Advanced Settings > Grant Types: tick ${missing.map((g) => (g === 'refresh_token' ? '"Refresh Token"' : '"Authorization Code"')).join(' and ')}.`,
    });
  }
  if (unconfirmed.length > 0) {
    return warn('client.grant-types', `The ${unconfirmed.join(' and ')} grant is not confirmed: the token endpoint ${probed?.seen ?? 'gave no verdict'}`, {
      detail: 'Auth0 neither accepted nor refused the made-up grant: whether the application allows it is not known.',
      fix: 'Run the doctor again; with AUTH0_MANAGEMENT_TOKEN it reads the grant types from the application\'s settings instead.',
    });
  }
  return ok('client.grant-types', 'The application allows the authorization_code and refresh_token grants');
}

/**
 * Each API the BFF gets the user's tokens for, other than the login's `audience`, is in the application's refresh
 * token policies (Multi-Resource Refresh Token): else Auth0 answers its exchanges with a token for the login's
 * audience, without an error, which the BFF refuses (500 configuration_error on every call to that API). Without
 * `audience`, the login's audience is the tenant's default API, which the doctor does not know: not checked.
 */
export function checkRefreshTokenPolicies(config: BffConfig, client: Json | undefined, unread: string): Finding[] {
  const others = audiencesOf(config).filter((audience) => audience !== config.audience);
  if (others.length === 0) return [];
  if (config.audience === undefined) {
    return [tenant.skip('client.refresh-token-policies', 'Refresh token policies not checked: AUDIENCE is not set, so the login asks for the tenant\'s default API, which the doctor does not know')];
  }
  if (client === undefined) return [tenant.skip('client.refresh-token-policies', `Refresh token policies not checked: ${unread}`)];
  const policies = (client.refresh_token as { policies?: unknown } | null | undefined)?.policies;
  const covered = new Set(Array.isArray(policies) ? policies.map((policy) => (policy as { audience?: unknown } | null)?.audience).filter((a) => typeof a === 'string') : []);
  const missing = others.filter((audience) => !covered.has(audience));
  if (missing.length === 0) {
    return [tenant.ok('client.refresh-token-policies', `The application's refresh token policies cover ${others.join(', ')}`)];
  }
  const example = JSON.stringify({ refresh_token: { policies: [...(Array.isArray(policies) ? policies : []), ...missing.map((audience) => ({ audience, scope: ['<the scopes the BFF asks for>'] }))] } });
  return [tenant.fail('client.refresh-token-policies', `The application's refresh token policies do not cover ${missing.join(', ')}`, {
    detail: `Auth0 answers an exchange for an API its policies leave out with a token for ${config.audience}, without an error; the BFF refuses it, and every call to ${missing.length === 1 ? 'that API' : 'those APIs'} answers 500 configuration_error.`,
    fix: `Add ${missing.length === 1 ? 'it' : 'them'} with the Management API: PATCH /api/v2/clients/${config.clientId} ${example} (the policies also name the scopes each API may be asked for).`,
  })];
}

/**
 * Whether `url` is in `list`: the same string, or matching an entry with Auth0's subdomain wildcard. Auth0 honours
 * one `*` in the left-most label of an http(s) host with at least two labels after it (`https://*.example.com/cb`,
 * also `https://pr-*.example.com/cb`), standing for part of exactly one label; never `https://*.com`, never in a
 * path. Scheme, port and path must still match exactly: a wildcard entry that accepted more would make a check
 * pass that Auth0 fails with "Callback URL mismatch".
 */
function registered(list: unknown, url: string): boolean {
  if (!Array.isArray(list)) return false;
  return list.some((entry) => typeof entry === 'string' && (entry === url || wildcardMatches(entry, url)));
}

function wildcardMatches(entry: string, url: string): boolean {
  // URL parsing keeps a `*` in a host name; it is then in the host or nowhere that counts.
  if (entry.split('*').length !== 2 || !URL.canParse(entry) || !URL.canParse(url)) return false;
  const pattern = new URL(entry);
  const target = new URL(url);
  if (pattern.protocol !== 'https:' && pattern.protocol !== 'http:') return false;
  if (pattern.username || pattern.password) return false;
  const [first = '', ...parent] = pattern.hostname.split('.');
  if (!first.includes('*') || parent.length < 2 || parent.includes('')) return false;
  const [prefix = '', suffix = ''] = first.split('*');
  const [label = '', ...targetParent] = target.hostname.split('.');
  const rest = (u: URL) => `${u.pathname}${u.search}${u.hash}`;
  return (
    target.protocol === pattern.protocol &&
    target.port === pattern.port &&
    rest(target) === rest(pattern) &&
    targetParent.join('.') === parent.join('.') &&
    label.length > prefix.length + suffix.length &&
    label.startsWith(prefix) &&
    label.endsWith(suffix) &&
    /^[a-z0-9-]+$/.test(label)
  );
}

/**
 * The URLs the BFF sends to Auth0 or receives from it, and the back-channel logout initiators. `client`
 * undefined: the application's settings could not be read, and `unread` says why; each check that applies is
 * then listed as not checked.
 */
export function checkClientUrls(config: BffConfig, client: Json | undefined, endSessionAdvertised: boolean, unread: string): Finding[] {
  const findings: Finding[] = [];
  if (config.routes.callback !== undefined) {
    const callback = new URL(config.routes.callback, config.baseURL).href;
    findings.push(
      client === undefined ? tenant.skip('client.callback-url', `Callback URL ${callback} not checked: ${unread}`)
      : registered(client.callbacks, callback)
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
      client === undefined ? tenant.skip('client.logout-url', `Logout URL ${returnTo} not checked: ${unread}`)
      : registered(client.allowed_logout_urls, returnTo)
        ? tenant.ok('client.logout-url', `Logout URL registered: ${returnTo}`)
        : tenant.fail('client.logout-url', `The logout return URL ${returnTo} is not in Allowed Logout URLs`, {
            detail: 'Auth0 shows an error page instead of sending the user back after logout.',
            fix: `${APP_SETTINGS} > Allowed Logout URLs: add ${returnTo}.`,
          }),
    );
  }
  if (config.routes.backchannelLogout !== undefined) {
    if (client !== undefined) {
      findings.push(...checkBackchannel(config, client));
    } else {
      const uri = new URL(config.routes.backchannelLogout, config.baseURL).href;
      findings.push(
        tenant.skip('client.backchannel-url', `Back-channel logout URI ${uri} not checked: ${unread}`),
        tenant.skip('client.backchannel-initiators', `Back-channel logout initiators not checked: ${unread}`),
      );
    }
  }
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
