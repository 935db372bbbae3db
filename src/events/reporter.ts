import { SpanStatusCode, type Attributes } from '@opentelemetry/api';
import { BffError, ErrorCode } from '../errors.js';
import { markLogged, wasLogged } from '../http/json-error.js';
import { countedErrorType, oauthErrorCode, type ClassifiedFailure } from '../idp/failures.js';
import { ATTR } from '../telemetry/names.js';
import { ownActiveSpan } from '../telemetry/spans.js';
import { NO_TELEMETRY, type Telemetry } from '../telemetry/telemetry.js';
import type { BffEventEmitter, LogoutReason, BffOperation } from './events.js';
import type { Log } from './logger.js';
import { Renewal } from './renewal.js';
import { RepeatFilter, RepeatedLines } from './repeats.js';

/** Who a token exchange was for. */
export interface ExchangeSubject {
  readonly sub: string;
  readonly sid: string | undefined;
  readonly sessionRef: string;
  readonly audience: string;
}

/** What a logout ended: how many BFF sessions, and whose. */
export interface Ended {
  readonly sessions: number;
  readonly sub: string | undefined;
  readonly sid: string | undefined;
}

/** Where a request failed, for the log line and the event. */
export interface FailedRequest {
  readonly operation: BffOperation;
  /** The API's mount path, for API calls. */
  readonly api?: string;
  readonly sessionRef?: string | undefined;
}

/**
 * The one place that turns what happened into what an operator sees: the typed event, the log line (each
 * failure once, with what it takes to act on it, never a token), the metric, and an annotation of the span
 * under way. The rest of the BFF calls one method per happening.
 */
export class Reporter {
  constructor(
    readonly events: BffEventEmitter,
    private readonly log: Log,
    private readonly telemetry: Telemetry = NO_TELEMETRY,
    repeats = new RepeatFilter(),
  ) {
    this.lines = new RepeatedLines(log, repeats);
    // By its class only, as for every unexpected error: its message could carry anything. A listener that fails on
    // every event (its database down) is logged the first time, then counted.
    events.listenerFailed = (name, error) => {
      const cause = causeName(error);
      this.lines.error(`listener:${name}:${cause}`, 'A listener of a BFF event threw; the BFF went on', { event: name, error: cause });
    };
  }

  /** Log lines of faults that repeat (a store or an API down): each kind logged the first time, then counted. */
  readonly lines: RepeatedLines;

  close(): void {
    this.lines.close();
  }

  login(who: { sub: string; sid: string | undefined; sessionRef: string }): void {
    this.events.emit('login', who);
    this.log.debug('Logged in', { sessionRef: who.sessionRef, sub: who.sub });
    this.telemetry.instruments?.logins.add(1);
    this.annotate({ [ATTR.BFF_SESSION_REF]: who.sessionRef });
  }

  /**
   * A full logout. One that found nothing left to end is no logout: the sessions ended already, for example
   * when Auth0 sends a back-channel logout because this BFF revoked the session itself.
   */
  logout(reason: LogoutReason, ended: Ended, extra: { revoked?: boolean } = {}): void {
    const { sessions, sub, sid } = ended;
    this.annotate({ [ATTR.BFF_LOGOUT_REASON]: reason, [ATTR.BFF_LOGOUT_SESSIONS]: sessions, ...(extra.revoked === undefined ? {} : { [ATTR.BFF_LOGOUT_REVOKED]: extra.revoked }) });
    if (sessions === 0) {
      this.log.debug('Logout found no session left to end: it ended already', { reason, sub });
      return;
    }
    this.events.emit('logout', { reason, sub, sid, sessions, ...(extra.revoked === undefined ? {} : { revoked: extra.revoked }) });
    this.log.debug(`Session ended: ${LOGOUT_WHY[reason]}`, { reason, sessions, sub, ...extra });
    this.telemetry.instruments?.logouts.add(1, { [ATTR.BFF_LOGOUT_REASON]: reason });
  }

