import { context, SpanKind, SpanStatusCode, trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { ATTR } from './names.js';

/** Spans this library started and made active: only those get the annotations of what happened inside them. */
const ours = new WeakSet<Span>();

/** Ends a span; with an `errorType`, as failed (semconv: `error.type` and an Error status). */
export function endSpan(span: Span, errorType?: string, attributes?: Attributes): void {
  if (attributes) span.setAttributes(attributes);
  if (errorType !== undefined) {
    span.setAttribute(ATTR.ERROR_TYPE, errorType);
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
  span.end();
}

/** Runs `work` with a new internal span active (so that what happens inside can annotate it and nest under it). */
export function inSpan<T>(tracer: Tracer, name: string, attributes: Attributes, work: (span: Span) => T): T {
  const span = tracer.startSpan(name, { kind: SpanKind.INTERNAL, attributes }, context.active());
  ours.add(span);
  return context.with(trace.setSpan(context.active(), span), () => work(span));
}

/** The active span, when this library started it (never the app's or an instrumentation's server span). */
export function ownActiveSpan(): Span | undefined {
  const span = trace.getSpan(context.active());
  return span !== undefined && ours.has(span) ? span : undefined;
}

/**
 * A middleware that puts the rest of a route in a span, ended with the answer: an Error status for a 4xx or 5xx
 * answer (whose JSON error code becomes `error.type`: the error answer sets it), and `error.type` `aborted` when
 * the browser left before the whole answer was sent. Without a tracer, none is made.
 */
export function routeSpan(tracer: Tracer | undefined, name: string): RequestHandler | undefined {
  if (tracer === undefined) return undefined;
  return function traced(_req: Request, res: Response, next: NextFunction): void {
    inSpan(tracer, name, {}, (span) => {
      res.once('close', () => {
        // The browser left before the answer was sent, or while it was: no status reached it (or not all of it).
        if (res.headersSent) {
          span.setAttribute(ATTR.HTTP_RESPONSE_STATUS_CODE, res.statusCode);
          if (res.statusCode >= 400) span.setStatus({ code: SpanStatusCode.ERROR });
        }
        endSpan(span, res.writableFinished ? undefined : 'aborted');
      });
      next();
    });
  };
}
