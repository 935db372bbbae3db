import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import session from 'express-session';
import type { BffOptions } from './config/options.js';
import { validateOptions } from './config/validate.js';
import { DPoP } from './dpop/dpop.js';
import { BffError, ErrorCode } from './errors.js';
import { BffEventEmitter, type BffOperation } from './events/events.js';
import { Reporter } from './events/reporter.js';
import { sendError } from './http/json-error.js';
import { routesWithJsonErrors } from './http/route-errors.js';
import type { BffSession, RequireSessionOptions } from './guard/guard-types.js';
import { requireSession } from './guard/require-session.js';
import { requestAccessToken, sessionOf } from './guard/request-session.js';
import { IdpClient } from './idp/idp-client.js';
import type { RequestListenerApp } from './entry/entry-types.js';
import { wrapApp } from './entry/wrap.js';
import { absoluteFormApi } from './proxy/absolute-form.js';
import { ApiProxy } from './proxy/api-proxy.js';
import { serverApp } from './proxy/client-address.js';
import { createRealtime } from './realtime/realtime.js';
import { backchannelLogoutRoute } from './routes/backchannel-logout.js';
import { callbackRoute } from './routes/callback.js';
import type { BffContext } from './routes/context.js';
import { healthzRoute } from './routes/healthz.js';
import { loginRoute } from './routes/login.js';
import { logoutRoute } from './routes/logout.js';
import { sessionsRoutes } from './routes/sessions.js';
import type { BffUser } from './routes/bff-user.js';
import { describeUser, userRoute } from './routes/user.js';
import { createFieldCipher } from './session/encryption.js';
import { createMemoryBackend } from './session/memory-backend.js';
import { createRedisBackend } from './session/redis-backend.js';
import type { SessionControl } from './session/session-control.js';
import { createSessionControl } from './session/session-list.js';
import { Sessions } from './session/sessions.js';
import { routeSpan } from './telemetry/spans.js';
import { SPAN } from './telemetry/names.js';
import { createTelemetry } from './telemetry/telemetry.js';
import { ClientTokens } from './tokens/client-tokens.js';
import { TokenManager } from './tokens/token-manager.js';

/**
 * The middleware `createBff()` returns, for `app.use()` in an Express 4 or 5 app, with the BFF's events and token
 * access attached.
 *
 * It is typed with Node's own request and response (`IncomingMessage`, `ServerResponse`), which the `Request` and
 * `Response` of both Express majors extend: `app.use(bff)` and `bff.getAccessToken(req)` type-check with either
 * major's type definitions, and the package's own declarations need none of them.
 *
 * @example
 * ```ts
 * app.use(bff); // /auth/*, /healthz and the API mounts; every other request goes on to the app
 *
 * app.get('/reports', async (req, res, next) => {
 *   try {
 *     const token = await bff.getAccessToken(req, { audience: 'https://reports.example.com' });
 *     res.json(await fetchReports(token));
 *   } catch (error) {
 *     if (error instanceof BffError) res.status(error.status).json({ error: error.code });
 *     else next(error);
 *   }
 * });
 * ```
 */
