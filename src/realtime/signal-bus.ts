import type { RedisClient } from '../config/options.js';
import type { Logger } from '../events/events.js';
import { causeName } from '../events/reporter.js';
import { RepeatedLines } from '../events/repeats.js';

/**
 * Tells every BFF instance that sessions ended, so that each closes their connections. With the memory backend
 * there is one process: delivery is local. With Redis, each instance subscribes to `<redisPrefix>session-ended`
 * on a duplicate of the app's client (a subscribed connection can do nothing else), once it has connections to
 * watch. Messages carry session digests, never session ids.
 */
export interface SessionEndBus {
  /** Delivers here at once, and to every other instance. */
  publish(digests: readonly string[]): void;
  /** Starts receiving other instances' signals (idempotent). */
  listen(): void;
  close(): Promise<void>;
}

type Deliver = (digests: readonly string[]) => void;

export function localSessionEndBus(deliver: Deliver): SessionEndBus {
  return {
    publish: (digests) => deliver(digests),
    listen: () => {},
    close: async () => {},
  };
}

/** The waits before each new attempt at a publish that failed. */
const PUBLISH_RETRY_MS = [100, 250, 500, 1_000, 2_000, 4_000];

/** What this module uses of a node-redis client or cluster. */
interface PubSubClient {
  publish(channel: string, message: string): Promise<unknown>;
  duplicate(overrides?: object): PubSubClient;
  connect(): Promise<unknown>;
  subscribe(channel: string, listener: (message: string) => void): Promise<void>;
  on(event: 'error' | 'ready' | 'connect' | 'node-ready', listener: (...args: unknown[]) => void): unknown;
  destroy?(): void;
  close?(): Promise<unknown>;
  disconnect?(): Promise<unknown>;
}

/** node-redis's cluster (`createCluster`), whose events differ from a client's and Sentinel's. */
const isCluster = (client: PubSubClient): boolean => 'masters' in client;

/**
 * `onResubscribed` runs each time the subscription is (re)established: signals sent while it was down were lost,
 * so the caller checks its sessions against the store then.
 */
export function redisSessionEndBus(client: RedisClient, channel: string, deliver: Deliver, onResubscribed: () => void, logger: Logger): SessionEndBus {
  const redis = client as unknown as PubSubClient;
  let subscriber: PubSubClient | undefined;
  let subscribed = false;
  let closed = false;

  /** Publishes sent again after a failure (a blip of the store), until they go out or are given up. */
  const retries = new Set<NodeJS.Timeout>();
  // A store that is down fails every logout's publish: one line per kind of failure, then a count.
  const lines = new RepeatedLines(logger);

  const onMessage = (message: string) => deliver(message.split(' ').filter(Boolean));
  // Sent again a few times, over about 8 s: the other instances' connections would otherwise stay open until their
  // next check of each session (a minute). Delivering twice is harmless.
  const send = (message: string, attempt: number): void => {
    redis.publish(channel, message).catch((error: unknown) => {
      if (closed) return;
      const wait = PUBLISH_RETRY_MS[attempt];
      if (wait === undefined) {
        const cause = causeName(error);
        lines.warn(`publish:${cause}`, 'Could not tell the other instances that sessions ended; their connections close at their next check', { cause });
        return;
      }
      const timer = setTimeout(() => {
        retries.delete(timer);
        send(message, attempt + 1);
      }, wait);
      timer.unref();
      retries.add(timer);
    });
  };
  return {
    publish(digests) {
      if (digests.length === 0) return;
      deliver(digests);
      send(digests.join(' '), 0);
    },
    listen() {
      if (subscriber || closed) return;
      // Client-side caching has no use on a subscribed connection.
      const sub = redis.duplicate({ clientSideCache: undefined });
      subscriber = sub;
      let subscribing = false;
      const warn = (error: unknown) => {
        const cause = causeName(error);
        lines.warn(`subscribe:${cause}`, 'Could not subscribe to session-end signals; connections close at their sessions\' next check', { cause });
      };
      sub.on('error', () => {});
      // Each time the connection is ready: the first time, subscribe; after a reconnect node-redis subscribes again
      // by itself, and what was published meanwhile is checked for. Either way sessions may have ended unheard.
      const onReady = () => {
        if (subscribed) return onResubscribed();
        if (subscribing) return;
        subscribing = true;
        sub.subscribe(channel, onMessage).then(() => {
          subscribed = true;
          onResubscribed();
        }, warn).finally(() => {
          subscribing = false;
        });
      };
      if (isCluster(sub)) {
        // A cluster never says 'ready': it says 'connect' once it knows its slots. A node's connection that comes
        // back (the subscribed one among them, which the cluster subscribes again by itself) says 'node-ready'.
        sub.on('connect', onReady);
        sub.on('node-ready', () => {
          if (subscribed) onResubscribed();
        });
      } else {
        sub.on('ready', onReady);
      }
      sub.connect().catch(warn);
    },
    async close() {
      closed = true;
      for (const timer of retries) clearTimeout(timer);
      retries.clear();
      lines.close();
      const sub = subscriber;
      subscriber = undefined;
      if (!sub) return;
      if (sub.destroy) sub.destroy();
      else await (sub.close ?? sub.disconnect)?.call(sub).catch(() => {});
    },
  };
}
