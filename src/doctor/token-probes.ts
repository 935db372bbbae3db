/**
 * The client's credentials, checked without a user: the BFF's own token client (openid-client, as configured)
 * sends requests that must fail, a made-up authorization code and a made-up refresh token. How they fail tells
 * whether the credentials were accepted: Auth0 authenticates the client first, so `invalid_grant` means "client
 * fine, grant unknown", 401 `access_denied` (or `invalid_client`) means "client refused", and 403
 * `unauthorized_client` means "client fine, grant type not allowed for it".
 */
import { randomBytes } from 'node:crypto';

import type { BffConfig } from '../config/validate.js';
import { DPoP } from '../dpop/dpop.js';
import { IdpClient } from '../idp/idp-client.js';
import { classifyTokenFailure } from '../idp/failures.js';
import { findingsOf, type Finding } from './finding.js';
import { describeFailure } from './http.js';

const { ok, warn, fail, skip } = findingsOf('client');

/** What one made-up grant got back; `seen` says it in words ("answered 401 access_denied"). */
type Answer =
  | { readonly kind: 'invalid_grant' | 'unauthorized_client' | 'accepted' }
  | { readonly kind: 'bad_credentials' | 'unavailable' | 'unexpected'; readonly seen: string };

/** Whether the token endpoint let the client use a grant type, as far as the probes tell. */
export type ProbedGrant = 'allowed' | 'not_allowed' | 'unknown';

export interface ProbeResult {
  readonly findings: Finding[];
  /**
   * Undefined when the credentials were not accepted (nothing can be told about grants then). `seen`: what the
   * token endpoint did with a grant that is `unknown` ("answered 429 too_many_requests").
   */
  readonly grants?: { readonly authorization_code: ProbedGrant; readonly refresh_token: ProbedGrant; readonly seen?: string };
}

const madeUp = () => `doctor-${randomBytes(16).toString('base64url')}`;

async function answerOf(request: () => Promise<unknown>): Promise<Answer> {
  try {
    await request();
    return { kind: 'accepted' };
  } catch (error) {
    const failure = classifyTokenFailure(error);
    if (failure.error === 'invalid_grant') return { kind: 'invalid_grant' };
    if (failure.error === 'unauthorized_client') return { kind: 'unauthorized_client' };
    const seen =
      failure.error === 'timeout' ? 'did not answer in time'
      : failure.error === 'network_error' ? `could not be reached (${describeFailure(error)})`
      : failure.status === undefined ? `answered ${failure.error}`
      : failure.error === `http_${failure.status}` ? `answered HTTP ${failure.status}`
      : `answered ${failure.status} ${failure.error}`;
    if (failure.status === 401 || failure.error === 'invalid_client') return { kind: 'bad_credentials', seen };
    return { kind: failure.kind === 'transient' ? 'unavailable' : 'unexpected', seen };
  }
}

function grantOf(answer: Answer): ProbedGrant {
  if (answer.kind === 'invalid_grant') return 'allowed';
  return answer.kind === 'unauthorized_client' ? 'not_allowed' : 'unknown';
}

/**
 * The callback URL Auth0 would send the browser to with a code; `iss` is added when the issuer says it sends
 * one (RFC 9207), since openid-client then requires it.
 */
function madeUpCallback(config: BffConfig, metadata: Record<string, unknown>, state: string): URL {
  const url = new URL(config.routes.callback ?? '/auth/callback', config.baseURL);
  url.searchParams.set('code', madeUp());
  url.searchParams.set('state', state);
  if (metadata.authorization_response_iss_parameter_supported === true) url.searchParams.set('iss', String(metadata.issuer));
  return url;
}

/**
 * Sends the two made-up grants with the BFF's own client and credentials, and with its DPoP key as createBff
 * gives it: an application that requires sender-constrained tokens refuses a token request without a proof.
 */
export async function probeClient(config: BffConfig, metadata: Record<string, unknown>): Promise<ProbeResult> {
  const idp = new IdpClient(config, config.dpop ? new DPoP(config.dpop, config.clock, config.logger) : undefined);
  try {
    try {
      await idp.ready();
    } catch (error) {
      return {
        findings: [skip('client.credentials', `Credentials not checked: the BFF's client cannot use the discovery document (${describeFailure(error)})`)],
      };
    }
    const state = madeUp();
    const code = await answerOf(() =>
      idp.exchangeCode(madeUpCallback(config, metadata, state), { codeVerifier: madeUp() + madeUp(), state, nonce: madeUp() }),
    );
    const method = config.clientAuth.method;
    if (code.kind === 'bad_credentials') {
      return {
        findings: [
          fail('client.credentials', `Auth0 refuses the client's credentials (it ${code.seen}, with ${method})`, {
            detail: 'Every login would fail at the code exchange.',
            fix: `Copy the Client ID and Client Secret (CLIENT_ID, CLIENT_SECRET) again from Dashboard > Applications > Applications > your Regular Web Application > Settings, and check that its "Authentication Method" (Credentials tab) is ${method === 'client_secret_basic' ? 'Client Secret (Basic)' : method === 'client_secret_post' ? 'Client Secret (Post)' : 'Private Key JWT'}.`,
          }),
        ],
      };
    }
    if (code.kind === 'unavailable' || code.kind === 'unexpected' || code.kind === 'accepted') {
      const seen = 'seen' in code ? code.seen : 'accepted a made-up authorization code';
      return {
        findings: [
          warn('client.credentials', `Credentials not confirmed: the token endpoint ${seen}`, {
            fix: code.kind === 'unavailable' ? 'Run the doctor again; if it persists, check the tenant\'s status and this machine\'s network.' : 'Check that ISSUER_URL is an Auth0 tenant.',
          }),
        ],
      };
    }
    const refresh = await answerOf(() => idp.refresh(madeUp(), {}, config.tokens.attemptTimeoutMs));
    const unknown = [code, refresh].find((answer) => grantOf(answer) === 'unknown');
    return {
      findings: [
        ok('client.credentials', `Auth0 accepts the client's credentials (${method})`, {
          detail: 'A made-up authorization code was refused as a grant, after the client was authenticated.',
        }),
      ],
      grants: {
        authorization_code: grantOf(code),
        refresh_token: grantOf(refresh),
        ...(unknown ? { seen: 'seen' in unknown ? unknown.seen : 'accepted a made-up grant' } : {}),
      },
    };
  } finally {
    idp.close();
  }
}
