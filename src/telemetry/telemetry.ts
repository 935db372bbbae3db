import type { Tracer } from '@opentelemetry/api';
import { createInstruments, type Instruments } from './instruments.js';
import { resolveProviders, type TelemetryOptions } from './providers.js';
import { ProxyTelemetry } from './proxy-call.js';

/** The BFF's OpenTelemetry: each part undefined when nothing would receive it (no SDK, or `telemetry: false`). */
export interface Telemetry {
  readonly tracer: Tracer | undefined;
  readonly instruments: Instruments | undefined;
  /** The proxied calls' telemetry for one API, or undefined when there is neither a tracer nor a meter. */
  proxy(api: { readonly mount: string; readonly upstream: URL }): ProxyTelemetry | undefined;
}

/** No tracing, no metrics: what the BFF has without an OpenTelemetry SDK. */
export const NO_TELEMETRY: Telemetry = { tracer: undefined, instruments: undefined, proxy: () => undefined };

/** Resolves the providers once and makes the instruments; see `resolveProviders`. */
export function createTelemetry(options: TelemetryOptions | false, activeSessions: (() => number) | undefined): Telemetry {
  const { tracer, meter } = resolveProviders(options);
  if (tracer === undefined && meter === undefined) return NO_TELEMETRY;
  const instruments = meter === undefined ? undefined : createInstruments(meter, activeSessions);
  return { tracer, instruments, proxy: (api) => new ProxyTelemetry(api, tracer, instruments) };
}
