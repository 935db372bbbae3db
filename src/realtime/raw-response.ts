import { createHash } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { BffError } from '../errors.js';

/** How long a refused client may take to read the answer before its connection is cut. */
const FLUSH_GRACE_MS = 2_000;

/**
 * Answers a handshake with the BFF's JSON error shape, written on the raw socket (an upgrade request has no
 * ServerResponse), then closes the connection. Nothing was upgraded.
 */
export function writeJsonError(socket: Duplex, error: BffError): void {
  const body = JSON.stringify({ error: error.code, error_description: error.message });
  const lines = [
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ''}`,
    'Content-Type: application/json; charset=utf-8',
    'Cache-Control: no-store',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
  ];
  if (error.retryAfter !== undefined) lines.push(`Retry-After: ${error.retryAfter}`);
  if (!socket.writable) return void socket.destroy();
  // The socket is out of the HTTP server's hands (and timeouts): ending only our side would leave it open for as
  // long as the client keeps its own, so it is destroyed once the answer is flushed, or cut if that never happens.
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`, () => socket.destroy());
  setTimeout(() => socket.destroy(), FLUSH_GRACE_MS).unref();
}

/** The 101 answer to the browser: the upstream's headers, minus hop-by-hop ones, plus the upgrade itself. */
export function switchingProtocols(headers: Record<string, string | string[]>): string {
  let head = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n';
  for (const name in headers) {
    const value = headers[name] as string | string[];
    for (const v of Array.isArray(value) ? value : [value]) head += `${name}: ${v}\r\n`;
  }
  return `${head}\r\n`;
}

/**
 * The BFF's own 101 for a handshake the upstream could not take: the browser is told why in a close frame right
 * after, since browsers show a script nothing of a refused handshake (only close code 1006).
 * It names the first subprotocol the browser offered (browsers fail a handshake that offered some and got none).
 */
export function acceptOnlyToClose(key: string, offeredProtocols: string | undefined): string {
  const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  const protocol = offeredProtocols?.split(',')[0]?.trim();
  return switchingProtocols({ 'sec-websocket-accept': accept, ...(protocol ? { 'sec-websocket-protocol': protocol } : {}) });
}
