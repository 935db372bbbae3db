import { ClientError, ResponseBodyError, WWWAuthenticateChallengeError } from 'openid-client';

/**
 * What a failed call to Auth0's token endpoint means for the session:
 * - terminal: the Auth0 session is over (invalid_grant, or access_denied on a refresh: an Action revoked it);
 * - transient: try again later, the session is kept (429, 5xx, timeouts, connection errors, malformed answers);
 * - configuration: the BFF itself is wrong (bad client credentials, a scope or audience Auth0 refuses).
 */
export type FailureKind = 'terminal' | 'transient' | 'configuration';

export interface ClassifiedFailure {
  readonly kind: FailureKind;
  /** An OAuth error code or a short name of the failure (never a token). */
  readonly error: string;
  readonly status: number | undefined;
  /** Seconds the IdP asked us to wait (Retry-After), if it did. */
  readonly retryAfter: number | undefined;
}

/** What an error code from Auth0 may look like (RFC 6749 5.2's characters, bounded): anything else is not passed on. */
const OAUTH_ERROR_CODE = /^[a-z0-9_.-]{1,64}$/i;

/**
 * An OAuth `error` from an answer, when it reads as one: it goes into events, log lines, URLs and metric
 * attributes, so an answer that is not Auth0's (a WAF's JSON, a proxy's page) passes on no text of its own.
 */
export function oauthErrorCode(value: unknown): string | undefined {
  return typeof value === 'string' && OAUTH_ERROR_CODE.test(value) ? value : undefined;
}

/**
 * The error codes a token request's failure is counted under in metrics (`error.type`): the OAuth ones the token
 * endpoint defines (RFC 6749, 8707, 9449 and OpenID Connect) and the BFF's own names. Any other value is `_OTHER`,
 * as semantic conventions ask, so that whatever an answer says cannot add series; events and logs keep the code.
 */
const COUNTED_ERRORS = new Set([
  'invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope',
  'invalid_target', 'access_denied', 'server_error', 'temporarily_unavailable', 'too_many_requests', 'mfa_required',
  'login_required', 'interaction_required', 'consent_required', 'use_dpop_nonce', 'invalid_dpop_proof',
  'timeout', 'network_error', 'invalid_response',
  // Not Auth0's: a token it gave for another API than the one asked for (see tokens/audience-check.ts).
  'audience_mismatch',
]);

export function countedErrorType(error: string): string {
  return COUNTED_ERRORS.has(error) || /^http_[1-5]\d\d$/.test(error) ? error : '_OTHER';
}

export function classifyTokenFailure(error: unknown): ClassifiedFailure {
  if (error instanceof ResponseBodyError) {
    const status = error.status;
    const retryAfter = parseRetryAfter(error.response?.headers.get('retry-after'));
    const code = oauthErrorCode(error.error) ?? 'invalid_response';
    if (code === 'invalid_grant') return { kind: 'terminal', error: code, status, retryAfter };
    // Auth0 answers 401 access_denied "Unauthorized" for bad client credentials, 403 access_denied for a refresh an Action revoked.
    // Its 403 access_denied for an API it does not know, or one the application may not call, says so: a mistyped
    // audience is the BFF's fault, and must not log every user out on their first call to that API.
    if (code === 'access_denied') {
      return { kind: refusesTheApplication(code, status, error.error_description) ? 'configuration' : 'terminal', error: code, status, retryAfter };
    }
    if (code === 'mfa_required' || code === 'login_required' || code === 'interaction_required') {
      return { kind: 'terminal', error: code, status, retryAfter };
    }
    // openid-client already answered one use_dpop_nonce with the nonce; a second one (the nonce rotated between
    // the two requests) is worth another try later, with the nonce it has now.
    if (status === 429 || status >= 500 || code === 'temporarily_unavailable' || code === 'too_many_requests' || code === 'use_dpop_nonce') {
      return { kind: 'transient', error: code, status, retryAfter };
    }
    return { kind: 'configuration', error: code, status, retryAfter };
  }
  if (error instanceof WWWAuthenticateChallengeError) {
    // A 401 with a WWW-Authenticate challenge (RFC 6749 5.2: failed client authentication) is the BFF's own fault.
    const status = error.status;
    const challenge = oauthErrorCode(error.cause?.[0]?.parameters?.error);
    const retryAfter = parseRetryAfter(error.response?.headers.get('retry-after'));
    if (status === 429 || status >= 500) return { kind: 'transient', error: challenge ?? `http_${status}`, status, retryAfter };
    if (challenge === 'invalid_grant') return { kind: 'terminal', error: challenge, status, retryAfter };
    return { kind: 'configuration', error: challenge ?? `http_${status}`, status, retryAfter };
  }
  const nested = (error as { cause?: unknown } | undefined)?.cause;
  if (isTimeoutFailure(error)) return { kind: 'transient', error: 'timeout', status: undefined, retryAfter: undefined };
  if (error instanceof ClientError) {
    const response = nested;
    if (response instanceof Response) {
      const status = response.status;
      const retryAfter = parseRetryAfter(response.headers.get('retry-after'));
      if (status === 429 || status >= 500) return { kind: 'transient', error: `http_${status}`, status, retryAfter };
      if (status === 401) return { kind: 'configuration', error: `http_${status}`, status, retryAfter };
      // Not an OAuth error body (a WAF or proxy page in front of the tenant): never proof that the session is over.
      return { kind: 'transient', error: `http_${status}`, status, retryAfter };
    }
    // A 200 answer we cannot use (not JSON, no access_token, a bad ID token): the IdP misbehaves, try again later.
    return { kind: 'transient', error: 'invalid_response', status: undefined, retryAfter: undefined };
  }
  return { kind: 'transient', error: 'network_error', status: undefined, retryAfter: undefined };
}

/** Auth0's descriptions of an `access_denied` about the API asked for rather than the user's session. */
const API_REFUSALS = /^(Service not found: |Client is not authorized to access )/;

function refusesTheApi(description: unknown): boolean {
  return typeof description === 'string' && API_REFUSALS.test(description);
}

/** Codes of a refusal of the application itself: its credentials, or a grant or response type it may not use. */
const APPLICATION_REFUSALS = new Set(['invalid_client', 'unauthorized_client', 'unsupported_grant_type', 'unsupported_response_type']);

/**
 * Whether Auth0 refused a login for the BFF's configuration rather than for the user: its client credentials
 * (401), a grant it may not use, an audience Auth0 does not know or the application may not call. A user who
 * cancels, or an Action that denies the login, is the user's refusal (`access_denied` without those descriptions).
 */
export function refusesTheApplication(code: string, status: number | undefined, description: unknown): boolean {
  return status === 401 || APPLICATION_REFUSALS.has(code) || (code === 'access_denied' && refusesTheApi(description));
}

/** Retry-After is seconds or an HTTP date (RFC 9110 10.2.3). */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
}

/** A request to Auth0 that ran out of time (or was aborted), as itself or as the cause openid-client wraps. */
export function isTimeoutFailure(error: unknown): boolean {
  const timedOut = (e: unknown) => {
    const name = (e as { name?: string } | undefined)?.name;
    return name === 'TimeoutError' || name === 'AbortError';
  };
  return timedOut(error) || timedOut((error as { cause?: unknown } | undefined)?.cause);
}
