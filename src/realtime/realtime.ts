import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { BffConfig } from '../config/validate.js';
import type { DPoP } from '../dpop/dpop.js';
import type { Reporter } from '../events/reporter.js';
import type { Sessions } from '../session/sessions.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import type { TokenManager } from '../tokens/token-manager.js';
import { attachToServer } from './attach.js';
import { WebSocketCloseCode } from './close-codes.js';
import { rememberEndedMs, SessionConnections, sessionDigest, type StreamTracker } from './registry.js';
import { SessionWatch } from './session-watch.js';
import { localSessionEndBus, redisSessionEndBus, type SessionEndBus } from './signal-bus.js';
import { UpgradeHandler } from './upgrade.js';

/** The real-time part of a BFF: WebSockets on the API mounts, and every long connection tied to its session. */
export interface Realtime {
  /** See `Bff.handleUpgrade`. */
  readonly handleUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;
  /** See `Bff.attach`. */
  attach(server: Server): () => void;
  /** Where the API proxy registers its long responses. */
  readonly streams: StreamTracker;
  /** Closes every connection (1001) and stops listening. */
  close(): Promise<void>;
}

/**
 * Wires the parts: every session end (`Sessions.endAll`, whatever its cause) is signalled to every instance, and
 * each closes that session's WebSockets (4401) and long responses; a watch notices idle and absolute timeouts of
 * sessions with open connections.
 */
export function createRealtime(config: BffConfig, sessions: Sessions, tokens: TokenManager, dpop: DPoP | undefined, servedApp: (req: IncomingMessage) => unknown, report: Reporter, telemetry: Telemetry): Realtime {
  // The watch runs, and the bus listens, once there is a connection to watch.
  const connections = new SessionConnections(() => {
    watch.start();
    bus.listen();
  }, rememberEndedMs(config.apis.map((api) => api.timeoutMs), config.tokens.exchangeDeadlineMs));
  const watch = new SessionWatch(config, sessions, connections, report);
  const deliver = (digests: readonly string[]) => connections.end(digests);
  const bus: SessionEndBus = config.redis
    ? redisSessionEndBus(config.redis, `${config.redisPrefix}session-ended`, deliver, () => watch.checkAll(), config.logger)
    : localSessionEndBus(deliver);
  sessions.onEnd((ids) => bus.publish(ids.map(sessionDigest)));
  const upgrades = new UpgradeHandler(config, sessions, tokens, connections, watch, dpop, servedApp, report, telemetry);
  const detachers = new Set<() => void>();

  return {
    handleUpgrade: upgrades.handle,
    streams: connections,
    attach(server) {
      const stop = attachToServer(server, upgrades.handle);
      const detach = () => {
        stop();
        detachers.delete(detach);
      };
      detachers.add(detach);
      return detach;
    },
    async close() {
      for (const detach of [...detachers]) detach();
      connections.closeAll(WebSocketCloseCode.GOING_AWAY, 'bff_closing');
      watch.stop();
      await bus.close();
    },
  };
}
