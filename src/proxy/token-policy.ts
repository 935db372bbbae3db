import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { BffConfig } from '../config/validate.js';
import { BffError, ErrorCode } from '../errors.js';
import type { LoadedSession, Sessions } from '../session/sessions.js';
import type { ClientToken, ClientTokens } from '../tokens/client-tokens.js';

type Api = BffConfig['apis'][number];

/**
 * What an API's token policy asks of the proxy, worked out once when the proxy is built so that a call only
 * follows a branch:
 * - `userRequired` (`user`): the user's token; no session is 401;
 * - `userIfAny` (`user-or-none`, `user-or-client`): the user's token when the call has a session;
 * - `client` (`client`, `user-or-client`): the application's own token when no user token is used;
 * - none of them (`none`): the call goes out without a token.
 */
export interface TokenPlan {
  readonly userRequired: boolean;
  readonly userIfAny: boolean;
  readonly client: ClientToken | undefined;
}

export function tokenPlan(api: Api, clientTokens: ClientTokens): TokenPlan {
  const { token } = api;
  return {
    userRequired: token === 'user',
    userIfAny: token === 'user-or-none' || token === 'user-or-client',
    client: token === 'client' || token === 'user-or-client' ? clientTokens.forApi(api.audience, api.scope) : undefined,
  };
}

/**
 * The session of a call that may come without one. Undefined without a genuine cookie, or when the cookie's session
 * is gone (logged out or expired earlier, past the store's grace): that call is forwarded as anonymous, like one
 * without a cookie. A session that ends *on this call* (its idle or absolute timeout found now, or Auth0 refusing
 * its ORT later) still answers 401 session_ended, so the SPA learns that the user is signed out instead of quietly
 * getting anonymous answers; the session is destroyed with that answer, and the next call is anonymous.
 * Faults (the store not answering) are answered as faults: not knowing the user is not the same as no user.
 */
export function optionalSession(sessions: Sessions, req: IncomingMessage, audience: string, headers: IncomingHttpHeaders = req.headers): LoadedSession | undefined | Promise<LoadedSession | undefined> {
  // The usual anonymous call (no cookie) costs no error object.
  if (sessions.idOf(req, headers) === undefined) return undefined;
  let loaded: LoadedSession | Promise<LoadedSession>;
  try {
    loaded = sessions.load(req, audience, headers);
  } catch (error) {
    return anonymousIfNoSession(error);
  }
  return loaded instanceof Promise ? loaded.catch(anonymousIfNoSession) : loaded;
}

function anonymousIfNoSession(error: unknown): undefined {
  if (error instanceof BffError && error.code === ErrorCode.LOGIN_REQUIRED) return undefined;
  throw error;
}
