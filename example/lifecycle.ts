/**
 * The example's HTTP server from the moment it listens to the moment it stops. It listens before the app exists
 * (with PORT=0 the base URL depends on the port it gets), so until `serve()` every request gets a 503 JSON
 * answer instead of waiting forever; and `stop()` lets the requests it accepted finish before it closes their
 * connections.
 */
import type { RequestListener, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** The response a connection is answering (or answered last), on the connection itself. */
const CURRENT = Symbol('current response');
type Connection = Socket & { [CURRENT]?: ServerResponse };

export class ServerLifecycle {
  private handler: RequestListener = answerStarting;
  /** Once a stop began: the responses it waits for that have not closed yet. */
  private inFlight = 0;
  /**
   * The open connections, to find the responses in flight when the server stops. Kept per connection, not per
   * request: a Set that every request enters and leaves made the example's garbage collections three times longer
   * under load (its p99 with them), measured with the bench's profile run and --trace-gc. Nor does a response get
   * a listener of its own before a stop: a second 'close' listener on every response cost the ceiling about 1 us
   * of CPU per request (3 % of its requests per second) in the bench's conditions.
   */
  private readonly connections = new Set<Connection>();
  private draining = false;
  private whenIdle: (() => void) | undefined;
  private stopped: Promise<void> | undefined;
  private markClosed!: () => void;
  /**
   * Resolves once the server has closed entirely, after `stop()`: connections upgraded to WebSockets are no
   * longer the HTTP server's to end, and hold this until whoever upgraded them closes them.
   */
  readonly closed = new Promise<void>((resolve) => (this.markClosed = resolve));

  constructor(private readonly server: Server) {
    server.on('request', this.onRequest);
    server.on('connection', (socket: Connection) => {
      this.connections.add(socket);
      socket.once('close', () => this.connections.delete(socket));
    });
  }

  /** From now on requests go to `app`. */
  serve(app: RequestListener): void {
    this.handler = app;
  }

  /**
   * Stops accepting connections and closes the idle ones at once; requests already accepted (also those that
   * arrive meanwhile on their connections) get their real answer, with `Connection: close`, for up to `graceMs`.
   * Then every HTTP connection left is closed (see `closed` for the rest). Calling it again returns the same stop.
   */
  stop(graceMs: number): Promise<void> {
    return (this.stopped ??= this.drain(graceMs));
  }

  private readonly onRequest = (req: Parameters<RequestListener>[0], res: ServerResponse): void => {
    (req.socket as Connection)[CURRENT] = res;
    if (this.draining) {
      res.setHeader('Connection', 'close');
      this.waitFor(res);
    }
    this.handler(req, res);
  };

  /** A response the stop waits for, until it closes (answered, or given up by its browser). */
  private waitFor(res: ServerResponse): void {
    this.inFlight++;
    // One listener for every response ('close' comes once), not a closure per request.
    res.on('close', this.onResponseClose);
  }

  private readonly onResponseClose = (): void => {
    if (--this.inFlight === 0) this.whenIdle?.();
  };

  private async drain(graceMs: number): Promise<void> {
    this.draining = true;
    // close() stops listening and ends the idle keep-alive connections; the callback waits for the rest.
    this.server.close(() => this.markClosed());
    // The responses in flight: each connection's latest one that has not finished (responses on a connection go
    // out in order, so that one finishes last). Browsers should not send another request on a connection that is
    // about to be closed.
    for (const socket of this.connections) {
      const res = socket[CURRENT];
      if (res === undefined || res.writableFinished || socket.destroyed) continue;
      if (!res.headersSent) res.setHeader('Connection', 'close');
      this.waitFor(res);
    }
    if (graceMs > 0 && this.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.whenIdle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    // Whatever is still open now is idle, or past the grace period.
    this.server.closeAllConnections();
  }
}

/** What a request gets before the app is attached: a clear, retryable answer. */
function answerStarting(_req: Parameters<RequestListener>[0], res: ServerResponse): void {
  const body = JSON.stringify({ error: 'starting', error_description: 'The server is starting; try again in a moment.' });
  res.writeHead(503, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'Retry-After': '1',
  });
  res.end(body);
}
