import { BffConfigError } from '../errors.js';
import { createLog, defaultLogger, defaultLogLevel, LOG_LEVELS, type Log, type Logger, type LogLevel } from '../events/logger.js';
import type { TelemetryOptions } from '../telemetry/providers.js';

/** `logger` and `logLevel`: the app's logger (or stderr), wrapped once for its argument order and the level. */
export function readLogger(value: Logger | undefined, level: LogLevel | undefined): Log {
  const logger = value ?? defaultLogger;
  if (typeof logger?.warn !== 'function' || typeof logger?.error !== 'function') throw new BffConfigError('logger', 'must have warn() and error() methods (console fits)');
  const threshold = level ?? defaultLogLevel(logger);
  if (!LOG_LEVELS.includes(threshold)) throw new BffConfigError('logLevel', `must be one of ${LOG_LEVELS.map((l) => `"${l}"`).join(', ')}`);
  return createLog(logger, threshold);
}

/** `telemetry`: `false`, or providers to use instead of the global ones. */
export function readTelemetry(value: unknown): TelemetryOptions | false {
  if (value === undefined) return {};
  if (value === false) return false;
  if (value === null || typeof value !== 'object') throw new BffConfigError('telemetry', 'must be false or { tracerProvider?, meterProvider? }');
  const { tracerProvider, meterProvider } = value as TelemetryOptions;
  if (tracerProvider !== undefined && typeof tracerProvider?.getTracer !== 'function') {
    throw new BffConfigError('telemetry.tracerProvider', 'must be an OpenTelemetry TracerProvider (with getTracer())');
  }
  if (meterProvider !== undefined && typeof meterProvider?.getMeter !== 'function') {
    throw new BffConfigError('telemetry.meterProvider', 'must be an OpenTelemetry MeterProvider (with getMeter())');
  }
  return { ...(tracerProvider === undefined ? {} : { tracerProvider }), ...(meterProvider === undefined ? {} : { meterProvider }) };
}
