import type { IncomingMessage, ServerResponse } from 'node:http';

import express, { type RequestHandler } from 'express';
import type { BffConfig } from '../config/validate.js';
import { BffConfigError } from '../errors.js';
import { absoluteFormApi } from '../proxy/absolute-form.js';
import type { ApiProxy } from '../proxy/api-proxy.js';
import { appTrust, WRAPPED_TRUST } from '../proxy/client-address.js';
import type { RequestListenerApp } from './entry-types.js';
import { routePathMatcher } from './route-paths.js';

/** The parts of a BFF that answer requests, as `createBff()` built them. */
export interface WrapParts {
  /** The API mounts, the longest first. */
  readonly proxies: readonly ApiProxy[];
  /** The BFF's routes (login, callback, user, logout, back-channel logout, sessions, health), as `app.use(bff)` runs them. */
  readonly router: RequestHandler;
  readonly routes: BffConfig['routes'];
  readonly external: boolean;
}

interface ExpressSettings {
  settings?: Record<string, unknown>;
  request?: unknown;
  response?: unknown;
}

/**
 * `http.createServer(bff.wrap(app))`: API calls are answered from the server's `request` event, before any Express
 * runs (the path `app.use(bff)` takes after Express's own per-request work, which is most of what a proxied call
 * costs); the BFF's routes go through an Express app of the BFF's own that reads the app's settings; every other
 * request goes to `app` as it came.
 */
export function wrapApp(parts: WrapParts, app: RequestListenerApp): (req: IncomingMessage, res: ServerResponse) => void {
  if (typeof app !== 'function') {
    throw new TypeError('bff.wrap(app): app must be a request listener, such as an Express app');
  }
  if (parts.external) {
    // The app's own express-session must run before the BFF, and it runs inside Express.
    throw new BffConfigError('session.external', 'cannot be used with bff.wrap(app): the app\'s express-session runs inside Express; use app.use(bff)');
  }
  const { proxies } = parts;
  const isRoute = routePathMatcher(parts.routes);
  const settings = (app as ExpressSettings).settings;
  const routes = routesApp(parts, app, settings);
  // What Express would have done for an API call under app.use(bff), read live from the app's settings.
  const asExpressWould = settings === undefined
    ? undefined
    : (req: IncomingMessage, res: ServerResponse): void => {
      if (settings['x-powered-by']) res.setHeader('X-Powered-By', 'Express');
      const trust = appTrust(app);
      if (trust !== undefined) (req as { [WRAPPED_TRUST]?: unknown })[WRAPPED_TRUST] = trust;
    };
  return function bffWrapped(req, res) {
    const url = req.url as string;
    for (const proxy of proxies) {
      if (proxy.matches(url)) {
        asExpressWould?.(req, res);
        return proxy.handle(req, res);
      }
    }
    const absolute = url.charCodeAt(0) === 47 /* / */ ? undefined : absoluteFormApi(proxies, req);
    if (absolute !== undefined) {
      asExpressWould?.(req, res);
      return absolute.handle(req, res);
    }
    if (isRoute(url)) return void routes(req, res);
    app(req, res);
  };
}

/**
 * The BFF's router in an Express app of its own, with the wrapped app's settings ('etag', 'query parser',
 * 'trust proxy', 'x-powered-by', 'json spaces', ...) as if it were mounted in it: a route answers the same under
 * both entries, and a request it does not take (another method) goes on to the app. Its requests and responses get
 * the app's prototypes, as under `app.use(bff)` (`req.app` is the app): a request going on to the app keeps its
 * prototype, and under `serverOptions(app)` no request changes prototype at all (entry/server-options.ts).
 */
function routesApp(parts: WrapParts, app: RequestListenerApp, settings: Record<string, unknown> | undefined): express.Express {
  const inner = express();
  const { request, response } = app as ExpressSettings;
  if (typeof request === 'object' && request !== null && typeof response === 'object' && response !== null) {
    inner.request = request as express.Request;
    inner.response = response as express.Response;
  }
  if (settings !== undefined) {
    // Read through, not copied: a setting the app changes later applies here too.
    const own = inner.settings as Record<string, unknown>;
    for (const key of Object.keys(own)) delete own[key];
    Object.setPrototypeOf(own, settings);
  } else {
    inner.disable('x-powered-by');
  }
  inner.use(parts.router);
  inner.use((req, res) => void app(req, res));
  return inner;
}
