/**
 * A realistic use of `express-ort-bff`, type-checked by every consumer combination against the packed package with
 * `skipLibCheck: false`: an app with Redis sessions and client-side caching, an API mount, a route that calls an
 * API itself, "log out my other devices", WebSockets, events, errors handled by code, a second BFF on top of an
 * app's own express-session, the faster entry (`bff.wrap` with `serverOptions`), and the doctor.
 */
import { createServer, type Server } from 'node:http';
import express, { type ErrorRequestHandler } from 'express';
import session from 'express-session';
import { createClient } from 'redis';
import {
  BffConfigError,
  BffError,
  ErrorCode,
  WebSocketCloseCode,
  createBff,
  formatReport,
  runDoctor,
  serverOptions,
  type Bff,
  type BffEventEmitter,
  type BffOptions,
  type BffUser,
  type DPoPOptions,
  type DoctorReport,
  type EndSessionsResult,
  type Finding,
  type LogoutEvent,
  type PrivateJwk,
  type RedisClient,
  type SessionInfo,
} from 'express-ort-bff';

export async function startApp(env: Record<string, string | undefined>): Promise<{ close(): Promise<void> }> {
  const redis = createClient({ url: env.REDIS_URL, RESP: 3, clientSideCache: { ttl: 5_000, maxEntries: 10_000, evictPolicy: 'FIFO' } });
  redis.on('error', (error: Error) => console.warn('Redis:', error.message));
  await redis.connect();
  const client: RedisClient = redis;
  const dpop: DPoPOptions | undefined = env.DPOP_PRIVATE_KEY ? { key: JSON.parse(env.DPOP_PRIVATE_KEY) as PrivateJwk } : undefined;

  const options: BffOptions = {
    domain: 'tenant.us.auth0.com',
    clientId: env.AUTH0_CLIENT_ID ?? '',
    clientSecret: env.AUTH0_CLIENT_SECRET,
    audience: 'https://api.example.com',
    baseURL: 'https://app.example.com',
    session: { secrets: [env.SESSION_SECRET ?? ''], idleTimeout: 3_600 },
    redis: client,
    apis: [{ mount: '/api', upstream: 'https://api.internal.example.com', timeout: 10_000 }],
    logger: console,
    logLevel: 'info',
    ...(dpop ? { dpop } : {}),
  };
  let bff: Bff;
  try {
    bff = createBff(options);
  } catch (error) {
    if (error instanceof BffConfigError) console.error(`Option ${error.option}: ${error.message}`);
    throw error;
  }

  const events: BffEventEmitter = bff.events;
  events.on('logout', (event: LogoutEvent) => console.log('logout', event.reason, event.sessions));
  events.on('refresh_failed', ({ kind, error }) => {
    if (kind !== 'terminal') console.warn('Auth0 token endpoint:', error);
  });

  const app = express();
  app.use(bff);
  app.get('/me', async (req, res, next) => {
    try {
      const user: BffUser | undefined = await bff.getUser(req);
      if (!user) {
        res.status(401).json({ error: ErrorCode.LOGIN_REQUIRED });
        return;
      }
      const token = await bff.getAccessToken(req, { audience: 'https://reports.example.com' });
      const reports = await fetch('https://reports.internal.example.com/v1', { headers: { authorization: `Bearer ${token}` } });
      res.json({ sub: user.user.sub, until: user.expiresAt, reports: await reports.json() });
    } catch (error) {
      next(error);
    }
  });
  app.post('/devices/logout-others', async (req, res) => {
    const user = await bff.getUser(req, { touch: false });
    if (!user) return void res.sendStatus(401);
    const result: EndSessionsResult = await bff.sessions.end({ sub: user.user.sub, sessionRef: 'all', except: bff.sessions.refOf(req) });
    const left: SessionInfo[] = await bff.sessions.list({ sub: user.user.sub });
    res.json({ ended: result.ended, left: left.map((session) => session.userAgent ?? 'unknown browser') });
  });
  const onError: ErrorRequestHandler = (error, _req, res, next) => {
    if (!(error instanceof BffError)) return next(error);
    if (error.retryAfter !== undefined) res.set('Retry-After', String(error.retryAfter));
    res.status(error.status).json({ error: error.code, error_description: error.message });
  };
  app.use(onError);

  // An app that already runs express-session, with the BFF under a path.
  const legacy = express.Router();
  legacy.use(session({ secret: env.SESSION_SECRET ?? '', resave: false, saveUninitialized: false }));
  legacy.use('/bff', createBff({ ...options, session: { external: true }, routes: { healthz: false } }));
  app.use('/legacy', legacy);

  const server = app.listen(Number(env.PORT ?? 3000));
  const detach = bff.attach(server); // WebSockets under /api, closed with WebSocketCloseCode.SESSION_ENDED at logout
  console.log(`WebSockets close with ${WebSocketCloseCode.SESSION_ENDED} when their session ends`);
  await bff.ready();
  return {
    async close() {
      detach();
      server.close();
      await bff.close();
      await redis.close();
    },
  };
}

/** The faster entry: the BFF in front of an app without it, the server making requests and responses as the app's. */
export function serveWrapped(bff: Bff, port: number): Server {
  const app = express();
  app.use(express.static('spa'));
  const server = createServer(serverOptions(app), bff.wrap(app)).listen(port);
  bff.attach(server);
  return server;
}

export async function checkSetup(options: BffOptions, managementToken: string | undefined): Promise<readonly Finding[]> {
  const report: DoctorReport = await runDoctor({ options, ...(managementToken ? { managementToken } : {}), strict: true });
  console.log(formatReport(report));
  return report.findings.filter((finding) => finding.status === 'fail');
}
