import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Pool, errors as undiciErrors, type Dispatcher } from 'undici';
import type { BffConfig } from '../config/validate.js';
import type { DPoP } from '../dpop/dpop.js';
import type { UpstreamProofs } from '../dpop/upstream.js';
import { BffError, ErrorCode } from '../errors.js';
import { sendError, toBffError } from '../http/json-error.js';
import { isSafeMethod } from '../http/csrf.js';
import type { AccessTokenEntry } from '../session/record.js';
import type { StreamTracker } from '../realtime/registry.js';
import { causeName, type Reporter } from '../events/reporter.js';
import { sessionRef, type LoadedSession, type Sessions } from '../session/sessions.js';
import type { ProxyCall, ProxyTelemetry } from '../telemetry/proxy-call.js';
import type { ClientTokens } from '../tokens/client-tokens.js';
import type { TokenManager } from '../tokens/token-manager.js';
import { AnswerDeadlines } from './answer-deadlines.js';
import { ForwardHandler, type ForwardOutcome } from './forward.js';
import { upstreamRequestHeaders } from './headers.js';
import { targetPath } from './target-path.js';
import { settleObjectLayouts } from './object-layouts.js';
import { optionalSession, tokenPlan, type TokenPlan } from './token-policy.js';

type Api = BffConfig['apis'][number];

/** A request an HTTP server received: Node types `url` and `method` as optional for client-side messages only. */
type ServerRequest = IncomingMessage & { url: string; method: string };

/** Methods a repeated request cannot change anything with (RFC 9110 9.2.2), when they carry no body. */
const REPLAYABLE = new Set(['GET', 'HEAD', 'OPTIONS', 'DELETE', 'PUT']);

/**
 * `<mount>/<rest>?q` -> `<upstream>/<rest>?q` with the session's access token (or, by the API's token policy,
 * the application's own token or none).
 * Checked in order: the anti-forgery header (403, upstream not called), a safe path (400), the session (401);
 * then a fresh token (one exchange at most), and the request streamed both ways over kept-alive connections.
 */
export class ApiProxy {
  private readonly pool: Pool;
  private readonly basePath: string;
  private readonly forwarded: { proto: string; host: string; prefix: string };
  /** With DPoP: the proofs of this API's calls. */
  private readonly proofs: UpstreamProofs | undefined;
  private readonly plan: TokenPlan;
  private readonly deadlines: AnswerDeadlines;
  /** The pool's headers timeout is the API's `timeout`: `deadlines` then only bound the wait for a connection. */
  private readonly poolTimesAnswers: boolean;

  constructor(
    private readonly api: Api,
    private readonly config: BffConfig,
    private readonly sessions: Sessions,
    private readonly tokens: TokenManager,
    clientTokens: ClientTokens,
    /** Long responses register here, to end with their session. */
    private readonly streams: StreamTracker | undefined,
    private readonly report: Reporter,
    /** Undefined without an OpenTelemetry SDK: then the calls cost nothing more than this field's check. */
    private readonly telemetry: ProxyTelemetry | undefined,
    dpop?: DPoP,
  ) {
    // The wait for headers kept apart from the pool (see AnswerDeadlines) whenever the body's limit is not shorter:
    // the pool then runs one timer per connection with the body's delay, which bounds the headers too, later.
    const separate = api.bodyTimeoutMs === 0 || api.bodyTimeoutMs >= api.timeoutMs;
    // Either way the deadlines bound the wait for a connection, which no timeout of the pool does.
    this.deadlines = new AnswerDeadlines(api.timeoutMs);
    this.poolTimesAnswers = !separate;
    // Before any call: else a garbage collection at the wrong moment can make every call's objects dictionaries.
    settleObjectLayouts();
    this.pool = new Pool(api.upstream.origin, {
      connections: api.connections,
      keepAliveTimeout: 30_000,
      headersTimeout: separate ? api.bodyTimeoutMs : api.timeoutMs,
      bodyTimeout: api.bodyTimeoutMs,
      connectTimeout: Math.min(api.timeoutMs, 10_000),
    });
    this.basePath = api.upstream.pathname.replace(/\/+$/, '');
    this.forwarded = { proto: config.baseURL.protocol.slice(0, -1), host: config.baseURL.host, prefix: api.mount };
    this.proofs = dpop?.forUpstream(api.upstream);
    this.plan = tokenPlan(api, clientTokens);
  }

  /** Whether a request URL (relative to where the BFF is mounted) belongs to this API: `<mount>`, `<mount>/...`, `<mount>?...`. */
  matches(url: string): boolean {
    const { mount } = this.api;
    if (!url.startsWith(mount)) return false;
    const next = url.charCodeAt(mount.length);
    return Number.isNaN(next) || next === 47 /* / */ || next === 63 /* ? */;
  }

