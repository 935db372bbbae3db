import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Browser } from './harness.js';

/**
 * WebSocket endpoints written by hand on TCP sockets, for what a `ws` client or server would never do: end its side
 * without a close handshake, stop reading, stop in the middle of a frame, keep a refused connection open.
 */

export interface Frame {
  opcode: number;
  masked: boolean;
  /** Unmasked. */
  payload: Buffer;
}

export const OPCODE = { text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** Reads WebSocket frames (RFC 6455 5.2) out of a byte stream, unmasking masked ones. */
export class FrameParser {
  readonly frames: Frame[] = [];
  private buffered = Buffer.alloc(0);

  push(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    for (;;) {
      const b = this.buffered;
      if (b.length < 2) return;
      let length = (b[1] as number) & 0x7f;
      let at = 2;
      if (length === 126) {
        if (b.length < 4) return;
        length = b.readUInt16BE(2);
        at = 4;
      } else if (length === 127) {
        if (b.length < 10) return;
        length = Number(b.readBigUInt64BE(2));
        at = 10;
      }
      const masked = ((b[1] as number) & 0x80) !== 0;
      const key = masked ? b.subarray(at, at + 4) : undefined;
      if (masked) at += 4;
      if (b.length < at + length) return;
      const payload = Buffer.from(b.subarray(at, at + length));
      if (key) for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (key[i & 3] as number);
      this.frames.push({ opcode: (b[0] as number) & 0x0f, masked, payload });
      this.buffered = b.subarray(at + length);
    }
  }

  /** The codes of the close frames read so far. */
  get closeCodes(): number[] {
    return this.frames.filter((f) => f.opcode === OPCODE.close).map((f) => f.payload.readUInt16BE(0));
  }
}

/** One whole frame; masked for frames a client sends (RFC 6455 5.3). */
export function frame(opcode: number, payload: Buffer, masked: boolean): Buffer {
  const length = payload.length;
  const extended = length < 126 ? Buffer.alloc(0) : length < 65_536 ? Buffer.alloc(2) : Buffer.alloc(8);
  if (extended.length === 2) extended.writeUInt16BE(length);
  if (extended.length === 8) extended.writeBigUInt64BE(BigInt(length));
  const head = Buffer.from([0x80 | opcode, (masked ? 0x80 : 0) | (extended.length === 0 ? length : extended.length === 2 ? 126 : 127)]);
  if (!masked) return Buffer.concat([head, extended, payload]);
  const key = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] = (body[i] as number) ^ (key[i & 3] as number);
  return Buffer.concat([head, extended, key, body]);
}

/** A close frame with a code (and no reason). */
export function closeFrameOf(code: number, masked: boolean): Buffer {
  const payload = Buffer.alloc(2);
  payload.writeUInt16BE(code);
  return frame(OPCODE.close, payload, masked);
}

const acceptOf = (key: string) => createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');

export interface RawClient {
  /** Half-open allowed: the client's side stays open until the test ends it. */
  socket: Socket;
  /** The answer's status code. */
  status: Promise<number>;
  /** The frames after a 101. */
  frames: FrameParser;
}

/** A browser on a bare TCP socket: sends the handshake with its cookies and the page's Origin, and reads the answer. */
export function rawClient(browser: Browser, path: string): RawClient {
  const { hostname, port } = new URL(browser.url);
  const socket = connect({ port: Number(port), host: hostname, allowHalfOpen: true });
  socket.on('error', () => {});
  const cookie = browser.jar.header(browser.url);
  const headers = [
    `GET ${path} HTTP/1.1`, `Host: ${hostname}:${port}`, 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`, `Origin: ${browser.url}`, ...(cookie ? [`Cookie: ${cookie}`] : []),
  ];
  socket.write(`${headers.join('\r\n')}\r\n\r\n`);
  const frames = new FrameParser();
  const status = new Promise<number>((resolve, reject) => {
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.on('data', (more: Buffer) => frames.push(more));
      frames.push(head.subarray(end + 4));
      resolve(Number(head.subarray(0, end).toString().split(' ')[1]));
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error('closed before an answer')));
  });
  // A test that never asks for the status is not failed by a connection that closed without one.
  status.catch(() => {});
  return { socket, status, frames };
}

/** The upstream's side of one WebSocket, answered by hand: it reads (and parses) what the BFF sends, and says nothing. */
export interface RawUpstreamSocket {
  socket: Duplex;
  frames: FrameParser;
  /** The BFF ended or cut the connection. */
  ended: Promise<void>;
}

/**
 * An upgrade handler for the harness's upstream that accepts every handshake and adds its socket to `into`. With
 * `answerPings` it answers each ping with a pong, as a live WebSocket server does by itself (RFC 6455 5.5.2); without,
 * it is one that is gone, or whose connection is.
 */
export function rawUpstream(into: RawUpstreamSocket[], options: { answerPings?: boolean } = {}): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    socket.on('error', () => {});
    const frames = new FrameParser();
    let read = 0;
    const take = (chunk: Buffer) => {
      frames.push(chunk);
      for (; read < frames.frames.length; read++) {
        const got = frames.frames[read] as Frame;
        if (options.answerPings && got.opcode === OPCODE.ping) socket.write(frame(OPCODE.pong, got.payload, false));
      }
    };
    socket.on('data', take);
    const ended = new Promise<void>((resolve) => {
      socket.once('end', resolve);
      socket.once('close', resolve);
    });
    into.push({ socket, frames, ended });
    const accept = acceptOf(req.headers['sec-websocket-key'] as string);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    take(head);
  };
}
