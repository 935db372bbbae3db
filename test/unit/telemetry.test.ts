import { context, metrics, propagation, trace, TraceFlags, type SpanContext } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { describe, expect, it } from 'vitest';
import { RepeatFilter } from '../../src/events/repeats.js';
import { injectTraceContext } from '../../src/telemetry/propagation.js';
import { resolveProviders } from '../../src/telemetry/providers.js';
import { ProxyTelemetry, redactQuery } from '../../src/telemetry/proxy-call.js';
import { waitFor } from '../support/harness.js';

// The tests run in order: first with the API alone (as an app without an SDK), then with providers registered.
describe('deciding once whether OpenTelemetry is on', () => {
  it('is off with @opentelemetry/api alone: no tracer, no meter, so the hot path makes no call at all', () => {
    expect(resolveProviders({})).toEqual({ tracer: undefined, meter: undefined });
  });

  it('uses providers passed in, without any global registration', () => {
    const { tracer, meter } = resolveProviders({ tracerProvider: new NodeTracerProvider(), meterProvider: new MeterProvider() });
    expect(tracer).toBeDefined();
    expect(meter).toBeDefined();
  });

  it('uses the providers an SDK registered globally, unless telemetry is false', () => {
    new NodeTracerProvider().register();
    metrics.setGlobalMeterProvider(new MeterProvider());
    const { tracer, meter } = resolveProviders({});
    expect(tracer).toBeDefined();
    expect(meter).toBeDefined();
    expect(resolveProviders(false)).toEqual({ tracer: undefined, meter: undefined });
  });
});

describe('passing the trace context to the upstream', () => {
  const span: SpanContext = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: TraceFlags.SAMPLED };
  const ctx = trace.setSpanContext(context.active(), span);

  it('writes a W3C traceparent when the app registered no propagator, replacing the browser\'s and its tracestate', () => {
    propagation.disable();
    const headers: Record<string, string | string[]> = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'vendor=browser', accept: 'application/json' };
    injectTraceContext(ctx, headers);
    expect(headers).toEqual({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', accept: 'application/json' });
  });

  it('uses the registered propagator when there is one', () => {
    new NodeTracerProvider().register(); // registers W3C Trace Context and Baggage
    const headers: Record<string, string | string[]> = {};
    injectTraceContext(ctx, headers);
    expect(headers.traceparent).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
  });

  it('sends no baggage, also when the app\'s HTTP instrumentation put the browser\'s into the request\'s context', () => {
    new NodeTracerProvider().register();
    // What HTTP server instrumentation does with the browser's `baggage: tenant=admin` header.
    const withBaggage = propagation.setBaggage(ctx, propagation.createBaggage({ tenant: { value: 'admin' } }));
    const headers: Record<string, string | string[]> = { baggage: 'tenant=admin' };
    injectTraceContext(withBaggage, headers);
    expect(headers.traceparent).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    expect(headers.baggage).toBeUndefined();
  });
});

describe('the url.full of a proxied call', () => {
  it.each([
    ['/v1/items', '/v1/items'],
    ['/v1/items?email=alice@example.com&flag', '/v1/items?email=REDACTED&REDACTED'],
    ['/search?q=a%20b&sig=abc&page=2', '/search?q=REDACTED&sig=REDACTED&page=REDACTED'],
    ['/reset?eyJhbGciOiJIUzI1NiJ9.secret-token', '/reset?REDACTED'],
    ['/v1/items?&a=1&', '/v1/items?&a=REDACTED&'],
  ])('keeps the query keys of %s but none of its values (a part without "=" may be a value alone)', (path, expected) => {
    expect(redactQuery(path)).toBe(expected);
  });
});

describe('a fault that repeats', () => {
  it('is logged once, then counted, and the count is logged when its window closes', async () => {
    const filter = new RepeatFilter(50);
    const summaries: number[] = [];
    const admitted = Array.from({ length: 5 }, () => filter.admit('store:api:ECONNREFUSED', (held) => summaries.push(held)));
    expect(admitted).toEqual([true, false, false, false, false]);
    expect(filter.admit('store:user:ECONNREFUSED', () => {})).toBe(true);
    await waitFor(() => summaries.length > 0, 'the window closes');
    expect(summaries).toEqual([4]);
    expect(filter.admit('store:api:ECONNREFUSED', () => {})).toBe(true);
    filter.close();
  });
});

describe('the upstream request\'s attributes', () => {
  it('names an IPv6 upstream by its address, without the URL\'s brackets, and a host by its name', () => {
    const exporter = new InMemorySpanExporter();
    const tracer = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer('test');
    for (const upstream of ['http://[::1]:8080/v1', 'https://api.example.com/v1']) {
      new ProxyTelemetry({ mount: '/api', upstream: new URL(upstream) }, tracer, undefined).start('GET', '/items', {}, 0).end(200, undefined);
    }
    expect(exporter.getFinishedSpans().map((span) => [span.attributes['server.address'], span.attributes['server.port']])).toEqual([['::1', 8080], ['api.example.com', 443]]);
  });
});