  /**
   * Synchronous from the request to the upstream dispatch when the session and its token are at hand (the usual
   * case): a promise is only waited on for a round trip to Redis or an exchange.
   */
  readonly handle = (request: IncomingMessage, res: ServerResponse): void => {
    const req = request as ServerRequest;
    // Read once and passed on: `req.headers` is a getter, and in an app whose requests also go through Express
    // (whose requests have prototypes of their own) every read of it is a megamorphic lookup.
    const headers = req.headers;
    let path: string;
    let loaded: LoadedSession | Promise<LoadedSession>;
    try {
      if (headers[this.config.csrf.header] !== this.config.csrf.value && !(this.api.safeMethodsWithoutCsrf && isSafeMethod(req.method))) {
        throw new BffError(ErrorCode.CSRF_REQUIRED, `API calls must carry the header ${this.config.csrf.header}: ${this.config.csrf.value}.`);
      }
      const target = targetPath(this.basePath, req.url.slice(this.api.mount.length));
      if (target === undefined || req.method === 'CONNECT' || req.method === 'TRACE') {
        throw new BffError(ErrorCode.INVALID_REQUEST, 'The API path is not allowed.');
      }
      path = target;
      // The token policy was worked out once: an API that may be called without a session branches off here.
      if (!this.plan.userRequired) return this.withoutRequiredSession(req, headers, res, path);
      loaded = this.sessions.load(req, this.api.audience, headers);
    } catch (error) {
      return this.fail(res, error);
    }
    if (loaded instanceof Promise) this.afterSessionRead(req, headers, res, path, loaded);
    else this.withSession(req, headers, res, path, loaded);
  };

  // The callbacks of the waits (a session read, an exchange) are made in functions of their own: a function that
  // makes a closure over its arguments allocates a context for them on every call, also when it takes the
  // synchronous path and never makes the closure.
  private afterSessionRead(req: ServerRequest, headers: IncomingHttpHeaders, res: ServerResponse, path: string, loaded: Promise<LoadedSession>): void {
    loaded.then((session) => this.withSession(req, headers, res, path, session), (error: unknown) => this.fail(res, error));
  }

  private withSession(req: ServerRequest, headers: IncomingHttpHeaders, res: ServerResponse, path: string, session: LoadedSession): void {
    let token: AccessTokenEntry | Promise<AccessTokenEntry>;
    try {
      token = this.tokens.accessToken(session, this.api);
    } catch (error) {
      return this.fail(res, error);
    }
    if (token instanceof Promise) this.afterExchange(req, headers, res, path, session, token);
    else this.send(req, headers, res, path, session, token);
  }

  private afterExchange(req: ServerRequest, headers: IncomingHttpHeaders, res: ServerResponse, path: string, session: LoadedSession | undefined, token: Promise<AccessTokenEntry>): void {
    token.then((first) => this.send(req, headers, res, path, session, first), (error: unknown) => this.fail(res, error));
  }

  /** `user-or-none`, `user-or-client`, `client`, `none`: the user's token when there is a session and the policy uses it, else the application's or none. */
  private withoutRequiredSession(req: ServerRequest, headers: IncomingHttpHeaders, res: ServerResponse, path: string): void {
    let session: LoadedSession | undefined | Promise<LoadedSession | undefined>;
    try {
      session = this.plan.userIfAny ? optionalSession(this.sessions, req, this.api.audience, headers) : undefined;
    } catch (error) {
      return this.fail(res, error);
    }
    if (session instanceof Promise) this.afterOptionalSessionRead(req, headers, res, path, session);
    else this.withOptionalSession(req, headers, res, path, session);
  }

  private afterOptionalSessionRead(req: ServerRequest, headers: IncomingHttpHeaders, res: ServerResponse, path: string, session: Promise<LoadedSession | undefined>): void {
    session.then((found) => this.withOptionalSession(req, headers, res, path, found), (error: unknown) => this.fail(res, error));
  }

  private withOptionalSession(req: ServerRequest, headers: IncomingHttpHeaders, res: ServerResponse, path: string, session: LoadedSession | undefined): void {
    if (session !== undefined) return this.withSession(req, headers, res, path, session);
    const client = this.plan.client;
    if (client === undefined) return this.forward(req, headers, res, path, undefined, undefined, hasBody(headers), false, 0, (outcome) => this.settled(res, outcome));
    const token = client.token();
    if (token instanceof Promise) this.afterExchange(req, headers, res, path, undefined, token);
    else this.send(req, headers, res, path, undefined, token);
  }

