/**
 * OpenTelemetry for the example, when asked for: traces to an OTLP collector (OTEL_EXPORTER_OTLP_ENDPOINT) and
 * metrics for Prometheus to scrape (METRICS_PORT). The SDK is started here, before the BFF is created, and
 * registered globally: the BFF finds it by itself. The SDK packages are loaded only when one of the two is set.
 */
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { TelemetryConfig } from '../src/config/example-env.js';

export interface RunningTelemetry {
  /** Where Prometheus scrapes, when metrics are on. */
  readonly metricsUrl: string | undefined;
  /** Sends what is still buffered, stops the exporters and unregisters the SDK. */
  shutdown(): Promise<void>;
}

/**
 * Starts the OpenTelemetry SDK: a tracer provider exporting in batches over OTLP/HTTP, and a meter provider read by
 * a Prometheus exporter. Returns undefined when neither is configured (the BFF then records nothing at all).
 *
 * @example
 * ```ts
 * const telemetry = await startTelemetry({ otlpEndpoint: 'http://127.0.0.1:4318', metricsPort: 9464, serviceName: 'bff' });
 * const bff = createBff({ ... }); // after: the BFF decides once, when it is created, whether an SDK is there
 * ```
 */
export async function startTelemetry(config: TelemetryConfig, host?: string): Promise<RunningTelemetry | undefined> {
  if (config.otlpEndpoint === undefined && config.metricsPort === undefined) return undefined;
  const { resourceFromAttributes } = await import('@opentelemetry/resources');
  const resource = resourceFromAttributes({ 'service.name': config.serviceName });
  const stopTracing = config.otlpEndpoint === undefined ? undefined : await startTracing(config.otlpEndpoint, resource);
  let metricsOn: { url: string; stop(): Promise<void> } | undefined;
  try {
    metricsOn = config.metricsPort === undefined ? undefined : await startMetrics(config.metricsPort, resource, host);
  } catch (error) {
    await stopTracing?.();
    throw error;
  }
  return {
    metricsUrl: metricsOn?.url,
    shutdown: async () => {
      await metricsOn?.stop();
      await stopTracing?.();
    },
  };
}

/** Spans are exported in batches over OTLP/HTTP (JSON) to `<endpoint>/v1/traces`. */
async function startTracing(endpoint: string, resource: Resource): Promise<() => Promise<void>> {
  const { BatchSpanProcessor, NodeTracerProvider } = await import('@opentelemetry/sdk-trace-node');
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
  const exporter = new OTLPTraceExporter({ url: new URL('v1/traces', endpoint.endsWith('/') ? endpoint : `${endpoint}/`).href });
  const tracerProvider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(exporter)] });
  // Also registers the context manager (spans nest across awaits) and the W3C Trace Context propagator.
  tracerProvider.register();
  return async () => {
    await tracerProvider.shutdown();
    trace.disable();
    context.disable();
    propagation.disable();
  };
}

/** A Prometheus scrape endpoint, `http://<host>:<port>/metrics`, read when Prometheus asks. */
async function startMetrics(port: number, resource: Resource, host: string | undefined): Promise<{ url: string; stop(): Promise<void> }> {
  const { MeterProvider } = await import('@opentelemetry/sdk-metrics');
  const { PrometheusExporter } = await import('@opentelemetry/exporter-prometheus');
  const exporter = await new Promise<InstanceType<typeof PrometheusExporter>>((resolve, reject) => {
    const started: InstanceType<typeof PrometheusExporter> = new PrometheusExporter(
      { port, ...(host === undefined ? {} : { host }) },
      (error) => (error ? reject(new Error(`METRICS_PORT ${port} could not be opened: ${error.message}`, { cause: error })) : resolve(started)),
    );
  });
  const meterProvider = new MeterProvider({ resource, readers: [exporter] });
  metrics.setGlobalMeterProvider(meterProvider);
  return {
    url: `http://${host ?? 'localhost'}:${port}/metrics`,
    stop: async () => {
      await meterProvider.shutdown();
      metrics.disable();
    },
  };
}
