/**
 * Contestant "naive BFF": express-session + connect-redis + http-proxy-middleware, the access token taken from
 * the session (no refresh, no CSRF check). GET /login puts a token in a new session.
 * Env: PORT, UPSTREAM_API_URL, REDIS_URL, SESSION_SECRET, BENCH_REDIS_PREFIX.
 */
import { Agent } from 'node:http';
import { RedisStore } from 'connect-redis';
import express from 'express';
import session from 'express-session';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { createClient } from 'redis';

declare module 'express-session' {
  interface SessionData {
    token?: string;
  }
}

const redis = createClient({ url: process.env.REDIS_URL });
redis.on('error', (error: Error) => console.error('redis:', error.message));
await redis.connect();

const app = express();
app.disable('x-powered-by');
app.use(session({
  store: new RedisStore({ client: redis, prefix: process.env.BENCH_REDIS_PREFIX ?? 'naive:' }),
  secret: process.env.SESSION_SECRET as string,
  resave: false,
  saveUninitialized: false,
  cookie: { httpOnly: true, sameSite: 'lax' },
}));
app.get('/login', (req, res) => {
  req.session.token = `naive-token-${req.sessionID}`;
  res.json({ ok: true });
});
app.use('/api', (req, res, next) => {
  if (!req.session.token) {
    res.status(401).json({ error: 'login_required' });
    return;
  }
  next();
}, createProxyMiddleware({
  target: process.env.UPSTREAM_API_URL,
  changeOrigin: true,
  // Without an agent, http-proxy closes every upstream connection (see plain-proxy.ts).
  agent: new Agent({ keepAlive: true }),
  on: {
    proxyReq: (proxyReq, req) => {
      proxyReq.setHeader('authorization', `Bearer ${(req as express.Request).session.token}`);
      proxyReq.removeHeader('cookie');
    },
  },
}));
app.get('/', (_req, res) => void res.send('naive bff'));
app.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => {
  void redis.close().finally(() => process.exit(0));
});