  /** Sends with the user's token (a session) or the application's (none), renewing it once if the upstream rejects it. */
  private send(req: ServerRequest, headers: IncomingHttpHeaders, res: ServerResponse, path: string, session: LoadedSession | undefined, first: AccessTokenEntry): void {
    const withBody = hasBody(headers);
    // A token the upstream rejects although it looked fresh (revoked, clock skew) is renewed once and the
    // request replayed, when replaying cannot do harm.
    // An upstream that rejects every token (misconfigured on its side) costs one forced exchange, not one per call.
    const mayRetry = !withBody && REPLAYABLE.has(req.method)
      && (session !== undefined ? this.tokens.mayForce(first.token) : this.plan.client!.mayRenew(first.token));
    this.forward(req, headers, res, path, session, first, withBody, mayRetry, 0, (outcome) => {
      if (outcome.kind !== 'retry') return this.settled(res, outcome);
      const renewal = session !== undefined
        ? this.tokens.accessToken(session, this.api, { force: true, rejected: first.token })
        : this.plan.client!.renew(first.token);
      Promise.resolve(renewal).then(
        (renewed) => this.forward(req, headers, res, path, session, renewed, false, false, 1, (last) => this.settled(res, last)),
        (error: unknown) => this.fail(res, error),
      );
    });
  }

  /**
   * `session`: a long response of a session ends with it; `entry`: the token, with a proof when it is bound. Without
   * either (by the API's token policy) the call is not tracked, or goes without a token.
   */
  private forward(req: ServerRequest, incoming: IncomingHttpHeaders, res: ServerResponse, path: string, session: LoadedSession | undefined, entry: AccessTokenEntry | undefined, hasBody: boolean, mayRetry: boolean, resend: number, settle: Settle, nonceRetry = true, waitUntil?: number): void {
    // A body parser that ran first left nothing to stream: undici would send an empty body the upstream may accept.
    if (hasBody && bodyAlreadyRead(req)) return settle({ kind: 'failed', error: BODY_ALREADY_READ }, 0);
    const headers = upstreamRequestHeaders(req, entry, this.forwarded, incoming);
    // A bound token (the token manager hands out only tokens of this key) goes with a fresh proof.
    const proofs = entry?.jkt === undefined ? undefined : this.proofs;
    if (proofs !== undefined) proofs.authorize(headers, req.method, path, entry!);
    const call = this.telemetry?.start(req.method, path, headers, resend);
    const done = call === undefined ? settle : endingSpan(call, settle);
    const finish = proofs === undefined ? done : this.nonceRetrying(req, incoming, res, path, session, entry, hasBody, mayRetry, resend, settle, nonceRetry, call, done, waitUntil ?? performance.now() + this.api.timeoutMs);
    try {
      this.pool.dispatch(
        {
          path,
          method: req.method as Dispatcher.HttpMethod,
          headers,
          body: hasBody ? req : null,
          // With a body, undici's own wait for the answer, which it restarts once the body is sent: an upload may take
          // longer than `timeout` (the browser sends it), the answer to it may not.
          headersTimeout: hasBody ? this.api.timeoutMs : null,
          // An event stream (EventSource asks for one) may be quiet for as long as it likes, unless configured otherwise.
          bodyTimeout: incoming.accept?.includes('text/event-stream') ? this.api.eventStreamTimeoutMs : null,
        },
        // A replay waits until its first call's deadline, kept by `deadlines` to the answer's start whatever the pool does.
        new ForwardHandler(res, mayRetry, finish, this.streams, session, this.api.audience, proofs?.rememberNonce, this.deadlines, waitUntil === undefined && (hasBody || this.poolTimesAnswers), waitUntil),
      );
    } catch (error) {
      done({ kind: 'failed', error: error as Error }, 0);
    }
  }

  /**
   * With DPoP: an answer that asks for a nonce, or refuses the proof, sends the request again with a new proof,
   * once (see `forward`), within the time the first call had: `waitUntil`.
   */
  private nonceRetrying(req: ServerRequest, incoming: IncomingHttpHeaders, res: ServerResponse, path: string, session: LoadedSession | undefined, entry: AccessTokenEntry | undefined, hasBody: boolean, mayRetry: boolean, resend: number, settle: Settle, nonceRetry: boolean, call: ProxyCall | undefined, done: Settle, waitUntil: number): Settle {
    return (outcome, status) => {
      if (outcome.kind !== 'retry' || outcome.reason === 'invalid_token') return done(outcome, status);
      call?.end(status, undefined);
      // Once, and like a token renewal only when replaying cannot do harm: a body was streamed away already.
      if (nonceRetry && !hasBody && REPLAYABLE.has(req.method)) return this.forward(req, incoming, res, path, session, entry, false, mayRetry, resend + 1, settle, false, waitUntil);
      settle({ kind: 'failed', error: outcome.reason === 'use_dpop_nonce' ? nonceRequired() : proofRefused() }, status);
    };
  }

