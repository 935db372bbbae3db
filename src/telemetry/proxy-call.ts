import { context, SpanKind, trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import type { Instruments } from './instruments.js';
import { ATTR } from './names.js';
import { injectTraceContext } from './propagation.js';
import { endSpan } from './spans.js';

/** semconv: methods outside this set are recorded as `_OTHER` (an unbounded value would explode the metric). */
const KNOWN_METHODS = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'QUERY', 'TRACE']);

/**
 * Telemetry of one API's proxied calls, following the HTTP client semantic conventions: a CLIENT span per request
 * sent upstream (a replay after a renewed token is a second one, with `http.request.resend_count`), whose context
 * travels to the upstream in `traceparent`, and the `http.client.request.duration` histogram. Made only when a
 * tracer or a meter is there: without them the proxy never reaches this code.
 */
export class ProxyTelemetry {
  private readonly base: Attributes;
  private readonly origin: string;

  constructor(
    api: { readonly mount: string; readonly upstream: URL },
    private readonly tracer: Tracer | undefined,
    private readonly instruments: Instruments | undefined,
  ) {
    const { upstream } = api;
    this.origin = upstream.origin;
    const port = upstream.port === '' ? (upstream.protocol === 'https:' ? 443 : 80) : Number(upstream.port);
    // An IPv6 address as itself (semconv's server.address), not in the URL's brackets.
    const address = upstream.hostname.startsWith('[') ? upstream.hostname.slice(1, -1) : upstream.hostname;
    this.base = { [ATTR.SERVER_ADDRESS]: address, [ATTR.SERVER_PORT]: port, [ATTR.BFF_API]: api.mount };
  }

  /** Starts one upstream request: its span (whose context goes into `headers`) and its clock. */
  start(method: string, path: string, headers: Record<string, string | string[]>, resendCount: number): ProxyCall {
    const known = KNOWN_METHODS.has(method) ? method : '_OTHER';
    let span: Span | undefined;
    if (this.tracer) {
      const attributes: Attributes = { ...this.base, [ATTR.HTTP_REQUEST_METHOD]: known, [ATTR.URL_FULL]: `${this.origin}${redactQuery(path)}` };
      if (known === '_OTHER') attributes[ATTR.HTTP_REQUEST_METHOD_ORIGINAL] = method;
      if (resendCount > 0) attributes[ATTR.HTTP_REQUEST_RESEND_COUNT] = resendCount;
      const parent = context.active();
      span = this.tracer.startSpan(known === '_OTHER' ? 'HTTP' : known, { kind: SpanKind.CLIENT, attributes }, parent);
      injectTraceContext(trace.setSpan(parent, span), headers);
    }
    return new ProxyCall(this.base, known, span, this.instruments, performance.now());
  }
}

export class ProxyCall {
  constructor(
    private readonly base: Attributes,
    private readonly method: string,
    private readonly span: Span | undefined,
    private readonly instruments: Instruments | undefined,
    private readonly startedAt: number,
  ) {}

  /**
   * The request is over: `status` is the upstream's (0 when none came), `failure` names what went wrong when the
   * request failed or was broken off (semconv `error.type`; a 4xx/5xx answer's is its status code).
   */
  end(status: number, failure: string | undefined): void {
    const errorType = failure ?? (status >= 400 ? String(status) : undefined);
    const attributes: Attributes = { ...this.base, [ATTR.HTTP_REQUEST_METHOD]: this.method };
    if (status > 0) attributes[ATTR.HTTP_RESPONSE_STATUS_CODE] = status;
    if (errorType !== undefined) attributes[ATTR.ERROR_TYPE] = errorType;
    this.instruments?.proxyDuration.record((performance.now() - this.startedAt) / 1000, attributes);
    if (this.span) endSpan(this.span, errorType, status > 0 ? { [ATTR.HTTP_RESPONSE_STATUS_CODE]: status } : undefined);
  }
}

/**
 * The SPA's query string may carry personal data the BFF cannot recognise: every value is replaced by
 * `REDACTED`, the keys are kept (semconv's form for redacted query values of `url.full`). A part without `=` may
 * be a value alone (`/reset?<a magic link's token>`): it is replaced whole.
 */
export function redactQuery(path: string): string {
  const q = path.indexOf('?');
  if (q < 0) return path;
  const query = path.slice(q + 1).split('&').map((pair) => {
    const eq = pair.indexOf('=');
    if (eq < 0) return pair === '' ? pair : 'REDACTED';
    return `${pair.slice(0, eq)}=REDACTED`;
  });
  return `${path.slice(0, q)}?${query.join('&')}`;
}
