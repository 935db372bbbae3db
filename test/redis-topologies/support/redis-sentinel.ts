import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createClient, createSentinel } from 'redis';
import type { RedisClient } from '../../../src/index.js';
import { waitFor } from '../../support/harness.js';
import { baseArgs, freePort, makeDir, removeDir, startRedisServer, type RedisServer } from './redis-server.js';

export const MASTER_NAME = 'bfftest';

/** A master, its replica and three Sentinels of the test's own, on free ports. */
export interface RedisSentinelSetup {
  readonly master: RedisServer;
  readonly replica: RedisServer;
  readonly sentinels: RedisServer[];
  /** A new Sentinel client as the README sets one up, optionally with RESP3 client-side caching. */
  connect(options?: { clientSideCache?: { ttl?: number } }): Promise<RedisClient>;
  /** The port of the master the Sentinels agree on now. */
  masterPort(): Promise<number>;
  /** Where any key lives: the master and its replica. */
  homeOf(key: string): Promise<{ master: number; replica: RedisServer }>;
  /** The replica, while it is one. */
  replicaServers(): Promise<RedisServer[]>;
  /** A plain connection to one server (to look at its keys and role). */
  node(port: number): Promise<ReturnType<typeof createClient>>;
  stop(): Promise<void>;
}

export async function startRedisSentinel(): Promise<RedisSentinelSetup> {
  const dir = await makeDir('sentinel');
  const started: RedisServer[] = [];
  const connections = new Map<number, ReturnType<typeof createClient>>();
  const clients: RedisClient[] = [];
  const stopAll = async () => {
    for (const client of clients) await (client as unknown as { destroy(): Promise<void> | void }).destroy();
    for (const connection of connections.values()) if (connection.isOpen) connection.destroy();
    await Promise.all(started.map((s) => s.kill('SIGKILL')));
    await removeDir(dir);
  };

  const node = async (port: number) => {
    let connection = connections.get(port);
    if (connection?.isOpen) return connection;
    connection = createClient({ socket: { host: '127.0.0.1', port, connectTimeout: 1_000, reconnectStrategy: false } });
    connection.on('error', () => {});
    await connection.connect();
    connections.set(port, connection);
    return connection;
  };

  try {
    const master = await startRedisServer(dir, (port) => [...baseArgs(port), '--dir', dir]);
    started.push(master);
    const replica = await startRedisServer(dir, (port) => [...baseArgs(port), '--dir', dir, '--replicaof', '127.0.0.1', String(master.port)]);
    started.push(replica);
    await waitFor(async () => String(await (await node(replica.port)).sendCommand(['INFO', 'replication'])).includes('master_link_status:up'), 'the replica is in sync');

    const sentinels: RedisServer[] = [];
    for (let i = 0; i < 3; i++) {
      // Sentinel rewrites its configuration file: each gets its own, in the topology's directory.
      const file = join(dir, `sentinel-${i}-${await freePort()}.conf`);
      await writeFile(file, [
        `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${master.port} 2`,
        // A master silent for 1 s is down; a failover that stalls is retried after 5 s.
        `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
        `sentinel failover-timeout ${MASTER_NAME} 5000`,
        `sentinel parallel-syncs ${MASTER_NAME} 1`,
        '',
      ].join('\n'));
      const sentinel = await startRedisServer(dir, (port) => [file, '--port', String(port), '--bind', '127.0.0.1', '--daemonize', 'no', '--logfile', '', '--dir', dir], { sentinel: true });
      started.push(sentinel);
      sentinels.push(sentinel);
    }
    // Each Sentinel knows the replica and the two other Sentinels before a failover can be trusted to work.
    await waitFor(async () => {
      for (const s of sentinels) {
        const info = await (await node(s.port)).sendCommand(['SENTINEL', 'MASTER', MASTER_NAME]) as unknown;
        const fields = toMap(info);
        if (fields['num-other-sentinels'] !== '2' || fields['num-slaves'] !== '1') return false;
      }
      return true;
    }, 'the Sentinels know each other and the replica', 20_000);

    const setup: RedisSentinelSetup = {
      master,
      replica,
      sentinels,
      node,
      async masterPort() {
        for (const s of sentinels) {
          if (s.exited) continue;
          const [, port] = (await (await node(s.port)).sendCommand(['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME])) as string[];
          return Number(port);
        }
        throw new Error('no Sentinel is running');
      },
      async homeOf() {
        return { master: await setup.masterPort(), replica };
      },
      async replicaServers() {
        return (await setup.masterPort()) === replica.port ? [] : [replica];
      },
      async connect(options = {}) {
        const sentinel = createSentinel(readmeSentinelOptions(sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })), options.clientSideCache));
        sentinel.on('error', () => {});
        await sentinel.connect();
        clients.push(sentinel as unknown as RedisClient);
        return sentinel as unknown as RedisClient;
      },
      stop: stopAll,
    };
    return setup;
  } catch (error) {
    const logs = started.map((s) => `--- ${s.port}\n${s.output()}`).join('\n');
    await stopAll();
    throw new Error(`${(error as Error).message}\n${logs}`);
  }
}

/** The client setup of the README's "Redis Cluster and Sentinel" section, as the tests use it. */
export function readmeSentinelOptions(sentinelRootNodes: Array<{ host: string; port: number }>, clientSideCache?: { ttl?: number }) {
  const socket = { connectTimeout: 2_000, reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2_000) };
  return {
    name: MASTER_NAME,
    sentinelRootNodes,
    nodeClientOptions: { socket },
    sentinelClientOptions: { socket },
    ...(clientSideCache ? { RESP: 3 as const, clientSideCache: { ttl: 5_000, maxEntries: 10_000, ...clientSideCache } } : {}),
  };
}

/** A flat [k, v, k, v] reply (RESP2) or a map (RESP3) as an object. */
function toMap(reply: unknown): Record<string, string> {
  if (Array.isArray(reply)) {
    const out: Record<string, string> = {};
    for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1]);
    return out;
  }
  return Object.fromEntries(Object.entries(reply as object).map(([k, v]) => [k, String(v)]));
}
