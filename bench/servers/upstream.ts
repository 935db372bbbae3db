/**
 * The bench upstream: a plain node:http server answering every request with the same ~1 KB of JSON,
 * keep-alive on, and echoing every WebSocket message (any path) back. The first request with a given
 * `X-Bench-Reject-Token` value is answered 401 invalid_token (the same request sent again is answered as usual), so
 * that the bench can make a BFF renew a token once before it is measured, as every BFF in production does.
 * `GET /__bench/authorization` (asked directly, not through a proxy) answers the size of the last call's Authorization
 * header: how big the token a BFF sends is. Env: PORT.
 */
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

const items = Array.from({ length: 15 }, (_, i) => ({
  id: i + 1,
  name: `item-${String(i + 1).padStart(3, '0')}`,
  price: Number((9.99 + i * 3.5).toFixed(2)),
  tags: ['bench', i % 2 ? 'odd' : 'even'],
}));
const body = Buffer.from(JSON.stringify({ ok: true, generatedBy: 'express-ort-bff bench upstream', items }));
const headers = { 'content-type': 'application/json', 'content-length': String(body.length) };

const rejected = new Set<string>();
const invalidToken = { 'www-authenticate': 'Bearer error="invalid_token"', 'content-type': 'application/json' };

/** The size of the last Authorization header a call brought, answered at GET /__bench/authorization. */
let authorizationBytes = 0;

const server = createServer((req, res) => {
  // Drain any request body, then answer; the connection stays open (HTTP/1.1 keep-alive).
  req.resume();
  if (req.url === '/__bench/authorization') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ bytes: authorizationBytes }));
    return;
  }
  authorizationBytes = req.headers.authorization?.length ?? 0;
  const reject = req.headers['x-bench-reject-token'];
  if (typeof reject === 'string' && !rejected.has(reject)) {
    rejected.add(reject);
    res.writeHead(401, invalidToken);
    res.end('{"error":"invalid_token"}');
    return;
  }
  res.writeHead(200, headers);
  res.end(body);
});
server.keepAliveTimeout = 60_000;
const echo = new WebSocketServer({ noServer: true, perMessageDeflate: false });
server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => socket.destroy());
  echo.handleUpgrade(req, socket, head, (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`upstream listening, body ${body.length} bytes\n`);
});
process.on('SIGTERM', () => process.exit(0));
