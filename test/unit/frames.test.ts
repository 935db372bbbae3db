import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FrameTracker, closeFrame, pingFrame } from '../../src/realtime/frames.js';

/** A frame as RFC 6455 5.2 lays it out; masked frames carry a (here fixed) masking key. */
function frame(opcode: number, payload: Buffer, masked: boolean): Buffer {
  const lengthBytes = payload.length < 126 ? Buffer.alloc(0) : payload.length < 65_536 ? Buffer.alloc(2) : Buffer.alloc(8);
  if (lengthBytes.length === 2) lengthBytes.writeUInt16BE(payload.length);
  if (lengthBytes.length === 8) lengthBytes.writeBigUInt64BE(BigInt(payload.length));
  const length7 = lengthBytes.length === 0 ? payload.length : lengthBytes.length === 2 ? 126 : 127;
  return Buffer.concat([Buffer.from([0x80 | opcode, (masked ? 0x80 : 0) | length7]), lengthBytes, masked ? Buffer.from([1, 2, 3, 4]) : Buffer.alloc(0), payload]);
}

/** Where the boundaries are, feeding `stream` in pieces of `size` bytes. */
function boundaries(stream: Buffer, size: number): number[] {
  const tracker = new FrameTracker();
  const found: number[] = [];
  for (let offset = 0; offset < stream.length; offset += size) {
    const chunk = stream.subarray(offset, offset + size);
    let at = 0;
    while (at < chunk.length) {
      const end = tracker.scan(chunk.subarray(at), true);
      at += end;
      if (tracker.atBoundary && end > 0) found.push(offset + at);
      if (end === 0) at += tracker.scan(chunk.subarray(at, at + 1));
    }
  }
  return found;
}

describe('following WebSocket frame boundaries', () => {
  const frames = [
    frame(0x1, Buffer.from('hi'), true),
    frame(0x2, randomBytes(300), true), // 16-bit length
    frame(0x0, randomBytes(70_000), true), // 64-bit length
    frame(0x9, Buffer.alloc(0), true), // empty ping
    frame(0x1, randomBytes(125), false),
  ];
  const stream = Buffer.concat(frames);
  const expected = frames.reduce<number[]>((ends, f) => [...ends, (ends.at(-1) ?? 0) + f.length], []);

  it.each([1, 2, 3, 7, 14, 1_000, 100_000])('finds every frame end, fed %i bytes at a time', (size) => {
    expect(boundaries(stream, size)).toEqual(expected);
  });

  it('tells data frames and close frames apart', () => {
    const tracker = new FrameTracker();
    tracker.scan(frame(0x9, Buffer.from('ping'), false));
    expect(tracker.sawData).toBe(false);
    tracker.scan(frame(0x2, Buffer.from('data'), false));
    expect(tracker.sawData).toBe(true);
    expect(tracker.sawClose).toBe(false);
    tracker.scan(closeFrame(1000, 'bye', true));
    expect(tracker.sawClose).toBe(true);
    expect(tracker.atBoundary).toBe(true);
  });

  it('tells bytes of data frames from pings and pongs alone, also when a data frame spans several chunks', () => {
    const tracker = new FrameTracker();
    tracker.scan(frame(0x9, Buffer.from('ping'), true));
    tracker.scan(frame(0xa, Buffer.alloc(0), false));
    expect(tracker.carriedData).toBe(false);
    const big = frame(0x2, randomBytes(70_000), true);
    tracker.scan(big.subarray(0, 20));
    expect(tracker.carriedData).toBe(true);
    tracker.carriedData = false;
    // The rest of the frame's payload, in a chunk of its own: still data on its way.
    tracker.scan(big.subarray(20));
    expect(tracker.carriedData).toBe(true);
    tracker.carriedData = false;
    tracker.scan(frame(0xa, Buffer.from('pong'), true));
    expect(tracker.carriedData).toBe(false);
    expect(tracker.atBoundary).toBe(true);
  });

  it('writes empty pings, masked with a key of their own toward a server, unmasked toward a browser', () => {
    expect(pingFrame(false)).toEqual(Buffer.from([0x89, 0x00]));
    const [one, two] = [pingFrame(true), pingFrame(true)];
    expect(one.subarray(0, 2)).toEqual(Buffer.from([0x89, 0x80]));
    expect(one.length).toBe(6);
    expect(one.subarray(2).equals(two.subarray(2))).toBe(false);
    const tracker = new FrameTracker();
    tracker.scan(one);
    expect(tracker.atBoundary).toBe(true);
    expect(tracker.carriedData).toBe(false);
  });

  it('writes close frames with the code and reason, masked toward a server only', () => {
    const plain = closeFrame(4401, 'session_ended', false);
    expect(plain.subarray(0, 2)).toEqual(Buffer.from([0x88, 15]));
    expect(plain.readUInt16BE(2)).toBe(4401);
    expect(plain.subarray(4).toString()).toBe('session_ended');
    const masked = closeFrame(4401, 'session_ended', true);
    expect(masked[1]).toBe(0x80 | 15);
    const key = masked.subarray(2, 6);
    const payload = Buffer.from(masked.subarray(6).map((b, i) => b ^ (key[i & 3] as number)));
    expect(payload.readUInt16BE(0)).toBe(4401);
    expect(payload.subarray(2).toString()).toBe('session_ended');
  });
});
