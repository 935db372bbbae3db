/**
 * The client's credentials, checked without a user: the BFF's own token client (openid-client, as configured)
 * sends requests that must fail, a made-up authorization code and a made-up refresh token. How they fail tells
 * whether the credentials were accepted: Auth0 authenticates the client first, so `invalid_grant` means "client
 * fine, grant unknown", 401 `access_denied` (or `invalid_client`) means "client refused", and 403
 * `unauthorized_client` means "client fine, grant type not allowed for it".
 */
import { randomBytes } from 'node:crypto';

import { ClientError } from 'openid-client';

import type { BffConfig } from '../config/validate.js';
import { DPoP } from '../dpop/dpop.js';
import { IdpClient } from '../idp/idp-client.js';
import { classifyTokenFailure, isTimeoutFailure } from '../idp/failures.js';
import { findingsOf, type Finding } from './finding.js';
import { describeFailure } from './http.js';
import { APP_SETTINGS } from './tenant-checks.js';

const { ok, warn, fail, skip } = findingsOf('client');
const discovery = findingsOf('discovery');

/** What one made-up grant got back; `seen` says it in words ("answered 401 access_denied"). */
type Answer =
  | { readonly kind: 'invalid_grant' | 'unauthorized_client' | 'accepted' }
  | { readonly kind: 'bad_credentials' | 'dpop_refused' | 'unavailable' | 'unexpected'; readonly seen: string };

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
    // The proof (or its absence: an application that requires sender-constrained tokens) refused before the grant.
    const description = (error as { error_description?: unknown } | undefined)?.error_description;
    if (failure.error === 'invalid_dpop_proof' || (failure.error === 'invalid_request' && typeof description === 'string' && /dpop/i.test(description))) {
      return { kind: 'dpop_refused', seen };
    }
    return { kind: failure.kind === 'transient' ? 'unavailable' : 'unexpected', seen };
  }
}

/**
 * Whether the BFF's client failed to load the discovery document for a fault of the moment: no answer (in time),
 * a rate limit or a 5xx. Anything else is an answer it refused (a redirect, an error status, a document it finds
 * wrong), which would stop the BFF as well. (classifyTokenFailure is no help here: for a session's sake it takes
 * every answer it cannot use as passing.)
 */
function momentary(error: unknown): boolean {
  if (isTimeoutFailure(error)) return true;
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  if (cause instanceof Response) return cause.status === 429 || cause.status >= 500;
  const status = (error as { status?: unknown } | undefined)?.status;
  if (typeof status === 'number') return status === 429 || status >= 500;
  return !(error instanceof ClientError);
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
 * `discoveryFailed`: a check of the discovery document failed, which already says why the BFF's client may not
 * use it.
 */
export async function probeClient(config: BffConfig, metadata: Record<string, unknown>, options: { discoveryFailed: boolean }): Promise<ProbeResult> {
  const idp = new IdpClient(config, config.dpop ? new DPoP(config.dpop, config.clock, config.logger) : undefined);
  try {
    try {
      await idp.ready();
    } catch (error) {
      // openid-client's error holds the answer it refused: its status says more than the message alone.
      const refused = (error as { cause?: unknown } | undefined)?.cause;
      const why = refused instanceof Response ? `${describeFailure(error)}: HTTP ${refused.status}` : describeFailure(error);
      const notChecked = skip('client.credentials', `Credentials not checked: the BFF's client cannot use the discovery document (${why})`);
      if (options.discoveryFailed) return { findings: [notChecked] };
      if (momentary(error)) {
        // A rate limit, a 5xx or no answer in time between the doctor's read and the client's: says nothing.
        return {
          findings: [
            discovery.warn('discovery.client', `The BFF's client could not load the discovery document (${why})`, {
              fix: 'Run the doctor again; if it persists, check the tenant\'s status and this machine\'s network.',
            }),
            notChecked,
          ],
        };
      }
      // The doctor's checks passed, yet the BFF itself could not start: that is the finding, never a mere skip.
      return {
        findings: [
          discovery.fail('discovery.client', `The BFF's client cannot use the discovery document (${why})`, {
            detail: 'createBff loads it with openid-client, which is stricter than the checks above: until it can, the BFF cannot start a login and /healthz answers 503.',
            fix: 'Set ISSUER_URL / AUTH0_DOMAIN to the issuer exactly as the document names it, and serve the document at ISSUER_URL/.well-known/openid-configuration directly: over https (plain http only on loopback), with a 200 and no redirect.',
          }),
          notChecked,
        ],
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
    if (code.kind === 'dpop_refused') {
      return {
        findings: [
          config.dpop
            ? fail('client.dpop-proof', `Auth0 refuses the BFF's DPoP proofs (it ${code.seen})`, {
                detail: 'Every login would fail at the code exchange.',
                fix: 'Give DPOP_PRIVATE_KEY a P-256 (ES256) private key, and check this machine\'s clock: a proof is refused when its time is far off.',
              })
            : fail('client.dpop-proof', `The application requires sender-constrained tokens, and the BFF has no DPoP key (Auth0 ${code.seen})`, {
                detail: 'Auth0 refuses every token request without a DPoP proof: every login would fail at the code exchange.',
                fix: `Set DPOP_PRIVATE_KEY to a P-256 (ES256) private JWK, or turn off "Require Token Sender-Constraining" in ${APP_SETTINGS}.`,
              }),
          skip('client.credentials', 'Credentials not checked: Auth0 refused the token request\'s DPoP proof (or its absence) first'),
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
          detail: code.kind === 'unauthorized_client'
            ? 'A made-up authorization code was refused because the application may not use that grant type, after the client was authenticated.'
            : 'A made-up authorization code was refused as a grant, after the client was authenticated.',
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