  /** A request needs a renewed token: what it does until it has one (see Renewal). */
  renewal(sessionRef: string, audience: string, role: 'led' | 'joined', forced: boolean): Renewal {
    return new Renewal(this.log, this.telemetry, sessionRef, audience, role, forced);
  }

  /**
   * Auth0 answered a token request with a token (`requestMs`: that request): counted as a success whatever happens
   * to the token next (its store may fail; a token for another API is refused, see `tokenRefused`).
   */
  tokenAnswered(audience: string, requestMs: number): void {
    this.telemetry.instruments?.exchangeDuration.record(requestMs / 1000, { [ATTR.BFF_EXCHANGE_OUTCOME]: 'success', [ATTR.BFF_AUDIENCE]: audience });
  }

  /**
   * Auth0 answered with a token the BFF refuses (`audience_mismatch`: for another API): a configuration failure of
   * the token request, as its metric and span say; its log line is the audience check's, once per API.
   */
  tokenRefused(who: ExchangeSubject, error: 'audience_mismatch', requestMs: number): void {
    this.events.emit('refresh_failed', { ...who, kind: 'configuration', error });
    this.telemetry.instruments?.exchangeDuration.record(requestMs / 1000, { [ATTR.BFF_EXCHANGE_OUTCOME]: 'configuration', [ATTR.ERROR_TYPE]: error, [ATTR.BFF_AUDIENCE]: who.audience });
    if (this.telemetry.tracer !== undefined) ownActiveSpan()?.addEvent('exchange failed', { [ATTR.BFF_EXCHANGE_OUTCOME]: 'configuration', [ATTR.ERROR_TYPE]: error });
  }

  /** An exchange gave a token, now stored: `durationMs` with its retries. */
  refreshed(who: ExchangeSubject, expiresIn: number, durationMs: number): void {
    this.events.emit('refresh', { ...who, expiresIn, durationMs });
    this.log.debug('Token exchange finished', { sessionRef: who.sessionRef, audience: who.audience, durationMs, expiresIn });
  }

  /** One token request to Auth0 failed; `failure` says what that means for the session. */
  refreshFailed(who: ExchangeSubject, failure: ClassifiedFailure, durationMs: number): void {
    const { kind, error, status } = failure;
    this.events.emit('refresh_failed', { ...who, kind, error, ...(status === undefined ? {} : { status }) });
    this.telemetry.instruments?.exchangeDuration.record(durationMs / 1000, { [ATTR.BFF_EXCHANGE_OUTCOME]: kind, [ATTR.ERROR_TYPE]: countedErrorType(error), [ATTR.BFF_AUDIENCE]: who.audience });
    if (this.telemetry.tracer !== undefined) ownActiveSpan()?.addEvent('exchange failed', { [ATTR.BFF_EXCHANGE_OUTCOME]: kind, [ATTR.ERROR_TYPE]: error, ...(status === undefined ? {} : { [ATTR.HTTP_RESPONSE_STATUS_CODE]: status }) });
    const details = { error, status, audience: who.audience, sessionRef: who.sessionRef };
    if (kind === 'terminal') {
      this.log.debug('Auth0 refused the refresh token: the Auth0 session is over', details);
    } else if (kind === 'transient') {
      this.lines.warn(`refresh:${error}:${status}`, 'Auth0 failed a token exchange; retrying within the exchange deadline, then 503', details);
    } else {
      this.lines.error(`refresh-config:${error}:${status}`, 'Auth0 refused the token exchange: check the client credentials, audience and scopes', details);
    }
  }

  /** The BFF application got its own token for an API (client credentials). */
  clientTokenIssued(audience: string, expiresIn: number, durationMs: number): void {
    this.events.emit('client_token', { audience, expiresIn, durationMs });
    this.log.debug('Application token issued', { audience, durationMs, expiresIn });
  }

