import { isSpanContextValid, propagation, trace, type Context } from '@opentelemetry/api';

/**
 * Puts the trace context of `ctx` (the proxied call's span) into the upstream request's headers, replacing any the
 * browser sent. The app's propagator is used when one is registered (an SDK registers W3C Trace Context and
 * Baggage by default); otherwise the W3C `traceparent` (and `tracestate`) headers are written here.
 *
 * No baggage goes: an app's HTTP server instrumentation puts the browser's `baggage` header into the request's
 * context, from where the propagator would write it back toward the API, as entries the BFF vouches for
 * (`tenant=admin`). The BFF is the edge that drops it, whoever put it in the context.
 */
export function injectTraceContext(ctx: Context, headers: Record<string, string | string[]>): void {
  const fields = propagation.fields();
  if (fields.length > 0) {
    for (const field of fields) delete headers[field];
    propagation.inject(propagation.deleteBaggage(ctx), headers);
    return;
  }
  delete headers.traceparent;
  delete headers.tracestate;
  const span = trace.getSpanContext(ctx);
  if (span === undefined || !isSpanContextValid(span)) return;
  // W3C Trace Context, version 00: `00-<trace id>-<parent id>-<flags>`.
  headers.traceparent = `00-${span.traceId}-${span.spanId}-${(span.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
  const state = span.traceState?.serialize();
  if (state) headers.tracestate = state;
}
