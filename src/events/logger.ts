/**
 * Where the BFF writes its log lines. `console`, winston, pino and bunyan fit as they are; any object with these
 * methods does. Messages and details never contain a token or a secret.
 */
export interface Logger {
  /** What the BFF is doing: token exchanges, single-flight joins and lock waits, why each session ended. Optional. */
  debug?(message: string, details?: Record<string, unknown>): void;
  /** Normal operation. Optional. */
  info?(message: string, details?: Record<string, unknown>): void;
  /** Something to look at, with the service still working (a fault that was retried, a risky setting). */
  warn(message: string, details?: Record<string, unknown>): void;
  /** A failure that reached a user (a 5xx answer) or a misconfiguration. */
  error(message: string, details?: Record<string, unknown>): void;
}

/** The levels the BFF logs at, from the most to the least severe. */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

/** What the BFF logs through: every level present, below the threshold a no-op, arguments in the logger's order. */
export type Log = Required<Logger>;

type Write = (message: string, details?: Record<string, unknown>) => void;
const ignore: Write = () => {};

/**
 * Wraps the app's logger once, at startup. The BFF's convention is `(message, details)` (console, winston);
 * loggers that take the details object first (pino, bunyan) are recognised and called `(details, message)`,
 * so that every detail arrives as a structured field. Levels below `level`, and levels the logger lacks, cost
 * one call to an empty function. What the logger throws is dropped with its line.
 */
export function createLog(logger: Logger, level: LogLevel): Log {
  const objectFirst = takesObjectFirst(logger);
  const threshold = LOG_LEVELS.indexOf(level);
  const methods = logger as unknown as Record<LogLevel, (...args: unknown[]) => void>;
  const method = (name: LogLevel): Write => {
    if (LOG_LEVELS.indexOf(name) > threshold || typeof methods[name] !== 'function') return ignore;
    // Looked up at each call: pino swaps its level methods when its level changes at runtime. A logger that
    // throws (a closed transport, a serializer that fails) loses its line, never the request being answered.
    // One whose write returns a promise (an async wrapper, a transport) that rejects loses its line too.
    if (objectFirst) {
      return (message, details) => {
        try {
          settle(methods[name](details ?? {}, message));
        } catch {}
      };
    }
    return (message, details) => {
      try {
        settle(details === undefined ? methods[name](message) : methods[name](message, details));
      } catch {}
    };
  };
  return { error: method('error'), warn: method('warn'), info: method('info'), debug: method('debug') };
}

/**
 * The level at which the BFF filters when the app sets none: a logger with levels of its own (pino, winston,
 * bunyan) gets everything and decides itself (its own level switches debug on); others (console) get info and up.
 */
export function defaultLogLevel(logger: Logger): LogLevel {
  const l = logger as unknown as Record<string, unknown>;
  return typeof l.isLevelEnabled === 'function' || typeof l.level === 'function' ? 'debug' : 'info';
}

/**
 * pino (`levels: { values, labels }`) and bunyan (`streams` and `fields`) take `(details, message)`; called the
 * other way round, pino drops the details and bunyan prints them into the message text.
 */
function takesObjectFirst(logger: Logger): boolean {
  const l = logger as unknown as Record<string, unknown>;
  const levels = l.levels as Record<string, unknown> | undefined;
  if (levels !== null && typeof levels === 'object' && typeof levels.values === 'object' && typeof levels.labels === 'object') return true;
  return Array.isArray(l.streams) && l.fields !== null && typeof l.fields === 'object';
}

const line = (level: string, message: string, details?: Record<string, unknown>): string =>
  `[express-ort-bff] ${level}: ${message}${details ? ` ${JSON.stringify(details)}` : ''}`;

/** One line per message on stderr, details as JSON. Used when the app passes no logger. */
export const defaultLogger: Logger = {
  debug: (message, details) => console.error(line('debug', message, details)),
  info: (message, details) => console.error(line('info', message, details)),
  warn: (message, details) => console.warn(line('warn', message, details)),
  error: (message, details) => console.error(line('error', message, details)),
};

/** A rejection of what a logger's method returned is dropped, as its throw is: never an unhandled rejection. */
function settle(result: unknown): void {
  if (isThenable(result)) result.then(undefined, () => {});
}

/** A promise, or anything with a `then` an `async` function or a promise library returns. */
export const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
