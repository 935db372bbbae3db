import type { Response } from 'express';
import { BffError, ErrorCode } from '../errors.js';
import type { Logger } from '../events/events.js';

/** Errors whose cause was logged where it was found (once), so that answering them logs nothing more. */
const logged = new WeakSet<BffError>();

/** Marks an error as logged already: {@link sendError} then answers it without a log line of its own. */
export function markLogged(error: BffError): void {
  logged.add(error);
}

/**
 * Answers with the JSON error shape every route of the BFF uses. Never a redirect, never cached.
 * An unexpected failure is logged by its class and code only: its message could carry anything.
 */
export function sendError(res: Response, error: BffError, logger?: Logger): void {
  if (logger) logFailure(error, logger);
  if (res.headersSent) {
    // The answer has begun: the only honest signal left is to break the connection off.
    res.destroy(error);
    return;
  }
  res.status(error.status);
  res.setHeader('Cache-Control', 'no-store');
  if (error.retryAfter !== undefined) res.setHeader('Retry-After', String(error.retryAfter));
  res.json({ error: error.code, error_description: error.message });
}

/** Turns anything thrown into a BffError, hiding the details of unexpected ones from the browser. */
export function toBffError(error: unknown): BffError {
  if (error instanceof BffError) return error;
  return new BffError(ErrorCode.SERVER_ERROR, 'The BFF failed unexpectedly.', { cause: error });
}

/**
 * Logs what the operator must see of an error about to be answered: unexpected failures and configuration errors
 * (by class and code: a message could carry anything), once. Faults of the network or of the user are not logged.
 */
export function logFailure(error: BffError, logger: Logger): void {
  if ((error.code !== ErrorCode.SERVER_ERROR && error.code !== ErrorCode.CONFIGURATION_ERROR) || logged.has(error)) return;
  logged.add(error);
  const cause = error.cause as { name?: unknown; code?: unknown } | undefined;
  logger.error(error.code === ErrorCode.SERVER_ERROR ? 'Unexpected failure while answering a request' : error.message, {
    error: String(cause?.name ?? error.name),
    ...(cause?.code === undefined ? {} : { code: String(cause.code) }),
  });
}
