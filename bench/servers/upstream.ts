/**
 * The bench upstream: a plain node:http server answering every request with the same ~1 KB of JSON,
 * keep-alive on, and echoing every WebSocket message (any path) back. Env: PORT.
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

const server = createServer((req, res) => {
  // Drain any request body, then answer; the connection stays open (HTTP/1.1 keep-alive).
  req.resume();
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