  /**
   * A client-credentials request failed. Transient failures are retried (then 503) and logged as exchange failures
   * are; a refusal is logged by the caller, which knows when a run of them starts and ends.
   */
  clientTokenFailed(audience: string, kind: 'transient' | 'configuration', failure: Pick<ClassifiedFailure, 'error' | 'status'>): void {
    const { error, status } = failure;
    this.events.emit('client_token_failed', { audience, kind, error, ...(status === undefined ? {} : { status }) });
    if (kind === 'transient') this.lines.warn(`client-token:${error}:${status}`, 'Auth0 failed a client-credentials request; retrying within the exchange deadline, then 503', { audience, error, status });
  }

  /** The error a configuration failure answers with; it is logged where it was found, so the answer logs nothing more. */
  configurationError(description: string): BffError {
    const error = new BffError(ErrorCode.CONFIGURATION_ERROR, description);
    markLogged(error);
    return error;
  }

  revocationFailed(who: { sub: string | undefined; sid: string | undefined; sessionRef: string }, failure: ClassifiedFailure): void {
    const { error, status } = failure;
    this.events.emit('revocation_failed', { ...who, error, ...(status === undefined ? {} : { status }) });
    this.log.warn('Could not revoke the refresh token at Auth0; the user is logged out locally', { sessionRef: who.sessionRef, error, status });
  }

  backchannelRejected(description: string): void {
    this.events.emit('backchannel_logout_rejected', { error: description });
    this.lines.warn(`backchannel:${description}`, 'Refused a back-channel logout', { error: description });
  }

  /** The upstream did not answer an API call, answered too late, or broke off its answer (`broken`). */
  upstreamFailed(error: BffError, api: string, sessionRef: string | undefined, broken = false): void {
    const code = error.code === ErrorCode.UPSTREAM_TIMEOUT ? ErrorCode.UPSTREAM_TIMEOUT : ErrorCode.UPSTREAM_UNAVAILABLE;
    const cause = causeName(error);
    this.events.emit('upstream_failed', { api, error: code, cause, sessionRef, ...(broken ? { broken } : {}) });
    this.telemetry.instruments?.upstreamErrors.add(1, { [ATTR.BFF_API]: api, [ATTR.ERROR_TYPE]: cause });
    const message = !broken ? 'The API could not be reached or did not answer in time'
      : cause === PING_TIMEOUT ? 'The API answered no ping on a quiet WebSocket: its connection was cut' : 'The API broke off its answer';
    this.lines.warn(`upstream:${api}:${cause}:${broken}`, message, { api, error: code, cause, sessionRef });
  }

  /**
   * The session store failed: a request's work (`answered`: it got 503), or work in the background (an idle roll, a
   * long connection's lifetime check), which is tried again later.
   */
  storeFailed(error: unknown, operation: BffOperation, sessionRef: string | undefined, answered = false): void {
    const cause = causeName(error);
    this.events.emit('store_failed', { operation, cause, sessionRef });
    this.telemetry.instruments?.storeErrors.add(1, { [ATTR.BFF_OPERATION]: operation, [ATTR.ERROR_TYPE]: cause });
    const message = answered
      ? 'The session store failed; the request got 503 and nobody was logged out'
      : 'The session store failed in background work, which is tried again later; nobody was logged out';
    this.lines.warn(`store:${operation}:${cause}`, message, { operation, cause, sessionRef });
  }

