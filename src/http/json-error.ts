import type { Response } from 'express';
import { BffError, ErrorCode } from '../errors.js';

/** Answers with the JSON error shape every route of the BFF uses. Never a redirect, never cached. */
export function sendError(res: Response, error: BffError): void {
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
