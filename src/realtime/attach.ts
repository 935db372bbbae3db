import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { BffError, ErrorCode } from '../errors.js';
import { writeJsonError } from './raw-response.js';

/** Node 22 and later ask this of the server for each request with an `Upgrade` header (`shouldUpgradeCallback`). */
type UpgradeQuestion = (this: Server, req: IncomingMessage) => boolean;

/**
 * Listens for WebSocket handshakes on `server`, handing each to `handle` (which returns false for a URL that is
 * not the BFF's). Returns the function that stops listening and puts the server back as it was.
 *
 * Node makes every request with an `Upgrade` header an `upgrade` event once anyone listens for one, unless the
 * server's `shouldUpgradeCallback` (Node 22 and later) says otherwise. Left at its default, a request that asks
 * for another protocol (`Upgrade: h2c` from `curl --http2` or Java's HttpClient), which a server may serve as a
 * plain request, would never reach the app or the API proxy. So on such a server only WebSocket handshakes, and
 * the upgrades another listener takes, become upgrades; the rest are served as requests, as without the BFF.
 */
export function attachToServer(server: Server, handle: (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean): () => void {
  const listener = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (handle(req, socket, head)) return;
    // Nobody else takes upgrades on this server: say so rather than leave the socket hanging.
    if (server.listenerCount('upgrade') === 1) {
      socket.on('error', () => socket.destroy());
      writeJsonError(socket, new BffError(ErrorCode.INVALID_REQUEST, 'No WebSocket endpoint at this path.'));
    }
  };
  server.on('upgrade', listener);

  const asked = server as Server & { shouldUpgradeCallback?: UpgradeQuestion };
  const previous = asked.shouldUpgradeCallback;
  let ours: UpgradeQuestion | undefined;
  if (typeof previous === 'function') {
    ours = function (this: Server, req) {
      if (asksForWebSocket(req.headers.upgrade)) return true;
      // Another protocol: an upgrade only for the server's other listeners, when its own rule says so.
      return this.listenerCount('upgrade') > 1 && previous.call(this, req);
    };
    asked.shouldUpgradeCallback = ours;
  }

  return () => {
    server.off('upgrade', listener);
    if (ours !== undefined && asked.shouldUpgradeCallback === ours) asked.shouldUpgradeCallback = previous;
  };
}

/** Whether an `Upgrade` header names the WebSocket protocol among those it offers (RFC 9110 7.8). */
function asksForWebSocket(upgrade: string | undefined): boolean {
  if (upgrade === undefined) return false;
  for (const offered of upgrade.split(',')) if (offered.trim().toLowerCase() === 'websocket') return true;
  return false;
}
