import { connect, type Socket } from 'node:net';

/** One answer read off the wire, as the bytes came. */
export interface RawAnswer {
  status: number;
  /** Header names in lower case; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
  /** Status line, headers and body exactly as received (interim 1xx answers included). */
  raw: Buffer;
}

/**
 * An HTTP/1.1 client that sends bytes exactly as given: request targets with dot segments, fragments, control
 * bytes or absolute-form reach the server untouched, where fetch would normalise or refuse them. One request at
 * a time over a kept-alive connection, opened again whenever the server closes it.
 */
export class RawHttpClient {
  private socket: Socket | undefined;
  private buffer: Buffer = Buffer.alloc(0);
  private closed = true;
  private waiter: (() => void) | undefined;
  /** One request at a time: a second one sent meanwhile would be given the first one's answer. */
  private busy = false;

  constructor(private readonly port: number, private readonly timeoutMs = 10_000) {}

  /**
   * Sends one request: the request line and header lines as given (latin1 bytes), then `Content-Length` framing
   * for `body`. Lines with line breaks of their own may hold more than one request: the connection is dropped
   * after the first answer, so that a later answer is never taken for the next request's.
   */
  async send(lines: string[], body: Buffer | string = ''): Promise<RawAnswer> {
    const payload = typeof body === 'string' ? Buffer.from(body, 'latin1') : body;
    const framing = payload.length > 0 || /^(POST|PUT|PATCH) /.test(lines[0] ?? '') ? [`Content-Length: ${payload.length}`] : [];
    const request = Buffer.concat([Buffer.from(`${[...lines, ...framing].join('\r\n')}\r\n\r\n`, 'latin1'), payload]);
    const split = lines.some((line) => /[\r\n]/.test(line));
    const head = (lines[0] ?? '').startsWith('HEAD ');
    const reused = this.socket !== undefined && !this.closed;
    if (this.busy) throw new Error('RawHttpClient sends one request at a time');
    this.busy = true;
    try {
      return await this.exchange(request, head, split);
    } catch (error) {
      // A kept-alive connection the server closed just as the request went out: that request was never read.
      if (reused && /closed without an answer \(0 bytes\)/.test((error as Error).message)) return await this.exchange(request, head, split);
      throw error;
    } finally {
      this.busy = false;
    }
  }

  private async exchange(request: Buffer, head: boolean, split: boolean): Promise<RawAnswer> {
    const socket = await this.open();
    socket.write(request);
    const timer = setTimeout(() => socket.destroy(new Error('timeout')), this.timeoutMs);
    try {
      const answer = await this.readAnswer(head);
      if (split || this.buffer.length > 0) this.drop();
      return answer;
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.drop();
  }

  private drop(): void {
    this.socket?.destroy();
    this.socket = undefined;
    this.closed = true;
    this.buffer = Buffer.alloc(0);
  }

  private open(): Promise<Socket> {
    if (this.socket && !this.closed) return Promise.resolve(this.socket);
    return new Promise((resolve, reject) => {
      const socket = connect(this.port, '127.0.0.1');
      this.buffer = Buffer.alloc(0);
      this.closed = false;
      socket.setNoDelay(true);
      // A connection dropped earlier may still report: only the current one counts.
      socket.on('data', (chunk: Buffer) => {
        if (this.socket !== socket) return;
        this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
        this.wake();
      });
      socket.on('close', () => {
        if (this.socket !== socket) return;
        this.closed = true;
        this.wake();
      });
      socket.on('error', () => {});
      socket.once('connect', () => resolve(socket));
      socket.once('error', reject);
      this.socket = socket;
    });
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  /** Waits for more bytes (or the close); false when the connection is closed and nothing more can come. */
  private async more(): Promise<boolean> {
    if (this.closed) return false;
    await new Promise<void>((resolve) => (this.waiter = resolve));
    return true;
  }

  private async readAnswer(head: boolean): Promise<RawAnswer> {
    let consumed = 0;
    for (;;) {
      const end = this.buffer.indexOf('\r\n\r\n', consumed);
      if (end < 0) {
        if (!(await this.more()) && this.buffer.indexOf('\r\n\r\n', consumed) < 0) throw new Error(`the connection closed without an answer (${this.buffer.length - consumed} bytes)`);
        continue;
      }
      const lines = this.buffer.subarray(consumed, end).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1]);
      if (!Number.isInteger(status)) throw new Error(`not an HTTP answer: ${JSON.stringify(lines[0])}`);
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
      }
      let offset = end + 4;
      // Interim answers (100 Continue) come before the real one.
      if (status < 200) {
        consumed = offset;
        continue;
      }
      let body: Buffer;
      if (head || status === 204 || status === 304) {
        body = Buffer.alloc(0);
      } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
        const parts: Buffer[] = [];
        for (;;) {
          const lineEnd = await this.until(() => this.buffer.indexOf('\r\n', offset));
          const size = Number.parseInt(this.buffer.subarray(offset, lineEnd).toString('latin1'), 16);
          offset = lineEnd + 2;
          if (size === 0) {
            offset = (await this.until(() => this.buffer.indexOf('\r\n', offset))) + 2;
            break;
          }
          await this.until(() => (this.buffer.length >= offset + size + 2 ? 0 : -1));
          parts.push(this.buffer.subarray(offset, offset + size));
          offset += size + 2;
        }
        body = Buffer.concat(parts);
      } else if (headers['content-length'] !== undefined) {
        const length = Number(headers['content-length']);
        await this.until(() => (this.buffer.length >= offset + length ? 0 : -1));
        body = this.buffer.subarray(offset, offset + length);
        offset += length;
      } else {
        // No framing: the body runs to the end of the connection.
        while (await this.more());
        body = this.buffer.subarray(offset);
        offset = this.buffer.length;
      }
      const raw = Buffer.from(this.buffer.subarray(0, offset));
      this.buffer = this.buffer.subarray(offset);
      if (/close/i.test(headers.connection ?? '')) this.drop();
      return { status, headers, body: Buffer.from(body), raw };
    }
  }

  /** Waits until `find` returns an index >= 0 (bytes arrived), failing when the connection closes first. */
  private async until(find: () => number): Promise<number> {
    for (;;) {
      const found = find();
      if (found >= 0) return found;
      if (!(await this.more())) {
        const last = find();
        if (last >= 0) return last;
        throw new Error('the connection closed in the middle of an answer');
      }
    }
  }
}
