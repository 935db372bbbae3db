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
  /** The port of the master that holds a key now (the cluster computes its slot). */
  masterOf(key: string): Promise<number>;
  /** The master that holds a key and its replica. */
  homeOf(key: string): Promise<{ master: number; replica: RedisServer }>;
  /** The nodes that are replicas now. */
  replicaServers(): Promise<RedisServer[]>;
  /** A plain connection to one node (for CLUSTER and MIGRATE commands, and to look at its keys). */
  node(port: number): Promise<NodeConnection>;
  /**
   * Starts moving a slot to another master the way `redis-cli --cluster reshard` does (CLUSTER SETSLOT IMPORTING
   * and MIGRATING, then MIGRATE of its keys, then SETSLOT NODE everywhere), one step at a time so that a test can
   * act while the slot's keys are split between the two nodes.
   */
  migrateSlot(slot: number, toPort: number): Promise<SlotMigration>;
  /** Waits until every live node agrees the cluster is healthy and has a master for every slot. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface SlotMigration {
  readonly fromPort: number;
  readonly toPort: number;
  /** Moves these keys of the slot (default: every key still on the source). */
  moveKeys(keys?: string[]): Promise<void>;
  /** Moves what is left and gives the slot to the target on every master. */
  finish(): Promise<void>;
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
        // The README's recommendation: while a master fails over, the other masters go on serving their slots.
        '--cluster-require-full-coverage', 'no',
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

  const masterOf = async (key: string) => {
    const current = await masters();
    const slot = Number(await (await node(current[0]!.port)).sendCommand(['CLUSTER', 'KEYSLOT', key]));
    const home = current.find((m) => m.slots.some(([a, z]) => slot >= a && slot <= z));
    if (!home) throw new Error(`no master holds slot ${slot}`);
    return home.port;
  };

  const migrateSlot = async (slot: number, toPort: number): Promise<SlotMigration> => {
    const current = await masters();
    const from = current.find((m) => m.slots.some(([a, z]) => slot >= a && slot <= z));
    if (!from || from.port === toPort) throw new Error(`slot ${slot} is not on another master than ${toPort}`);
    const idOf = async (port: number) => String(await (await node(port)).sendCommand(['CLUSTER', 'MYID']));
    const [fromId, toId] = await Promise.all([idOf(from.port), idOf(toPort)]);
    const source = await node(from.port);
    await (await node(toPort)).sendCommand(['CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', fromId]);
    await source.sendCommand(['CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', toId]);
    const moveKeys = async (keys?: string[]) => {
      const chosen = keys ?? ((await source.sendCommand(['CLUSTER', 'GETKEYSINSLOT', String(slot), '1000'])) as string[]);
      if (chosen.length > 0) await source.sendCommand(['MIGRATE', '127.0.0.1', String(toPort), '', '0', '5000', 'KEYS', ...chosen]);
    };
    return {
      fromPort: from.port,
      toPort,
      moveKeys,
      async finish() {
        await moveKeys();
        // The target first, then the source, then the others (as redis-cli does).
        for (const port of [toPort, from.port, ...current.map((m) => m.port).filter((p) => p !== toPort && p !== from.port)]) {
          await (await node(port)).sendCommand(['CLUSTER', 'SETSLOT', String(slot), 'NODE', toId]);
        }
      },
    };
  };

  const homeOf = async (key: string) => {
    const master = await masterOf(key);
    const port = (await masters()).find((m) => m.port === master)?.replicas[0];
    const replica = nodes.find((n) => n.port === port);
    if (!replica) throw new Error(`the master ${master} has no replica`);
    return { master, replica };
  };

  return {
    nodes,
    node,
    masters,
    masterOf,
    homeOf,
    async replicaServers() {
      const ports = new Set((await masters()).flatMap((m) => m.replicas));
      return nodes.filter((n) => ports.has(n.port));
    },
    migrateSlot,
    waitHealthy,
    async connect(options = {}) {
      const cluster = createCluster(readmeClusterOptions(nodes.map((n) => `redis://127.0.0.1:${n.port}`), options.clientSideCache));
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

/**
 * The client setup of the README's "Redis Cluster and Sentinel" section, as the tests use it: change one, change
 * the other.
 */
export function readmeClusterOptions(urls: string[], clientSideCache?: { ttl?: number }) {
  return {
    rootNodes: urls.map((url) => ({ url })),
    defaults: { socket: { connectTimeout: 2_000, reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2_000) } },
    topologyRefreshOnReconnectionAttemptStrategy: 1_000,
    ...(clientSideCache ? { RESP: 3 as const, clientSideCache: { ttl: 5_000, maxEntries: 10_000, ...clientSideCache } } : {}),
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
