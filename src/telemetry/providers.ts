import { createRequire } from 'node:module';
import { createNoopMeter, metrics, trace, type Meter, type MeterProvider, type Tracer, type TracerProvider } from '@opentelemetry/api';
import { SCOPE } from './names.js';

/** What the app may pass as `telemetry`: `false` turns it off, providers replace the global ones. */
export interface TelemetryOptions {
  /** Default: the global tracer provider (`trace.setGlobalTracerProvider`, which an OpenTelemetry SDK calls). */
  tracerProvider?: TracerProvider;
  /** Default: the global meter provider (`metrics.setGlobalMeterProvider`). */
  meterProvider?: MeterProvider;
}

/** The tracer and meter the BFF records with; undefined when nothing would receive what it records. */
export interface Providers {
  readonly tracer: Tracer | undefined;
  readonly meter: Meter | undefined;
}

/** The package's version, for the instrumentation scope (none if the file is not where the package keeps it). */
const VERSION = ((): string | undefined => {
  try {
    return (createRequire(import.meta.url)('../../package.json') as { version?: string }).version;
  } catch {
    return undefined;
  }
})();

/**
 * Decided once, when the BFF is created: without an OpenTelemetry SDK (only `@opentelemetry/api`), tracing and
 * metrics are off, and the hot path does not make a single no-op call. An SDK must therefore be started before
 * `createBff()`, as OpenTelemetry asks of every instrumented library (its meters are bound when they are made).
 */
export function resolveProviders(options: TelemetryOptions | false): Providers {
  if (options === false) return { tracer: undefined, meter: undefined };
  const tracerProvider = options.tracerProvider ?? registeredTracerProvider();
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(SCOPE, VERSION);
  return {
    tracer: tracerProvider?.getTracer(SCOPE, VERSION),
    // The API answers with its shared no-op meter while no meter provider is registered.
    meter: meter === createNoopMeter() ? undefined : meter,
  };
}

/**
 * The API hands out a proxy provider whose tracers stay no-ops until an SDK registers a delegate; looking behind
 * it tells whether one did. (Duck-typed: the app's copy of the API may differ from this package's.)
 */
function registeredTracerProvider(): TracerProvider | undefined {
  const global = trace.getTracerProvider() as TracerProvider & { getDelegateTracer?(name: string): Tracer | undefined };
  if (typeof global.getDelegateTracer !== 'function') return global;
  return global.getDelegateTracer(SCOPE) === undefined ? undefined : global;
}