export interface Bff {
  /**
   * Answers the BFF's routes (login, callback, user, logout, back-channel logout, sessions, health) and proxies the
   * API mounts; passes every other request on to `next`.
   */
  (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void): void;
  /**
   * Typed events: `login`, `refresh`, `refresh_failed`, `logout` (with its reason), `revocation_failed`,
   * `backchannel_logout_rejected`. None carries a token.
   *
   * @example
   * ```ts
   * bff.events.on('logout', ({ reason, sub, sessions }) => audit.write({ event: 'logout', reason, sub, sessions }));
   * ```
   */
  readonly events: BffEventEmitter;
  /**
   * A fresh access token for the request's session, for apps that call APIs themselves: exchanged with the ORT
   * when the stored one is expiring, once however many requests ask at the same time.
   *
   * @param req - The app's request (after express-session, with `session.external`).
   * @param options - `audience` (default: the BFF's `audience`) and `scope` of the token.
   * @throws BffError `login_required`, `session_ended`, `token_service_unavailable`, `session_store_unavailable`, ...
   */
  getAccessToken(req: IncomingMessage, options?: { audience?: string; scope?: string }): Promise<string>;
  /**
   * Who is logged in on this request, without any token exchange: the `/auth/user` answer minus `logoutUrl`, or
   * undefined without a (live) session. Counts as activity (rolls the idle expiry) unless `touch` is false.
   *
   * @throws BffError only for faults (`session_store_unavailable`).
   */
  getUser(req: IncomingMessage, options?: { touch?: boolean }): Promise<BffUser | undefined>;
  /**
   * The BFF sessions of a user, to list and to end (on every instance that shares the store): "log out my other
   * devices". Ending one revokes its ORT at Auth0, which ends the Auth0 session behind it.
   */
  readonly sessions: SessionControl;
  /**
   * Takes a WebSocket handshake (an HTTP server's `upgrade` event, which Express never sees) when its URL is under
   * an API mount: checks its Origin (`websocket.allowedOrigins`) and session, and forwards it to the upstream with
   * the session's access token (exchanged first when expiring) and without cookies. Refusals are JSON answers
   * (401 `login_required`, 403 `csrf_required` for a bad Origin, ...); the socket closes with 4401 when the session
   * ends (see `WebSocketCloseCode`). Returns false, leaving the socket alone, for any other URL.
   *
   * @example
   * ```ts
   * const server = app.listen(3000);
   * server.on('upgrade', (req, socket, head) => {
   *   if (!bff.handleUpgrade(req, socket, head)) socket.destroy(); // or: pass it to your own WebSocket server
   * });
   * ```
   */
  readonly handleUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;
  /**
   * Listens for WebSocket handshakes on `server` (`handleUpgrade` for each). Handshakes for other URLs are left
   * to the server's other `upgrade` listeners, or answered 400 when there are none. A request asking for another
   * protocol (`Upgrade: h2c`) stays a plain request, as without the BFF (Node 22 and later: the server's
   * `shouldUpgradeCallback`, which the BFF extends and puts back when it stops). Returns a function that stops
   * listening; `close()` stops it too.
   *
   * @example
   * ```ts
   * const server = app.listen(3000);
   * bff.attach(server); // new WebSocket('wss://app.example.com/api/live') now reaches the API's /live
   * ```
   */
  attach(server: Server): () => void;
  /**
   * The faster entry: a request listener for `http.createServer()` that answers the BFF's API calls and routes
   * before Express runs, and hands every other request to `app` unchanged. API calls skip Express's per-request
   * work, which is most of what they cost under `app.use(bff)`; answers, error shapes, headers, events and limits
   * are the same. The BFF's routes see the app's settings ('trust proxy', 'etag', 'x-powered-by', ...), but not
   * the app's middleware: what must run on every request (a request logger, security headers) belongs in front
   * of the listener. Serves the BFF at the server's root, as `app.use(bff)` without a path does. Not with
   * `session.external` (the app's own express-session runs inside Express): then use `app.use(bff)`.
   *
   * @example
   * ```ts
   * const app = express(); // the app's own routes and pages, without app.use(bff)
   * const server = http.createServer(bff.wrap(app)).listen(3000);
   * bff.attach(server); // WebSockets, as with app.use(bff)
   * ```
   */
  wrap(app: RequestListenerApp): (req: IncomingMessage, res: ServerResponse) => void;
  /**
   * A guard for the app's own API routes (served by the app, not proxied): the anti-forgery check and a live
   * session, else a 403 or 401 JSON answer (never a redirect). The route then reads `bff.session(req)`.
   * Declare such a route before `app.use(bff)` when its path is under an API's mount, or the proxy takes it.
   *
   * @example
   * ```ts
   * app.get('/api/local/profile', bff.requireSession(), async (req, res) => {
   *   const { user, accessToken } = bff.session(req);
   *   res.json({ name: user.name, orders: await fetchOrders(await accessToken()) });
   * });
   * ```
   */
  requireSession(options?: RequireSessionOptions): (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void;
  /**
   * What `requireSession()` found for this request: the user and `accessToken()`. Throws a TypeError if the guard
   * did not run on it. (`bff.sessions`, plural, lists and ends a user's sessions.)
   */
  session(req: object): BffSession;
  /** Resolves once the issuer's metadata is loaded. */
  ready(): Promise<void>;
  /**
   * Stops background work, closes WebSockets (1001) and breaks off streaming responses, and closes upstream
   * connections once the API calls in flight have ended (the app's Redis client stays open). A call still waiting
   * for its answer holds it up: close the server's connections first (`server.closeAllConnections()`) not to wait.
   */
  close(): Promise<void>;
}

/**
 * Creates the BFF: login, callback, user, logout, back-channel logout and health routes, and the API proxy,
 * as one Express middleware for `app.use()`. Options are validated here, once; a bad one throws a BffConfigError.
 *
 * @example
 * ```ts
 * const bff = createBff({
 *   issuer: 'https://TENANT.us.auth0.com/', clientId, clientSecret, audience: 'https://api.example.com',
 *   baseURL: 'https://app.example.com', session: { secrets: [process.env.SESSION_SECRET!] }, redis,
 *   apis: [{ mount: '/api', upstream: 'https://api.internal.example.com' }],
 * });
 * app.use(bff);
 * ```
 */
export function createBff(options: BffOptions): Bff {
  const config = validateOptions(options);
  const cipher = createFieldCipher(config.session.encryptionKeys);
  const backend = config.redis
    ? createRedisBackend(config.redis, config.redisPrefix, cipher, config.session.idleTimeoutMs, config.clock, config.redisCommandTimeoutMs)
    : createMemoryBackend(cipher, config.session.idleTimeoutMs, config.clock);
  if (!config.redis) {
    config.logger.warn('Sessions are kept in memory: this serves one process only, and a restart logs everyone out. Pass a Redis client as `redis` for more.');
  }
  const events = new BffEventEmitter();
  const telemetry = createTelemetry(config.telemetry, backend.countSessions);
  const report = new Reporter(events, config.logger, telemetry);
  const dpop = config.dpop ? new DPoP(config.dpop, config.clock, config.logger) : undefined;
  const idp = new IdpClient(config, dpop);
  idp.start();
  const sessions = new Sessions(config, backend, report);
  const tokens = new TokenManager(config, idp, sessions, report);
  // The app the BFF serves: the one `bff.wrap(app)` was given, or the first that ran it under `app.use(bff)`.
  // WebSocket handshakes never go through Express, and take the app's 'trust proxy' from it (X-Forwarded-For).
  let servedApp: unknown;
  // A WebSocket handshake may come before any request through the BFF (sockets reconnecting after a restart): the
  // app is then the server's.
  const realtime = createRealtime(config, sessions, tokens, dpop, (req) => (servedApp ??= serverApp(req)), report, telemetry);
  const clientTokens = new ClientTokens(config, idp, backend, report, sessions);
  const ctx: BffContext = { config, idp, sessions, tokens, report };
  const sessionControl = createSessionControl(config, sessions, idp, report);

  const router = express.Router();
  // Under both entries, what Express's router hands to `next(error)` is answered as the BFF's JSON.
  const bffRoutes = routesWithJsonErrors(router as unknown as Parameters<typeof routesWithJsonErrors>[0], config.routes, report) as RequestHandler;
  const expressSession = config.session.external
    ? undefined
    : session({
        store: backend.store,
        secret: [...config.session.secrets],
        name: config.session.cookieName,
        resave: false,
        saveUninitialized: false,
        rolling: false,
        // The BFF knows its public URL is https (baseURL): trust X-Forwarded-Proto from the TLS terminator.
        proxy: config.session.secure,
        cookie: {
          httpOnly: true,
          secure: config.session.secure,
          sameSite: config.session.sameSite,
          path: '/',
          maxAge: config.session.absoluteTimeoutMs,
          ...(config.session.domain === undefined ? {} : { domain: config.session.domain }),
        },
      });
  const sessionMiddleware = (operation: BffOperation): RequestHandler => expressSession
    ? storeFaultsAsJson(expressSession, report, operation, config.session.secure)
    : (req, res, next) => {
        if (req.session) return next();
        // Logged (once per kind, then counted) as every configuration error: the app's setup, not the browser's.
        sendError(res, new BffError(ErrorCode.CONFIGURATION_ERROR, 'session.external is set, but no express-session middleware ran before the BFF.'), report, { operation });
      };

  // API calls are matched first, by prefix, and skip express-session and the router: one cookie check and one
  // store read. Prefix matching also sends every path under a mount, dot segments included, to the proxy's own
  // checks (Express's matcher would let them fall through to the app).
  // The longest mount first: a call under `/api/billing` belongs to that API, not to an `/api` declared before it.
  const proxies = [...config.apis]
    .sort((a, b) => b.mount.length - a.mount.length)
    .map((api) => new ApiProxy(api, config, sessions, tokens, clientTokens, realtime.streams, report, telemetry.proxy(api), dpop));
  const external = config.session.external;
  let closing: Promise<void> | undefined;
  const bff = function bff(req: Request, res: Response, next: NextFunction): void {
    // With the app's own express-session, remember its store so that logouts clear its entries too.
    if (external) sessions.adoptStore(req.sessionStore);
    servedApp ??= req.app;
    const url = req.url;
    for (const proxy of proxies) if (proxy.matches(url)) return void proxy.handle(req, res);
    const absolute = url.charCodeAt(0) === 47 /* / */ ? undefined : absoluteFormApi(proxies, req);
    if (absolute !== undefined) return void absolute.handle(req, res);
    bffRoutes(req, res, next);
  } as Bff;

  const { routes } = config;
  // A span for each of the routes that change sessions, when a tracer is there.
  const span = (name: string): RequestHandler[] => {
    const traced = routeSpan(telemetry.tracer, name);
    return traced === undefined ? [] : [traced];
  };
  if (routes.healthz) router.get(routes.healthz, healthzRoute(ctx));
  if (routes.login) router.get(routes.login, loginRoute(ctx));
  if (routes.callback) router.get(routes.callback, ...span(SPAN.LOGIN_CALLBACK), sessionMiddleware('callback'), callbackRoute(ctx));
  if (routes.user) router.get(routes.user, userRoute(ctx));
  if (routes.logout) {
    const logout = logoutRoute(ctx);
    router.get(routes.logout, ...span(SPAN.LOGOUT), sessionMiddleware('logout'), logout);
    router.post(routes.logout, ...span(SPAN.LOGOUT), formBody('4kb', ctx.report, 'logout'), sessionMiddleware('logout'), logout);
  }
  if (routes.backchannelLogout) {
    router.post(routes.backchannelLogout, ...span(SPAN.BACKCHANNEL_LOGOUT), formBody('32kb', ctx.report, 'backchannel_logout', (description) => ctx.report.backchannelRejected(description)), backchannelLogoutRoute(ctx));
  }
  if (routes.sessions) {
    const handlers = sessionsRoutes(ctx, sessionControl);
    router.get(routes.sessions, handlers.list);
    router.delete(`${routes.sessions}/:sessionRef`, handlers.end);
  }
  // Another method on a route's path is answered here, in the BFF's JSON shape, rather than by the app's 404 page.
  const allowed: Array<[string | undefined, string]> = [
    [routes.healthz, 'GET, HEAD'], [routes.login, 'GET, HEAD'], [routes.callback, 'GET, HEAD'], [routes.user, 'GET, HEAD'],
    [routes.logout, 'GET, HEAD, POST'], [routes.backchannelLogout, 'POST'],
    [routes.sessions, 'GET, HEAD'], [routes.sessions && `${routes.sessions}/:sessionRef`, 'DELETE'],
  ];
  for (const [path, methods] of allowed) if (path) router.all(path, methodNotAllowed(methods));

  Object.defineProperties(bff, {
    events: { value: events, enumerable: true },
    getAccessToken: {
      // `req` is the app's Express request (typed as Node's, see Bff): with session.external, express-session's.
      value: (req: IncomingMessage, opts?: { audience?: string; scope?: string }) => requestAccessToken(ctx, req as Request, opts),
    },
    // Typed as Node's request and response in Bff, like the middleware itself: Express's extend them.
    requireSession: { value: (opts?: RequireSessionOptions) => requireSession(ctx, opts) },
    session: { value: sessionOf },
    sessions: { value: sessionControl, enumerable: true },
    getUser: {
      value: async (req: IncomingMessage, opts: { touch?: boolean } = {}) => {
        try {
          return describeUser((await sessions.loadRecord(req as Request, { touch: opts.touch !== false })).record, config);
        } catch (error) {
          if (error instanceof BffError && (error.code === ErrorCode.LOGIN_REQUIRED || error.code === ErrorCode.SESSION_ENDED)) return undefined;
          throw error;
        }
      },
    },
    handleUpgrade: { value: realtime.handleUpgrade },
    wrap: {
      value: (app: RequestListenerApp) => {
        const wrapped = wrapApp({ proxies, router: bffRoutes, routes, external }, app);
        servedApp = app;
        return wrapped;
      },
    },
    attach: { value: realtime.attach },
    ready: { value: async () => void (await idp.ready()) },
    close: {
      // Closing twice (an app's shutdown path and its error path) waits for the same close.
      value: () => (closing ??= (async () => {
        await realtime.close();
        idp.close();
        sessions.close();
        report.close();
        await Promise.all(proxies.map((p) => p.close()));
        await backend.close();
      })()),
    },
  });
  return bff;
}

/**
 * express-session hands a store failure (Redis away during a failover) to `next(error)`, which would be the app's
 * error page, a 500: the BFF's routes answer 503 session_store_unavailable JSON instead, and change nothing.
 */
function storeFaultsAsJson(middleware: RequestHandler, report: Reporter, operation: BffOperation, secure: boolean): RequestHandler {
  return (req, res, next) => {
    // express-session sets a Secure cookie only on a request it sees as https: through TLS, or with
    // X-Forwarded-Proto: https. A TLS terminator that sends none (nginx's proxy_pass by default), or a proxy behind
    // it that says `http` (the hop it got the request on), would leave a login that completed without its cookie,
    // and the browser going round to Auth0 and back. baseURL says https: so is the request, for the cookie (a
    // browser keeps a Secure cookie only from an https page anyway). Only the BFF's own routes get here.
    if (secure && req.headers['x-forwarded-proto'] !== 'https' && (req.socket as { encrypted?: boolean }).encrypted !== true) {
      req.headers['x-forwarded-proto'] = 'https';
    }
    middleware(req, res, (error?: unknown) => {
      if (error === undefined || error === null) return next();
      // A save at the end of an answer already sent (after a login, express-session saves again what the callback
      // saved before answering): the browser has its answer, and express-session ends it. Nothing to report.
      if (res.headersSent) return;
      const failure = error instanceof BffError ? error : new BffError(ErrorCode.SESSION_STORE_UNAVAILABLE, 'The session store failed; try again shortly.', { cause: error });
      sendError(res, failure, report, { operation });
    });
  };
}

/** Answers 405 JSON with `Allow`; OPTIONS goes on (to the app's CORS handling, or Express's own answer). */
function methodNotAllowed(methods: string): RequestHandler {
  return (req, res, next) => {
    if (req.method === 'OPTIONS') return next();
    res.setHeader('Allow', methods);
    sendError(res, new BffError(ErrorCode.METHOD_NOT_ALLOWED, `This route answers ${methods}.`));
  };
}

/**
 * A form body of at most `limit`; one that cannot be read (too large, bad charset, malformed) answers 400 JSON
 * instead of the app's error page, reported as the route's other refusals are (and told to `refused` too).
 */
function formBody(limit: string, report: Reporter, operation: BffOperation, refused?: (description: string) => void): RequestHandler {
  const parse = express.urlencoded({ extended: false, limit });
  return (req, res, next) =>
    parse(req, res, (error?: unknown) => {
      if (!error) return next();
      const description = (error as { type?: unknown }).type === 'entity.too.large' ? `The request body is larger than ${limit}.` : 'The request body could not be read.';
      refused?.(description);
      sendError(res, new BffError(ErrorCode.INVALID_REQUEST, description), report, { operation });
    });
}
