import { randomBytes } from 'node:crypto';

const OPCODE_CLOSE = 0x8;

/**
 * Follows the frame boundaries of one direction of a WebSocket connection (RFC 6455 5.2) by reading frame headers
 * and skipping payloads: nothing is decoded, unmasked or copied. The tunnel forwards bytes unchanged; this only
 * tells it where it may put a frame of its own (a close frame, a ping), and what kind of frames went by.
 */
export class FrameTracker {
  /** Payload bytes of the current frame not seen yet. */
  private payloadLeft = 0;
  /** The frame header being read, when a chunk ended inside one (at most 14 bytes). */
  private readonly head = Buffer.alloc(14);
  private headLength = 0;
  /** A data frame (text, binary or continuation) went by since this was last reset. */
  sawData = false;
  /** Bytes of a data frame (its header or payload) went by since this was last reset: not only control frames. */
  carriedData = false;
  /** The frame under way is a data frame. */
  private inData = false;
  /** A close frame went by: the connection is closing as the endpoints agreed. */
  sawClose = false;

  /** Between two frames: a frame of the BFF's own may be written now. */
  get atBoundary(): boolean {
    return this.payloadLeft === 0 && this.headLength === 0;
  }

  /**
   * Follows `chunk`. Returns where it stopped: the chunk's length, or with `stopAtBoundary`, the offset of the first
   * frame boundary (0 when already at one).
   */
  scan(chunk: Buffer, stopAtBoundary = false): number {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.payloadLeft > 0) {
        const take = Math.min(this.payloadLeft, n - i);
        this.payloadLeft -= take;
        if (this.inData) this.carriedData = true;
        i += take;
        if (stopAtBoundary && this.payloadLeft === 0) return i;
        continue;
      }
      if (stopAtBoundary && this.headLength === 0) return i;
      this.head[this.headLength++] = chunk[i++] as number;
      if (this.headLength < 2) continue;
      const second = this.head[1] as number;
      const length7 = second & 0x7f;
      const size = 2 + (length7 === 126 ? 2 : length7 === 127 ? 8 : 0) + (second & 0x80 ? 4 : 0);
      if (this.headLength < size) continue;
      const opcode = (this.head[0] as number) & 0x0f;
      this.inData = opcode < OPCODE_CLOSE;
      if (opcode === OPCODE_CLOSE) this.sawClose = true;
      else if (this.inData) this.sawData = this.carriedData = true;
      this.payloadLeft = length7 === 126
        ? this.head.readUInt16BE(2)
        : length7 === 127 ? this.head.readUInt32BE(2) * 2 ** 32 + this.head.readUInt32BE(6) : length7;
      this.headLength = 0;
      if (stopAtBoundary && this.payloadLeft === 0) return i;
    }
    return n;
  }
}

/** An empty ping (RFC 6455 5.5.2); masked toward a server (5.3), with a key of its own each time. */
export function pingFrame(masked: boolean): Buffer {
  return masked ? Buffer.concat([Buffer.from([0x89, 0x80]), randomBytes(4)]) : Buffer.from([0x89, 0x00]);
}

/**
 * A close frame (RFC 6455 5.5.1) with a code and a short reason. Frames toward a server (the upstream) must be
 * masked (5.3); frames toward a client (the browser) must not be.
 */
export function closeFrame(code: number, reason: string, masked: boolean): Buffer {
  const text = Buffer.from(reason, 'utf8').subarray(0, 123);
  const payload = Buffer.alloc(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  const header = Buffer.from([0x80 | OPCODE_CLOSE, (masked ? 0x80 : 0) | payload.length]);
  if (!masked) return Buffer.concat([header, payload]);
  const mask = randomBytes(4);
  for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (mask[i & 3] as number);
  return Buffer.concat([header, mask, payload]);
}
