/**
 * Compiled by `npm run typecheck`, never run: every client node-redis v6 returns must be accepted as the `redis`
 * option, held in a variable (no contextual typing to help), connected or not, with any RESP version, client-side
 * cache, scripts or modules. Anything else must be refused.
 */
import { createClient, createCluster, createSentinel, defineScript, type RedisClientType } from 'redis';
import { createBff, type BffOptions } from '../../src/index.js';

type RedisOption = BffOptions['redis'];
const accept = (redis: RedisOption): RedisOption => redis;

const client = createClient({ url: 'redis://127.0.0.1:6379' });
const cachingClient = createClient({ RESP: 3, clientSideCache: { ttl: 5_000, maxEntries: 10_000, evictPolicy: 'FIFO' } });
const resp2Client = createClient({ RESP: 2 });
const typedClient: RedisClientType = createClient();
accept(client);
accept(cachingClient);
accept(resp2Client);
accept(typedClient);
accept(await client.connect());

const cluster = createCluster({ rootNodes: [{ url: 'redis://127.0.0.1:7000' }] });
const cachingCluster = createCluster({ rootNodes: [{ url: 'redis://127.0.0.1:7000' }], RESP: 3, clientSideCache: { ttl: 5_000 } });
const resp2Cluster = createCluster({ rootNodes: [{ url: 'redis://127.0.0.1:7000' }], RESP: 2 });
const scriptedCluster = createCluster({
  rootNodes: [{ url: 'redis://127.0.0.1:7000' }],
  scripts: { touch: defineScript({ SCRIPT: 'return 1', NUMBER_OF_KEYS: 1, parseCommand: (parser, key: string) => parser.pushKey(key), transformReply: () => 1 as const }) },
});
accept(cluster);
accept(cachingCluster);
accept(resp2Cluster);
accept(scriptedCluster);
accept(await cluster.connect());

const sentinel = createSentinel({ name: 'mymaster', sentinelRootNodes: [{ host: '127.0.0.1', port: 26379 }] });
const cachingSentinel = createSentinel({ name: 'mymaster', sentinelRootNodes: [{ host: '127.0.0.1', port: 26379 }], RESP: 3, clientSideCache: { ttl: 5_000 } });
const resp2Sentinel = createSentinel({ name: 'mymaster', sentinelRootNodes: [{ host: '127.0.0.1', port: 26379 }], RESP: 2 });
accept(sentinel);
accept(cachingSentinel);
accept(resp2Sentinel);
accept(await sentinel.connect());

// As a whole options object, the way the README shows it.
const options: BffOptions = { clientId: 'id', clientSecret: 'secret', issuer: 'https://tenant.example/', baseURL: 'https://app.example', redis: cachingCluster };
createBff({ ...options, redis: cachingSentinel });

// @ts-expect-error a plain object is not a node-redis client
accept({ get: async () => null });
// @ts-expect-error nor is a connection URL
accept('redis://127.0.0.1:6379');
