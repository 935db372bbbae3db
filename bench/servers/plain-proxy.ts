/**
 * Contestant "plain proxy": express + http-proxy-middleware adding a static Authorization header, no session.
 * What most teams write by hand. Env: PORT, UPSTREAM_API_URL, HPM_AGENT.
 *
 * HPM_AGENT=keepalive (default) passes a keep-alive agent. HPM_AGENT=default leaves http-proxy-middleware's
 * defaults: with no `agent`, http-proxy sends `Connection: close` upstream, one TCP connection per request.
 */
import { Agent } from 'node:http';
import express from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';

const upstream = process.env.UPSTREAM_API_URL as string;
const app = express();
app.disable('x-powered-by');
app.use('/api', createProxyMiddleware({
  target: upstream,
  changeOrigin: true,
  headers: { authorization: 'Bearer static-bench-token' },
  ...(process.env.HPM_AGENT === 'default' ? {} : { agent: new Agent({ keepAlive: true }) }),
}));
app.get('/', (_req, res) => void res.send('plain proxy'));
app.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
