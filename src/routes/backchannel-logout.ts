import type { Request, Response } from 'express';
import { decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { BffError, ErrorCode } from '../errors.js';
import { sendError, toBffError } from '../http/json-error.js';
import { isKeySetFault, issuerKeys } from '../idp/issuer-keys.js';
import { isStoreFailure } from '../session/sessions.js';
import type { BffContext } from './context.js';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** Auth0 sets `typ: JWT`; the specification's `logout+jwt` (with or without `application/`) is accepted as well. */
const TYPES = new Set(['jwt', 'logout+jwt', 'application/logout+jwt']);
const CLOCK_TOLERANCE_S = 30;

/**
 * POST /auth/backchannel-logout (OpenID Connect Back-Channel Logout 1.0, section 2.6): verifies the logout_token
 * against the issuer's keys and claims, refuses a replayed jti, and ends every BFF session of that Auth0 session
 * (or, with only `sub`, of that user). Bad input gets 400 JSON, never a 500.
 */
export function backchannelLogoutRoute(ctx: BffContext) {
  const { config } = ctx;
  let jwks: JWTVerifyGetKey | undefined;

  return async function backchannelLogout(req: Request, res: Response): Promise<void> {
    res.setHeader('Cache-Control', 'no-store');
    try {
      const token = (req.body as Record<string, unknown> | undefined)?.logout_token;
      if (typeof token !== 'string' || token.length === 0 || token.length > 16_384) throw bad('The request has no logout_token.');
      try {
        await ctx.idp.ready();
      } catch (error) {
        throw new BffError(ErrorCode.IDP_UNAVAILABLE, 'The issuer metadata is not available to verify the logout token.', { cause: error });
      }
      jwks ??= issuerKeys(new URL(ctx.idp.jwksUri as string), config.fetch, config.tokens.attemptTimeoutMs);

      let header;
      try {
        header = decodeProtectedHeader(token);
      } catch {
        throw bad('The logout_token is not a JWT.');
      }
      if (header.typ !== undefined && !TYPES.has(String(header.typ).toLowerCase())) throw bad('The logout_token has an unexpected typ.');

      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, jwks, {
          issuer: ctx.idp.issuer as string,
          audience: config.clientId,
          algorithms: [...config.backchannelAlgorithms],
          clockTolerance: CLOCK_TOLERANCE_S,
          currentDate: new Date(config.clock()),
          requiredClaims: ['iat', 'exp', 'jti'],
        }));
      } catch (error) {
        if (isKeySetFault(error)) throw new BffError(ErrorCode.IDP_UNAVAILABLE, 'The issuer keys could not be loaded to verify the logout token.', { cause: error });
        throw bad(`The logout_token did not verify: ${describe(error)}.`);
      }

      // jose checks iat only against a maximum token age, which a logout token has none of: a token issued
      // later than now (beyond the clock tolerance) is refused here, as an ID token's would be (Core 3.1.3.7).
      if ((payload.iat as number) > config.clock() / 1000 + CLOCK_TOLERANCE_S) throw bad('The logout_token was issued in the future.');
      const events = payload.events as Record<string, unknown> | undefined;
      if (!events || typeof events !== 'object' || typeof events[EVENT] !== 'object' || events[EVENT] === null || Array.isArray(events[EVENT])) throw bad('The logout_token lacks the back-channel logout event.');
      if ('nonce' in payload) throw bad('A logout_token must not contain a nonce.');
      // A sid of another type is a malformed token, not one without a sid (which would end every session of the user).
      if (payload.sid !== undefined && typeof payload.sid !== 'string') throw bad('The logout_token has a sid that is not a string.');
      const sid = typeof payload.sid === 'string' ? payload.sid : undefined;
      const sub = typeof payload.sub === 'string' ? payload.sub : undefined;
      if (sid === undefined && sub === undefined) throw bad('The logout_token names neither a sid nor a sub.');

      const lifetimeMs = ((payload.exp as number) + CLOCK_TOLERANCE_S) * 1000 - config.clock();
      const replayKey = `jti:${payload.iss}:${payload.jti}`;
      let ids: string[];
      try {
        if (!(await ctx.sessions.backend.rememberOnce(replayKey, Math.max(1_000, lifetimeMs)))) {
          throw bad('This logout_token was used already.');
        }
        ids = await ctx.sessions.find({ sid, sub });
      } catch (error) {
        if (!isStoreFailure(error)) throw error;
        // The token is genuine, and Auth0 sends it once (it does not retry a delivery): the Auth0 session is over,
        // so its sessions end once the store answers again, found then. A replay of this token meanwhile could
        // only end them again.
        ctx.sessions.endLater({ sid, sub }, 'backchannel');
        res.status(200).end();
        return;
      }
      // The Auth0 session is over: once its sessions are known, their end is done here, now or (should the store
      // fail meanwhile) in the background. Asking Auth0 to send the token again would change nothing.
      await ctx.sessions.endEventually({ sid, sub }, 'backchannel', { ids });
      res.status(200).end();
    } catch (error) {
      const failure = toBffError(error);
      if (failure.code === ErrorCode.INVALID_REQUEST) ctx.report.backchannelRejected(failure.message);
      sendError(res, failure, ctx.report, { operation: 'backchannel_logout' });
    }
  };
}

const bad = (description: string): BffError => new BffError(ErrorCode.INVALID_REQUEST, description);

function describe(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'it has expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `the ${error.claim} claim is not acceptable`;
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'its algorithm is not allowed';
  if (error instanceof joseErrors.JWKSNoMatchingKey) return 'no key of the issuer matches';
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'the signature is invalid';
  return 'it is malformed';
}

