import type { Span } from '@opentelemetry/api';
import { BffError } from '../errors.js';
import { ATTR, SPAN } from '../telemetry/names.js';
import { endSpan, inSpan } from '../telemetry/spans.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import type { Log } from './logger.js';

/** How a request got its renewed token: it made the exchange, shared one under way here, or waited for another process's. */
export type SingleFlightRole = 'led' | 'joined' | 'waited';

/**
 * One request's wait for a renewed access token, as an operator sees it: debug lines (started, joined, waiting
 * for another process's lock, took a token another process stored), a span with the single-flight role, and
 * the renewals counter by role. Made only when a token is expiring (or was refused), never on the hot path.
 */
export class Renewal {
  private span: Span | undefined;

  constructor(
    private readonly log: Log,
    private readonly telemetry: Telemetry,
    private readonly sessionRef: string,
    private readonly audience: string,
    private role: SingleFlightRole,
    forced: boolean,
  ) {
    const details = { sessionRef, audience };
    if (role === 'joined') log.debug('Joined the token exchange under way for this session', details);
    else log.debug(forced ? 'Token exchange started: the API refused the access token' : 'Token exchange started: the access token is expiring', details);
  }

  /** Runs this request's exchange (lock, Auth0, store) with the renewal's span active, so that what happens inside nests under it. */
  run<T>(exchange: () => Promise<T>): Promise<T> {
    const { tracer } = this.telemetry;
    if (tracer === undefined) return this.settleWith(exchange());
    return inSpan(tracer, SPAN.TOKEN_RENEWAL, this.attributes(), (span) => {
      this.span = span;
      return this.settleWith(exchange());
    });
  }

  /** A request that joined an exchange under way: its answer is that exchange's. */
  follow<T>(exchange: Promise<T>): Promise<T> {
    if (this.telemetry.tracer === undefined && this.telemetry.instruments === undefined) return exchange;
    if (this.telemetry.tracer !== undefined) this.span = this.telemetry.tracer.startSpan(SPAN.TOKEN_RENEWAL, { attributes: this.attributes() });
    return this.settleWith(exchange);
  }

  /** Another process holds the session's exchange lock: this request waits for the token it will store. */
  waiting(): void {
    if (this.role === 'waited') return;
    this.role = 'waited';
    this.span?.setAttribute(ATTR.BFF_SINGLE_FLIGHT, 'waited');
    this.log.debug('Waiting for the token exchange that another process holds the lock for', { sessionRef: this.sessionRef, audience: this.audience });
  }

  /** The API refused a token that a forced renewal gave a short while ago: it is taken back, and nothing exchanged. */
  declined(): void {
    this.log.debug('No token exchange: the API refused the token a forced renewal just gave; its answer stands', { sessionRef: this.sessionRef, audience: this.audience });
  }

  /** A fresh token that another process stored is taken instead of exchanging. */
  tookStored(): void {
    this.log.debug('Took the token another process stored', { sessionRef: this.sessionRef, audience: this.audience });
  }

  private attributes() {
    return { [ATTR.BFF_SINGLE_FLIGHT]: this.role, [ATTR.BFF_AUDIENCE]: this.audience, [ATTR.BFF_SESSION_REF]: this.sessionRef };
  }

  private settleWith<T>(exchange: Promise<T>): Promise<T> {
    if (this.telemetry.tracer === undefined && this.telemetry.instruments === undefined) return exchange;
    return exchange.then(
      (value) => {
        this.end(undefined);
        return value;
      },
      (error: unknown) => {
        this.end(error instanceof BffError ? error.code : 'Error');
        throw error;
      },
    );
  }

  private end(errorType: string | undefined): void {
    this.telemetry.instruments?.renewals.add(1, { [ATTR.BFF_SINGLE_FLIGHT]: this.role });
    if (this.span) endSpan(this.span, errorType);
  }
}
