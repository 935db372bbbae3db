import type { IncomingMessage, ServerResponse } from 'node:http';

import type { BffConfig } from '../config/validate.js';
import { BffError, ErrorCode } from '../errors.js';
import type { BffOperation } from '../events/events.js';
import type { Reporter } from '../events/reporter.js';
import { sendError, toBffError } from './json-error.js';

type Handler = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void;

/**
 * The BFF's router, with what it hands to `next(error)` answered as the BFF's JSON instead of the app's error
 * page. The routes answer their own failures; what reaches here is Express's: a URL it could not decode (its
 * errors carry a 4xx `status`), which is bad input and changes nothing, or a throw nobody expected (a 500, reported).
 */
export function routesWithJsonErrors(router: Handler, routes: BffConfig['routes'], report: Reporter): Handler {
  return (req, res, next) =>
    router(req, res, (error?: unknown) => {
      // `next('router')` leaves the router with null.
      if (error === undefined || error === null) return next();
      const status = (error as { status?: unknown }).status;
      if (typeof status === 'number' && status >= 400 && status < 500) {
        return sendError(res, new BffError(ErrorCode.INVALID_REQUEST, 'The request could not be read.'));
      }
      const operation = routeOperation(routes, req.url ?? '/');
      if (operation === undefined) return sendError(res, toBffError(error));
      sendError(res, toBffError(error), report, { operation });
    });
}

const OPERATIONS: Readonly<Record<keyof BffConfig['routes'], BffOperation | undefined>> = {
  login: 'login', callback: 'callback', user: 'user', logout: 'logout', backchannelLogout: 'backchannel_logout', sessions: 'sessions', healthz: undefined,
};

/** The operation of the route a URL is under, for reporting a failure there (none for the health check). */
function routeOperation(routes: BffConfig['routes'], url: string): BffOperation | undefined {
  const path = (url.split('?', 1)[0] as string).toLowerCase();
  let found: { length: number; operation: BffOperation | undefined } | undefined;
  for (const [name, route] of Object.entries(routes)) {
    if (route === undefined || !path.startsWith(route.toLowerCase())) continue;
    // The longest route path is the one the URL is under.
    if (found === undefined || route.length > found.length) found = { length: route.length, operation: OPERATIONS[name as keyof BffConfig['routes']] };
  }
  return found?.operation;
}
