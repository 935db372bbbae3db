import type { NextFunction, Request, Response } from 'express';
import { BffConfigError, BffError, ErrorCode } from '../errors.js';
import { csrfMode, isSafeMethod } from '../http/csrf.js';
import { sendError, toBffError } from '../http/json-error.js';
import type { BffContext } from '../routes/context.js';
import { describeUser } from '../routes/user.js';
import type { RequireSessionOptions } from './guard-types.js';
import { rememberSession } from './request-session.js';

/**
 * A guard for the app's own API routes: the proxy's anti-forgery check (403 `csrf_required`), then a live session
 * (401 `login_required` or `session_ended`, JSON, never a redirect), whose user and access token the route then
 * gets from `bff.session(req)`. Faults answer 503 as for proxied calls; nobody is logged out by them.
 */
export function requireSession(ctx: BffContext, options: RequireSessionOptions = {}): (req: Request, res: Response, next: NextFunction) => void {
  if (options === null || typeof options !== 'object') throw new BffConfigError('requireSession(options)', 'must be an object, e.g. { csrf: "always" }');
  const csrf = csrfMode(options.csrf, 'requireSession(options).csrf');
  const { config } = ctx;
  const { header, value } = config.csrf;
  return function requireBffSession(req: Request, res: Response, next: NextFunction): void {
    if (req.headers[header] !== value && (csrf === 'always' || !isSafeMethod(req.method))) {
      return sendError(res, new BffError(ErrorCode.CSRF_REQUIRED, `API calls must carry the header ${header}: ${value}.`));
    }
    ctx.sessions.loadRecord(req).then(
      ({ record }) => {
        rememberSession(req, describeUser(record, config), ctx);
        next();
      },
      (error: unknown) => sendError(res, toBffError(error), ctx.report, { operation: 'local_api' }),
    );
  };
}
