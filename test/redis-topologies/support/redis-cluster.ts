import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createClient, createCluster } from 'redis';
import type { RedisClient } from '../../../src/index.js';
import { waitFor } from '../../support/harness.js';
import { baseArgs, makeDir, removeDir, startRedisServer, type RedisServer } from './redis-server.js';

const run = promisify(execFile);

/** One master of the cluster as it is now: its port, its slot ranges and its replicas' ports. */
export interface ClusterMaster {
  port: number;
  slots: Array<[number, number]>;
  replicas: number[];
}

/** A Redis Cluster of the test's own: 3 masters with a replica each, on free ports. */
export interface RedisClusterSetup {
  readonly nodes: RedisServer[];
  /**
   * A new cluster client as the README sets one up, optionally with RESP3 client-side caching.
   * It refreshes its topology quickly after losing a node (the failover tests wait for it).
   */
  connect(options?: { clientSideCache?: { ttl?: number } }): Promise<RedisClient>;
  /** The masters as the cluster reports them now (asked of a live node). */
  masters(): Promise<ClusterMaster[]>;
  /** A plain connection to one node (for CLUSTER and MIGRATE commands, and to look at its keys). */
  node(port: number): Promise<NodeConnection>;
  /** Waits until every live node agrees the cluster is healthy and has a master for every slot. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export type NodeConnection = ReturnType<typeof createClient> & { isOpen: boolean };

/** Cluster settings that make failover quick enough for a test: a node is failed after 1 s of silence. */
const NODE_TIMEOUT_MS = 1_000;

export async function startRedisCluster(): Promise<RedisClusterSetup> {
  const dir = await makeDir('cluster');
  const nodes: RedisServer[] = [];
  const connections = new Map<number, NodeConnection>();
  const clients: RedisClient[] = [];
  try {
    for (let i = 0; i < 6; i++) {
      nodes.push(await startRedisServer(dir, (port) => [
        ...baseArgs(port),
        '--dir', dir,
        '--cluster-enabled', 'yes',
        '--cluster-config-file', `nodes-${port}.conf`,
        '--cluster-node-timeout', String(NODE_TIMEOUT_MS),
        // The bus port is picked too: port + 10000 could be taken, or past 65535.
        '--cluster-port', String(port + 10_000 <= 65_535 ? port + 10_000 : port - 10_000),
        // A replica may always take over, however long its master was away.
        '--cluster-replica-validity-factor', '0',
      ]));
    }
  } catch (error) {
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    await removeDir(dir);
    throw error;
  }

  const node = async (port: number): Promise<NodeConnection> => {
    let connection = connections.get(port);
    if (connection?.isOpen) return connection;
    connection = createClient({ socket: { host: '127.0.0.1', port, connectTimeout: 1_000, reconnectStrategy: false } }) as NodeConnection;
    connection.on('error', () => {});
    await connection.connect();
    connections.set(port, connection);
    return connection;
  };

  const masters = async (): Promise<ClusterMaster[]> => {
    for (const n of nodes) {
      if (n.exited) continue;
      const text = String(await (await node(n.port)).sendCommand(['CLUSTER', 'NODES']));
      return parseMasters(text);
    }
    throw new Error('no cluster node is running');
  };

  const waitHealthy = async (timeoutMs = 20_000) => {
    await waitFor(async () => {
      for (const n of nodes) {
        if (n.exited) continue;
        const info = String(await (await node(n.port)).sendCommand(['CLUSTER', 'INFO']));
        if (!info.includes('cluster_state:ok') || !info.includes('cluster_slots_assigned:16384')) return false;
      }
      const current = await masters();
      const live = new Set(nodes.filter((n) => !n.exited).map((n) => n.port));
      return current.every((m) => live.has(m.port)) && current.reduce((sum, m) => sum + m.slots.reduce((s, [a, b]) => s + b - a + 1, 0), 0) === 16_384;
    }, 'the cluster is healthy', timeoutMs);
  };

  try {
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'], { timeout: 30_000 });
    await waitHealthy();
    // Failover needs replicas that are in sync with their masters.
    await waitFor(async () => {
      for (const m of await masters()) {
        if (m.replicas.length !== 1) return false;
        for (const r of m.replicas) if (!String(await (await node(r)).sendCommand(['INFO', 'replication'])).includes('master_link_status:up')) return false;
      }
      return true;
    }, 'every replica is in sync', 20_000);
  } catch (error) {
    const logs = nodes.map((n) => `--- ${n.port}\n${n.output()}`).join('\n');
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    await removeDir(dir);
    throw new Error(`${(error as Error).message}\n${logs}`);
  }

  return {
    nodes,
    node,
    masters,
    waitHealthy,
    async connect(options = {}) {
      const cluster = createCluster({
        rootNodes: nodes.map((n) => ({ url: `redis://127.0.0.1:${n.port}` })),
        defaults: { socket: { connectTimeout: 1_000, reconnectStrategy: () => 100 } },
        // After a node's connection drops, ask the cluster for its new shape after 500 ms instead of 5 s.
        topologyRefreshOnReconnectionAttemptStrategy: 500,
        ...(options.clientSideCache ? { RESP: 3 as const, clientSideCache: { maxEntries: 1_000, ...options.clientSideCache } } : {}),
      });
      cluster.on('error', () => {});
      await cluster.connect();
      clients.push(cluster as unknown as RedisClient);
      return cluster as unknown as RedisClient;
    },
    async stop() {
      for (const client of clients) (client as unknown as { destroy(): void }).destroy();
      for (const connection of connections.values()) if (connection.isOpen) connection.destroy();
      await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
      await removeDir(dir);
    },
  };
}

/** Masters from `CLUSTER NODES` (id addr flags master ping pong epoch link slot...). */
function parseMasters(text: string): ClusterMaster[] {
  const rows = text.trim().split('\n').map((line) => line.split(' '));
  const portOf = (addr: string) => Number(addr.split('@')[0]?.split(':')[1]);
  const byId = new Map<string, ClusterMaster>();
  for (const [id, addr, flags, , , , , link, ...slots] of rows) {
    if (!flags?.includes('master') || flags.includes('fail') || link !== 'connected' && !flags.includes('myself')) continue;
    const ranges = slots.filter((s) => !s.startsWith('[')).map((s) => {
      const [a, b] = s.split('-').map(Number);
      return [a, b ?? a] as [number, number];
    });
    if (ranges.length > 0) byId.set(id as string, { port: portOf(addr as string), slots: ranges, replicas: [] });
  }
  for (const [, addr, flags, masterId, , , , link] of rows) {
    if (!flags?.includes('slave') || flags.includes('fail') || link !== 'connected' && !flags.includes('myself')) continue;
    byId.get(masterId as string)?.replicas.push(portOf(addr as string));
  }
  return [...byId.values()];
}