  /** An upstream request is over: a failure before the answer gets an error answer; one during it, a report. */
  private settled(res: ServerResponse, outcome: ForwardOutcome): void {
    if (outcome.kind === 'failed') this.fail(res, outcome.error);
    else if (outcome.kind === 'broken') this.report.upstreamFailed(upstreamError(outcome.error), this.api.mount, this.sessionRefOf(res), true);
  }

  private fail(res: ServerResponse, error: unknown): void {
    const failure = upstreamError(error);
    // The session's reference, for failures an operator looks into (not for 4xx answers, which are the caller's).
    sendError(res, failure, this.report, { operation: 'api', api: this.api.mount, sessionRef: failure.status >= 500 ? this.sessionRefOf(res) : undefined });
  }

  private sessionRefOf(res: ServerResponse): string | undefined {
    const id = this.sessions.idOf(res.req);
    return id === undefined ? undefined : sessionRef(id);
  }

  close(): Promise<void> {
    // The deadlines' timer stays: calls still in flight keep their limit while the pool waits for them.
    return this.pool.close();
  }
}

/** How a forwarded call reports how it ended, with the upstream's status (0 when it never answered). */
type Settle = (outcome: ForwardOutcome, status: number) => void;

/** `settle`, ending the call's span first. */
function endingSpan(call: ProxyCall, settle: Settle): Settle {
  return (outcome, status) => {
    call.end(status, outcome.kind === 'gone' ? 'aborted' : outcome.kind === 'failed' || outcome.kind === 'broken' ? causeName(outcome.error) : undefined);
    settle(outcome, status);
  };
}

function hasBody(headers: IncomingHttpHeaders): boolean {
  const length = headers['content-length'];
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Whether something before the BFF read the request's body: body-parser (`express.json()`, `express.urlencoded()`)
 * marks the request `_body`; any other reader leaves the stream ended. Checked for requests with a body only.
 */
function bodyAlreadyRead(req: ServerRequest): boolean {
  return req.readableEnded || (req as { _body?: unknown })._body === true;
}

/** One error for every such request: a configuration error is logged once per error (see Reporter.requestFailed). */
const BODY_ALREADY_READ = new BffError(
  ErrorCode.CONFIGURATION_ERROR,
  'The request body was already read: a body parser ran before the BFF. Mount it after app.use(bff), or only on your own routes.',
);

const nonceRequired = (): BffError => new BffError(
  ErrorCode.UPSTREAM_NONCE_REQUIRED,
  'The API asked for a DPoP nonce and did not process the request; it can be sent again now.',
  { retryAfter: 0 },
);

/**
 * The API refused the BFF's DPoP proofs (`invalid_dpop_proof`), a fresh one too: a 502, reported with the cause
 * `INVALID_DPOP_PROOF`, as the API's own fault or the deployment's (the URL the API sees, its clock), never the
 * session's.
 */
const proofRefused = (): BffError => new BffError(
  ErrorCode.UPSTREAM_UNAVAILABLE,
  'The API refused the DPoP proof: check that it sees the URL the BFF signs (the API\'s upstream) and that its clock is right.',
  { cause: Object.assign(new Error('invalid_dpop_proof'), { code: 'INVALID_DPOP_PROOF' }) },
);

function upstreamError(error: unknown): BffError {
  if (error instanceof BffError) return error;
  if (error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.ConnectTimeoutError || error instanceof undiciErrors.BodyTimeoutError) {
    return new BffError(ErrorCode.UPSTREAM_TIMEOUT, 'The API did not answer in time.', { cause: error });
  }
  // An answer that is not HTTP (a control character in a header, a Content-Length that is no number): undici's
  // parser errors are no UndiciError.
  if (error instanceof undiciErrors.UndiciError || error instanceof undiciErrors.HTTPParserError || isSocketError(error)) {
    return new BffError(ErrorCode.UPSTREAM_UNAVAILABLE, 'The API could not be reached.', { cause: error });
  }
  return toBffError(error);
}

function isSocketError(error: unknown): boolean {
  const code = (error as { code?: string } | undefined)?.code;
  return typeof code === 'string' && /^(ECONN|EPIPE|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EAI_)/.test(code);
}
