/**
 * The error codes the browser (and the app) can see. Each one is an HTTP answer
 * `{ "error": code, "error_description": text }` with `Cache-Control: no-store`.
 */
export const ErrorCode = {
  /** 401: there is no BFF session; the SPA should send the user to the login route. */
  LOGIN_REQUIRED: 'login_required',
  /** 401: the Auth0 session is over (revoked, timed out, logged out); the BFF session was destroyed. */
  SESSION_ENDED: 'session_ended',
  /** 403: an API call came without the anti-forgery header. */
  CSRF_REQUIRED: 'csrf_required',
  /** 400: the request itself is malformed (bad path, bad parameter, unknown login transaction). */
  INVALID_REQUEST: 'invalid_request',
  /** 400: the identity provider answered the login with an error (for example `access_denied`). */
  LOGIN_FAILED: 'login_failed',
  /** 503: Auth0's token endpoint is failing transiently; retry after the Retry-After header. The session is kept. */
  TOKEN_SERVICE_UNAVAILABLE: 'token_service_unavailable',
  /** 502: the identity provider could not be reached or answered something unusable. */
  IDP_UNAVAILABLE: 'idp_unavailable',
  /** 502: the upstream API could not be reached or broke off. */
  UPSTREAM_UNAVAILABLE: 'upstream_unavailable',
  /** 504: the upstream API did not answer in time. */
  UPSTREAM_TIMEOUT: 'upstream_timeout',
  /**
   * 503: the API asked for a DPoP nonce the BFF did not have yet, for a request that cannot be replayed (it has a
   * body, or a method that is not idempotent). The API did not process it; send it again (the BFF has the nonce now).
   */
  UPSTREAM_NONCE_REQUIRED: 'upstream_nonce_required',
  /** 503: the session store (Redis) is not answering. Nobody is logged out because of it. */
  SESSION_STORE_UNAVAILABLE: 'session_store_unavailable',
  /** 405: a method the BFF's route does not answer (`POST /auth/user`); `Allow` names those it does. */
  METHOD_NOT_ALLOWED: 'method_not_allowed',
  /** 500: the BFF is misconfigured (for example Auth0 rejects its client credentials). */
  CONFIGURATION_ERROR: 'configuration_error',
  /** 500: an unexpected failure inside the BFF. */
  SERVER_ERROR: 'server_error',
} as const;

/** One of the {@link ErrorCode} values: the `error` field of every JSON error answer. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const STATUS: Record<ErrorCode, number> = {
  login_required: 401,
  session_ended: 401,
  csrf_required: 403,
  invalid_request: 400,
  login_failed: 400,
  token_service_unavailable: 503,
  idp_unavailable: 502,
  upstream_unavailable: 502,
  upstream_timeout: 504,
  upstream_nonce_required: 503,
  session_store_unavailable: 503,
  method_not_allowed: 405,
  configuration_error: 500,
  server_error: 500,
};

/**
 * The one error class of this library: a stable `code` to catch by, the HTTP `status` it maps to,
 * and a description that is safe to show (it never contains a token or a secret).
 *
 * @example
 * ```ts
 * try {
 *   token = await bff.getAccessToken(req);
 * } catch (error) {
 *   if (error instanceof BffError && error.code === ErrorCode.SESSION_ENDED) return res.redirect('/auth/login');
 *   throw error;
 * }
 * ```
 */
export class BffError extends Error {
  /** What went wrong, one of {@link ErrorCode}: catch by this, not by the message. */
  readonly code: ErrorCode;
  /** The HTTP status the BFF answers for this code. */
  readonly status: number;
  /** Seconds, for 503 answers that tell the client when to try again. */
  readonly retryAfter: number | undefined;

  /**
   * @param code - One of {@link ErrorCode}.
   * @param description - Safe to show: never a token or a secret.
   * @param options - The `cause`, and `retryAfter` seconds for 503 answers.
   */
  constructor(code: ErrorCode, description: string, options?: { cause?: unknown; retryAfter?: number }) {
    super(description, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BffError';
    this.code = code;
    this.status = STATUS[code];
    this.retryAfter = options?.retryAfter;
  }
}

/** Thrown by `createBff()` and `startLocalAuth0()` for a bad option; the message names the option path. */
export class BffConfigError extends TypeError {
  /** The option's path, e.g. `session.secrets` or `apis[1].upstream`. */
  readonly option: string;
  /**
   * @param option - The option's path.
   * @param message - What would be valid; the error's message is the path followed by it.
   */
  constructor(option: string, message: string) {
    super(`${option} ${message}`);
    this.name = 'BffConfigError';
    this.option = option;
  }
}
