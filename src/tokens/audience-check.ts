import { BffError, ErrorCode } from '../errors.js';
import type { Logger } from '../events/events.js';
import { markLogged } from '../http/json-error.js';

/**
 * The audiences a JWT access token names (its `aud` claim: a string or an array of strings), read without
 * verifying it (Auth0 signed it and the API verifies it; the BFF only needs to know whom it is for). Undefined
 * when the token is not a JWS it can read, or has no `aud`: an opaque token, or an encrypted one.
 */
export function tokenAudiences(token: string): readonly string[] | undefined {
  const first = token.indexOf('.');
  const second = token.indexOf('.', first + 1);
  if (first <= 0 || second < 0 || token.indexOf('.', second + 1) >= 0) return undefined;
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(token.slice(first + 1, second), 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  const aud = (payload as { aud?: unknown } | null)?.aud;
  if (typeof aud === 'string') return [aud];
  if (Array.isArray(aud) && aud.length > 0 && aud.every((x) => typeof x === 'string')) return aud as string[];
  return undefined;
}

/**
 * Checks that an access token Auth0 issued is for the API it was asked for, before it is stored: once per token,
 * never per API call.
 *
 * Auth0 answers an exchange for an audience that the application's refresh token policy does not cover with a
 * token for the default audience, without an error. Forwarding that token would send one API another API's
 * credentials (or fail at the API with a confusing 401), so a mismatch is a configuration error instead. Tokens
 * whose audience cannot be read (opaque, encrypted) pass: Auth0 issues JWTs for every API, so a token the BFF
 * cannot read is not Auth0's silent substitution. Without an expected audience (a login with no `audience`)
 * nothing is checked.
 */
export class AudienceCheck {
  private readonly reported = new Set<string>();

  constructor(private readonly logger: Logger) {}

  /** A `configuration_error` to throw when `token` names audiences and `expected` is not one of them; else undefined. */
  mismatch(token: string, expected: string): BffError | undefined {
    if (expected === '') return undefined;
    const audiences = tokenAudiences(token);
    if (audiences === undefined || audiences.includes(expected)) return undefined;
    const error = new BffError(
      ErrorCode.CONFIGURATION_ERROR,
      'Auth0 issued an access token for another API than the one asked for; nothing was sent to the API.',
    );
    // One log line per audience, not one per call: every call repeats the same mistake until it is fixed.
    markLogged(error);
    if (!this.reported.has(expected)) {
      this.reported.add(expected);
      this.logger.error('Auth0 answered with an access token for another audience: allow this API in the application\'s refresh token policy (Multi-Resource Refresh Token), or fix the audience', {
        expected, received: audiences.slice(0, 4),
      });
    }
    return error;
  }
}
