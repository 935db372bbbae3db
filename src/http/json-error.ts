import type { ServerResponse } from 'node:http';
import { BffError, ErrorCode } from '../errors.js';
import type { FailedRequest, Reporter } from '../events/reporter.js';

/** Errors whose cause was logged where it was found (once), so that answering them logs nothing more. */
const logged = new WeakSet<BffError>();

/** Marks an error as logged already: answering it ({@link sendError}) then logs nothing of its own. */
export function markLogged(error: BffError): void {
  logged.add(error);
}

/** Whether an error was logged where it was found (see {@link markLogged}). */
export function wasLogged(error: BffError): boolean {
  return logged.has(error);
}

/**
 * Answers with the JSON error shape every route of the BFF uses. Never a redirect, never cached. With a reporter,
 * the failure is reported once (a log line, an event and a metric, as its code calls for).
 *
 * Written with Node's own response API, not Express's helpers: API calls reach it from `app.use(bff)` and from
 * `bff.wrap(app)` alike, where no Express ran, and answer the same bytes either way.
 */
export function sendError(res: ServerResponse, error: BffError): void;
export function sendError(res: ServerResponse, error: BffError, report: Reporter, where: FailedRequest): void;
export function sendError(res: ServerResponse, error: BffError, report?: Reporter, where?: FailedRequest): void {
  if (report !== undefined && where !== undefined) report.requestFailed(error, where);
  if (res.headersSent) {
    // The answer has begun: the only honest signal left is to break the connection off.
    res.destroy(error);
    return;
  }
  const body = JSON.stringify({ error: error.code, error_description: error.message });
  res.statusCode = error.status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.setHeader('Cache-Control', 'no-store');
  if (error.retryAfter !== undefined) res.setHeader('Retry-After', String(error.retryAfter));
  // RFC 9110 9.3.2: a HEAD answer has the headers a GET would have, and no content.
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}

/** Turns anything thrown into a BffError, hiding the details of unexpected ones from the browser. */
export function toBffError(error: unknown): BffError {
  if (error instanceof BffError) return error;
  return new BffError(ErrorCode.SERVER_ERROR, 'The BFF failed unexpectedly.', { cause: error });
}
