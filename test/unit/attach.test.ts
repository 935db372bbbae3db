import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { attachToServer } from '../../src/realtime/attach.js';

type UpgradeQuestion = (this: Server, req: IncomingMessage) => boolean;
const asks = (server: Server) => (server as Server & { shouldUpgradeCallback?: UpgradeQuestion }).shouldUpgradeCallback;
/** Node 22 and later let a server decline an upgrade; Node 20 makes every request with `Upgrade` one. */
const canDecline = typeof asks(createServer()) === 'function';

const H2C = 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n';
const WEBSOCKET = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';

/** Sends a raw request and resolves with the status line and body of what comes back. */
function send(server: Server, path: string, headers: string): Promise<{ status: string; body: string }> {
  const { port } = server.address() as { port: number };
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: bff.example\r\n${headers}\r\n`));
    let text = '';
    socket.setEncoding('utf8').on('data', (chunk) => {
      text += chunk;
      const end = text.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(text)?.[1];
      if (end === -1 || length === undefined || text.length < end + 4 + Number(length)) return;
      socket.destroy();
      resolve({ status: text.slice(0, text.indexOf('\r\n')), body: text.slice(end + 4) });
    });
    socket.on('error', reject);
  });
}

describe('the BFF listening for WebSocket handshakes on a server (bff.attach)', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
    server = undefined;
  });

  /** A server whose requests answer "page <url>", with the BFF attached: it takes handshakes under /api. */
  async function serve(): Promise<{ server: Server; taken: string[]; detach: () => void; original: UpgradeQuestion | undefined }> {
    const taken: string[] = [];
    server = createServer((req, res) => void res.end(`page ${req.url}`));
    const handle = (req: IncomingMessage, socket: Duplex) => {
      if (!req.url?.startsWith('/api')) return false;
      taken.push(req.url);
      socket.end('HTTP/1.1 101 Switching Protocols\r\nContent-Length: 0\r\n\r\n');
      return true;
    };
    const original = asks(server);
    const detach = attachToServer(server, handle);
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    return { server, taken, detach, original };
  }

  it('serves a request that asks for another protocol as a plain request (where Node lets a server decline), and takes WebSocket handshakes', async () => {
    const { server, taken } = await serve();
    const h2c = await send(server, '/home', H2C);
    if (canDecline) expect(h2c).toEqual({ status: 'HTTP/1.1 200 OK', body: 'page /home' });
    else expect(h2c.status).toBe('HTTP/1.1 400 Bad Request');
    expect(await send(server, '/api/live', WEBSOCKET)).toMatchObject({ status: 'HTTP/1.1 101 Switching Protocols' });
    expect(taken).toEqual(['/api/live']);
  });

  it('answers 400 JSON to a WebSocket handshake for a URL that is not the BFF\'s when nobody else takes upgrades', async () => {
    const { server } = await serve();
    const answer = await send(server, '/chat', WEBSOCKET);
    expect(answer.status).toBe('HTTP/1.1 400 Bad Request');
    expect(JSON.parse(answer.body)).toEqual({ error: 'invalid_request', error_description: 'No WebSocket endpoint at this path.' });
  });

  it('leaves the upgrades it does not take to the server\'s other upgrade listeners, by the server\'s own rule', async () => {
    const { server } = await serve();
    const others: string[] = [];
    server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
      others.push(`${req.url} ${req.headers.upgrade}`);
      socket.end('HTTP/1.1 101 Switching Protocols\r\nContent-Length: 0\r\n\r\n');
    });
    expect(await send(server, '/h2', H2C)).toMatchObject({ status: 'HTTP/1.1 101 Switching Protocols' });
    expect(await send(server, '/chat', WEBSOCKET)).toMatchObject({ status: 'HTTP/1.1 101 Switching Protocols' });
    expect(others).toEqual(['/h2 h2c', '/chat websocket']);
  });

  it('puts the server back as it was when it stops listening', async () => {
    const { server, detach, original } = await serve();
    if (canDecline) expect(asks(server)).not.toBe(original);
    detach();
    expect(server.listenerCount('upgrade')).toBe(0);
    expect(asks(server)).toBe(original);
    expect(await send(server, '/api/live', H2C)).toEqual({ status: 'HTTP/1.1 200 OK', body: 'page /api/live' });
  });
});