  /** A request is answered with an error: each kind of failure is reported once, by its code. */
  requestFailed(error: BffError, where: FailedRequest): void {
    // error.type and an Error status go together (semconv): also where the answer is no 4xx or 5xx (a silent
    // login's redirect back to the SPA).
    if (this.telemetry.tracer !== undefined) ownActiveSpan()?.setAttribute(ATTR.ERROR_TYPE, error.code).setStatus({ code: SpanStatusCode.ERROR });
    switch (error.code) {
      case ErrorCode.SERVER_ERROR: {
        if (wasLogged(error)) return;
        markLogged(error);
        const cause = error.cause as { name?: unknown; code?: unknown } | undefined;
        // The cause's message could carry anything: its class and code only.
        const details = {
          operation: where.operation,
          error: String(cause?.name ?? error.name),
          ...(cause?.code === undefined ? {} : { code: String(cause.code) }),
        };
        return this.lines.error(`server:${where.operation}:${causeName(error)}`, 'Unexpected failure while answering a request', details);
      }
      case ErrorCode.CONFIGURATION_ERROR:
        if (wasLogged(error)) return;
        markLogged(error);
        // Every login or call fails alike until the configuration is fixed; and a refusal in a callback's URL is
        // anyone's to send: the first of a kind (by its OAuth code, a few that name the application) is logged, the
        // rest counted.
        const code = oauthErrorCode((error.cause as { error?: unknown } | undefined)?.error) ?? '';
        return this.lines.error(`configuration:${where.operation}:${causeName(error)}:${code}`, error.message, { operation: where.operation });
      case ErrorCode.SESSION_STORE_UNAVAILABLE:
        return this.storeFailed(error, where.operation, where.sessionRef, true);
      case ErrorCode.UPSTREAM_UNAVAILABLE:
      case ErrorCode.UPSTREAM_TIMEOUT:
        return this.upstreamFailed(error, where.api ?? '', where.sessionRef);
      case ErrorCode.IDP_UNAVAILABLE:
        return this.lines.warn(`idp:${where.operation}:${causeName(error)}`, 'Auth0 could not be reached', { operation: where.operation, cause: causeName(error) });
      default:
        // 4xx answers, and 503 token_service_unavailable, whose exchange failures were logged as they happened.
        this.log.debug(`Answered ${error.status} ${error.code}`, { operation: where.operation, ...(where.sessionRef === undefined ? {} : { sessionRef: where.sessionRef }) });
    }
  }

  /**
   * A silent login came back without a session because Auth0 would have had to show the user a page
   * (`login_required` and its kin): the answer the SPA asked for, not a failure.
   */
  silentLoginDeclined(code: string): void {
    this.annotate({ [ATTR.BFF_LOGIN_SILENT_ANSWER]: code });
    this.log.debug(`Silent login came back without a session: ${code}`);
  }

  /** Adds attributes to this library's span under way (a route's, a renewal's), if tracing is on. */
  private annotate(attributes: Attributes): void {
    if (this.telemetry.tracer !== undefined) ownActiveSpan()?.setAttributes(attributes);
  }
}

const LOGOUT_WHY: Record<LogoutReason, string> = {
  user: 'the user logged out',
  session_ended: 'Auth0 refused the refresh token (the Auth0 session is over)',
  backchannel: 'Auth0 sent a back-channel logout',
  absolute_timeout: 'the session reached its absolute lifetime',
  idle_timeout: 'the session was idle too long',
  revoked: 'the app ended it (sessions.end)',
  replaced: 'the browser logged in again',
};

/** The cause of a WebSocket's upstream that answered no ping over a quiet interval (see realtime/tunnel.ts). */
export const PING_TIMEOUT = 'PING_TIMEOUT';

/**
 * A short, low-cardinality name of what went wrong underneath an error: a system or library error code
 * (`ECONNREFUSED`, `UND_ERR_HEADERS_TIMEOUT`), else the class name; `no_answer` when there is no cause (the store
 * was not connected, or did not answer in time).
 */
export function causeName(error: unknown): string {
  const cause = error instanceof BffError ? error.cause : error;
  if (cause === undefined || cause === null) return 'no_answer';
  const code = (cause as { code?: unknown }).code;
  if (typeof code === 'string' && /^[A-Z][A-Z0-9_]{1,40}$/.test(code)) return code;
  const name = (cause as { name?: unknown }).name;
  return typeof name === 'string' && /^\w{1,60}$/.test(name) ? name : 'Error';
}
