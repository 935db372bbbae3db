import { Console } from 'node:console';
import { Writable } from 'node:stream';
import bunyan from 'bunyan';
import pino from 'pino';
import winston from 'winston';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLog, defaultLogger, defaultLogLevel, type Logger, type LogLevel } from '../../src/events/logger.js';

/** A stream that keeps every line written to it. */
function lines(): { stream: Writable; lines: string[] } {
  const out: string[] = [];
  let partial = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      partial += chunk.toString();
      const parts = partial.split('\n');
      partial = parts.pop() as string;
      out.push(...parts.filter(Boolean));
      done();
    },
  });
  return { stream, lines: out };
}

/** The real loggers, each writing JSON lines (or text, for console) into memory, at their own `level`. */
const LOGGERS: Array<{ name: string; make: (level: LogLevel) => { logger: Logger; lines: string[]; json: boolean } }> = [
  {
    name: 'pino',
    make: (level) => {
      const out = lines();
      return { logger: pino({ level }, out.stream), lines: out.lines, json: true };
    },
  },
  {
    name: 'a pino child logger',
    make: (level) => {
      const out = lines();
      return { logger: pino({ level }, out.stream).child({ component: 'bff' }), lines: out.lines, json: true };
    },
  },
  {
    name: 'winston',
    make: (level) => {
      const out = lines();
      const logger = winston.createLogger({ level, format: winston.format.json(), transports: [new winston.transports.Stream({ stream: out.stream })] });
      return { logger, lines: out.lines, json: true };
    },
  },
  {
    name: 'bunyan',
    make: (level) => {
      const out = lines();
      return { logger: bunyan.createLogger({ name: 'app', streams: [{ stream: out.stream, level }] }), lines: out.lines, json: true };
    },
  },
  {
    name: 'a bunyan child logger',
    make: (level) => {
      const out = lines();
      return { logger: bunyan.createLogger({ name: 'app', streams: [{ stream: out.stream, level }] }).child({ component: 'bff' }), lines: out.lines, json: true };
    },
  },
];

describe('logging through the app\'s logger', () => {
  it.each(LOGGERS)('gives $name every detail as a structured field, and the message as its message', async ({ make }) => {
    const { logger, lines: out } = make('debug');
    const log = createLog(logger, defaultLogLevel(logger));
    log.warn('The session store failed', { operation: 'api', cause: 'ECONNREFUSED', sessionRef: 'abc123' });
    log.error('Auth0 refused the token exchange', { error: 'invalid_client', status: 401, audience: 'https://api.example.test' });
    await new Promise((resolve) => setImmediate(resolve));

    const [warn, error] = out.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(warn).toMatchObject({ operation: 'api', cause: 'ECONNREFUSED', sessionRef: 'abc123' });
    expect(warn?.msg ?? warn?.message).toBe('The session store failed');
    expect(error).toMatchObject({ error: 'invalid_client', status: 401, audience: 'https://api.example.test' });
    expect(error?.msg ?? error?.message).toBe('Auth0 refused the token exchange');
  });

  it.each(LOGGERS)('lets $name decide by its own level whether debug lines are written', async ({ make }) => {
    const atInfo = make('info');
    const quiet = createLog(atInfo.logger, defaultLogLevel(atInfo.logger));
    quiet.debug('Token exchange started', { sessionRef: 'abc123' });
    quiet.info('Loaded', {});
    const atDebug = make('debug');
    const chatty = createLog(atDebug.logger, defaultLogLevel(atDebug.logger));
    chatty.debug('Token exchange started', { sessionRef: 'abc123' });
    await new Promise((resolve) => setImmediate(resolve));

    expect(atInfo.lines.map((l) => JSON.parse(l).msg ?? JSON.parse(l).message)).toEqual(['Loaded']);
    expect(atDebug.lines.map((l) => JSON.parse(l))).toEqual([expect.objectContaining({ sessionRef: 'abc123' })]);
  });

  it('passes console the details as an object after the message, and writes no debug line unless asked to', () => {
    const out = lines();
    const errors = lines();
    const console = new Console({ stdout: out.stream, stderr: errors.stream });
    createLog(console, defaultLogLevel(console)).warn('The API could not be reached', { api: '/api', cause: 'ECONNREFUSED' });
    createLog(console, defaultLogLevel(console)).debug('Token exchange started', { sessionRef: 'abc123' });
    expect(errors.lines.join('\n')).toMatch(/The API could not be reached \{ api: '\/api', cause: 'ECONNREFUSED' \}/);
    expect(out.lines).toEqual([]);

    createLog(console, 'debug').debug('Token exchange started', { sessionRef: 'abc123' });
    expect(out.lines.join('\n')).toMatch(/Token exchange started \{ sessionRef: 'abc123' \}/);
  });

  it('follows a pino logger whose level is changed at runtime', () => {
    const out = lines();
    const logger = pino({ level: 'info' }, out.stream);
    const log = createLog(logger, defaultLogLevel(logger));
    log.debug('before', {});
    logger.level = 'debug';
    log.debug('after', { sessionRef: 'abc123' });
    expect(out.lines.map((l) => JSON.parse(l))).toEqual([expect.objectContaining({ msg: 'after', sessionRef: 'abc123' })]);
  });

  it('filters by logLevel whatever the logger, and skips the levels a logger does not have', () => {
    const seen: string[] = [];
    const logger: Logger = { warn: (m) => void seen.push(`warn ${m}`), error: (m) => void seen.push(`error ${m}`) };
    const log = createLog(logger, 'error');
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    createLog(logger, 'debug').debug('no debug method: nothing happens');
    expect(seen).toEqual(['error e']);
  });

  it('handles the rejection of a logger whose write returns a promise (an async transport that closed), as its throw', () => {
    // What the write returns: a promise whose `then` is watched, to see a rejection handler given to it.
    const written: Array<{ then: ReturnType<typeof vi.fn> }> = [];
    const write = () => {
      const promise = { then: vi.fn() };
      written.push(promise);
      return promise;
    };
    const log = createLog({ warn: write, error: write }, 'warn');
    log.warn('a line');
    log.error('another', { detail: 1 });
    // An unhandled rejection ends a Node process by default.
    expect(written.map((promise) => typeof promise.then.mock.calls[0]?.[1])).toEqual(['function', 'function']);
  });
});

describe('the logger used when the app passes none', () => {
  afterEach(() => vi.restoreAllMocks());

  it('writes info and up to stderr, one line each with the details as JSON, and no debug line', () => {
    const written: string[] = [];
    for (const name of ['log', 'info', 'warn', 'error', 'debug'] as const) vi.spyOn(console, name).mockImplementation((line: string) => void written.push(`${name} ${line}`));
    const log = createLog(defaultLogger, defaultLogLevel(defaultLogger));
    log.debug('Token exchange started', { sessionRef: 'abc123' });
    log.info('Loaded');
    log.warn('The API could not be reached', { api: '/api' });
    expect(written).toEqual([
      'error [express-ort-bff] info: Loaded',
      'warn [express-ort-bff] warn: The API could not be reached {"api":"/api"}',
    ]);
  });
});
