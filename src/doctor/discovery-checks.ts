/**
 * The issuer's discovery document (`/.well-known/openid-configuration`): reachable, for the issuer the BFF is
 * configured with, and listing every endpoint the BFF uses.
 */
import { findingsOf, type Finding } from './finding.js';
import { describeFailure, getJson, type DoctorHttp } from './http.js';
import { issuerRefusesAlgorithm } from '../dpop/token-endpoint.js';

const { ok, warn, fail } = findingsOf('discovery');

/** The metadata fields the BFF uses, what it uses them for, and how bad their absence is. */
const ENDPOINTS: ReadonlyArray<{ field: string; name: string; use: string; missing: 'fail' | 'warn'; fix?: string }> = [
  { field: 'authorization_endpoint', name: 'Authorization endpoint', use: 'logins start there', missing: 'fail' },
  { field: 'token_endpoint', name: 'Token endpoint', use: 'codes and ORTs are exchanged there', missing: 'fail' },
  { field: 'jwks_uri', name: 'JWKS', use: 'ID tokens and back-channel logout tokens are verified with its keys', missing: 'fail' },
  { field: 'revocation_endpoint', name: 'Revocation endpoint', use: 'logout revokes the ORT there, which ends the Auth0 session', missing: 'warn' },
  {
    field: 'end_session_endpoint',
    name: 'End-session endpoint',
    use: 'logout sends the browser there (RP-initiated logout), else only back to the app',
    missing: 'warn',
    fix: 'Dashboard > Settings > Advanced > Login and Logout: turn on "RP-Initiated Logout End Session Endpoint Discovery".',
  },
];

/** `https://TENANT/` -> `https://TENANT/.well-known/openid-configuration` (OpenID Connect Discovery 1.0 §4). */
export function discoveryUrl(issuer: URL): URL {
  return new URL(`${issuer.href.replace(/\/?$/, '/')}.well-known/openid-configuration`);
}

/** The finding for a discovery URL that answers with a redirect, which the BFF's client does not follow. */
function redirected(url: URL, status: number, location: string | undefined): Finding {
  const target = location !== undefined && URL.canParse(location, url) ? new URL(location, url).href : undefined;
  return fail('discovery.document', `Cannot read ${url.href}: it redirects (HTTP ${status})${target ? ` to ${target}` : ''}`, {
    detail: 'The BFF\'s client follows no redirect for the discovery document: it cannot load it, so logins wait and /healthz answers 503.',
    fix: 'Set ISSUER_URL / AUTH0_DOMAIN to the issuer exactly, as its discovery document names it (the tenant\'s domain or its custom domain), so that the document is served there without a redirect.',
  });
}

/** Loads and checks the discovery document of `issuer`; `metadata` is there when it could be read. */
export async function checkDiscovery(issuer: URL, http: DoctorHttp): Promise<{ findings: Finding[]; metadata?: Record<string, unknown> }> {
  const url = discoveryUrl(issuer);
  let metadata: Record<string, unknown>;
  try {
    // Not followed: the BFF's client (openid-client) follows no redirect for this document and cannot start
    // behind one, so a document the doctor reached through one would be a check passed for nothing.
    const { status, body, location } = await getJson(url, {}, http, { redirect: 'manual' });
    if (status >= 300 && status < 400) return { findings: [redirected(url, status, location)] };
    if (status !== 200) throw new Error(`HTTP ${status}`);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Error('the answer is not a JSON object');
    metadata = body as Record<string, unknown>;
  } catch (error) {
    return {
      findings: [
        fail('discovery.document', `Cannot read ${url.href}: ${describeFailure(error)}`, {
          detail: 'The BFF loads this document at startup; until it can, logins wait and /healthz answers 503.',
          fix: 'Check ISSUER_URL / AUTH0_DOMAIN (your tenant\'s domain or custom domain), and that this machine reaches it over https.',
        }),
      ],
    };
  }

  const findings = [ok('discovery.document', `Read ${url.href}`)];
  if (metadata.issuer === issuer.href) {
    findings.push(ok('discovery.issuer', `Issuer ${issuer.href}`));
  } else {
    findings.push(
      fail('discovery.issuer', `The document names the issuer ${JSON.stringify(metadata.issuer)}, not ${issuer.href}`, {
        detail: 'Tokens carry the issuer exactly as the document names it; the BFF refuses a document of another issuer.',
        fix: typeof metadata.issuer === 'string' && URL.canParse(metadata.issuer)
          ? `Set ISSUER_URL to ${metadata.issuer} exactly (a custom domain is its own issuer).`
          : 'Point ISSUER_URL at an Auth0 tenant or another OpenID Connect issuer.',
      }),
    );
  }

  for (const endpoint of ENDPOINTS) {
    const value = metadata[endpoint.field];
    if (typeof value === 'string' && URL.canParse(value)) {
      findings.push(ok(`discovery.${endpoint.field}`, `${endpoint.name}: ${value}`));
      continue;
    }
    const finding = endpoint.missing === 'fail' ? fail : warn;
    findings.push(
      finding(`discovery.${endpoint.field}`, `The document has no ${endpoint.field}`, {
        detail: `The BFF needs it: ${endpoint.use}.`,
        fix: endpoint.fix ?? 'Point ISSUER_URL at an Auth0 tenant (or an issuer that offers this endpoint).',
      }),
    );
  }

  if (metadata.backchannel_logout_supported === true) {
    findings.push(ok('discovery.backchannel-logout', 'Back-channel logout supported'));
  } else {
    findings.push(
      warn('discovery.backchannel-logout', 'The issuer does not say it supports back-channel logout (backchannel_logout_supported)', {
        detail: 'Without it the BFF learns that an Auth0 session ended only at its next ORT exchange.',
        fix: 'Auth0 supports it on every tenant: check that ISSUER_URL is the tenant.',
      }),
    );
  }
  return { findings, metadata };
}

/**
 * With a DPoP key: the issuer signs off on the key's algorithm (`dpop_signing_alg_values_supported`), else it
 * refuses every proof, and every login fails at the code exchange. An issuer that lists no algorithms says nothing.
 */
export function checkDPoPAlgorithm(metadata: Record<string, unknown>, alg: string): Finding {
  const supported = metadata.dpop_signing_alg_values_supported;
  if (!Array.isArray(supported)) return ok('discovery.dpop-algorithm', `DPoP proofs signed with ${alg} (the issuer lists no algorithms)`);
  if (!issuerRefusesAlgorithm(metadata as Parameters<typeof issuerRefusesAlgorithm>[0], alg)) return ok('discovery.dpop-algorithm', `The issuer accepts DPoP proofs signed with ${alg}`);
  return fail('discovery.dpop-algorithm', `The issuer does not accept DPoP proofs signed with ${alg} (it lists ${supported.filter((a) => typeof a === 'string').join(', ') || 'none'})`, {
    detail: 'It refuses every token request of the BFF: every login would fail at the code exchange.',
    fix: 'Give DPOP_PRIVATE_KEY a key of an algorithm the issuer lists: a P-256 key (ES256) for Auth0.',
  });
}
