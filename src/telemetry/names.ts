/**
 * Names of spans, metrics and attributes. HTTP, server and error attributes and the HTTP client metric are
 * OpenTelemetry's stable semantic conventions (semconv 1.2x+, `docs/http/http-spans.md`, `http-metrics.md`,
 * `docs/registry/attributes/error.md`); what only a BFF has lives under `bff.` (semconv `naming.md`: lowercase,
 * dots for namespaces, underscores within a word, counted things pluralized with a `{unit}`, no `total`).
 */

/** The instrumentation scope: the tracer's and meter's name. */
export const SCOPE = 'express-ort-bff';

export const ATTR = {
  HTTP_REQUEST_METHOD: 'http.request.method',
  HTTP_REQUEST_METHOD_ORIGINAL: 'http.request.method_original',
  HTTP_REQUEST_RESEND_COUNT: 'http.request.resend_count',
  HTTP_RESPONSE_STATUS_CODE: 'http.response.status_code',
  SERVER_ADDRESS: 'server.address',
  SERVER_PORT: 'server.port',
  URL_FULL: 'url.full',
  ERROR_TYPE: 'error.type',
  /** The API's mount path (`/api`): which configured API a call went to. */
  BFF_API: 'bff.api',
  BFF_AUDIENCE: 'bff.audience',
  BFF_SESSION_REF: 'bff.session_ref',
  /** How a request got its renewed token: `led` the exchange, `joined` one under way here, `waited` for another process's. */
  BFF_SINGLE_FLIGHT: 'bff.single_flight',
  /** `success`, or the failure kind: `terminal` (the session is over), `transient`, `configuration`. */
  BFF_EXCHANGE_OUTCOME: 'bff.exchange.outcome',
  BFF_LOGOUT_REASON: 'bff.logout.reason',
  BFF_LOGOUT_SESSIONS: 'bff.logout.sessions',
  BFF_LOGOUT_REVOKED: 'bff.logout.revoked',
  BFF_OPERATION: 'bff.operation',
  /** Why a silent login (`prompt=none`) came back without a session: Auth0's answer (`login_required`, ...). */
  BFF_LOGIN_SILENT_ANSWER: 'bff.login.silent_answer',
} as const;

export const METRIC = {
  /** Histogram, s: one per proxied request sent upstream (semconv). */
  HTTP_CLIENT_REQUEST_DURATION: 'http.client.request.duration',
  /** Histogram, s: one per token request to Auth0 (an ORT exchange attempt), by outcome. */
  TOKEN_EXCHANGE_DURATION: 'bff.token.exchange.duration',
  /** Counter, {request}: requests that needed a renewed token, by single-flight role. */
  TOKEN_RENEWALS: 'bff.token.renewals',
  /** Counter, {error}: proxied calls the upstream did not answer, or broke off. */
  UPSTREAM_ERRORS: 'bff.upstream.errors',
  /** Counter, {error}: requests the session store failed. */
  SESSION_STORE_ERRORS: 'bff.session_store.errors',
  /** Counter, {login}. */
  LOGINS: 'bff.logins',
  /** Counter, {logout}: logouts by reason (one per logout, however many BFF sessions it ended). */
  LOGOUTS: 'bff.logouts',
  /** Gauge, {session}: live BFF sessions (memory sessions only: Redis cannot count them cheaply). */
  SESSION_ACTIVE: 'bff.session.active',
} as const;

export const SPAN = {
  TOKEN_RENEWAL: 'bff.token.renewal',
  LOGIN_CALLBACK: 'bff.login.callback',
  LOGOUT: 'bff.logout',
  BACKCHANNEL_LOGOUT: 'bff.backchannel_logout',
} as const;

/** semconv's advice for HTTP durations (seconds). */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
