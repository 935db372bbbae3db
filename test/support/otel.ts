import { metrics } from '@opentelemetry/api';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type DataPoint, type Histogram } from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-node';

/** A data point as the tests look at it: its attributes, and its value (a histogram's count and sum). */
export interface Point {
  attributes: Record<string, unknown>;
  value: number | { count: number; sum: number };
}

/**
 * The OpenTelemetry SDK registered globally, as an app does before creating the BFF (context manager, W3C
 * propagator, tracer and meter providers), recording into the SDK's in-memory exporters.
 */
export interface Otel {
  spans(name?: string): ReadableSpan[];
  /** Every data point of a metric, collected now (cumulative since the start). */
  points(metric: string): Promise<Point[]>;
  shutdown(): Promise<void>;
}

export function registerOtel(): Otel {
  const spanExporter = new InMemorySpanExporter();
  const tracerProvider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] });
  tracerProvider.register();
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  // Exports only when asked to (forceFlush): the interval is longer than any test.
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  metrics.setGlobalMeterProvider(meterProvider);
  return {
    spans: (name) => spanExporter.getFinishedSpans().filter((s) => name === undefined || s.name === name),
    async points(name) {
      metricExporter.reset();
      await reader.forceFlush();
      const found = metricExporter.getMetrics().flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics)).filter((m) => m.descriptor.name === name);
      return found.flatMap((m) => (m.dataPoints as Array<DataPoint<number | Histogram>>).map((p) => ({
        attributes: { ...p.attributes },
        value: typeof p.value === 'number' ? p.value : { count: p.value.count, sum: p.value.sum ?? 0 },
      })));
    },
    async shutdown() {
      await meterProvider.shutdown();
      await tracerProvider.shutdown();
    },
  };
}

/** The value of the one point whose attributes include `attributes` (0 when there is none). */
export function valueOf(points: Point[], attributes: Record<string, unknown> = {}): number {
  const matching = points.filter((p) => Object.entries(attributes).every(([k, v]) => p.attributes[k] === v));
  return matching.reduce((n, p) => n + (typeof p.value === 'number' ? p.value : p.value.count), 0);
}
