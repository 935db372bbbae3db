/**
 * Writes a failover must not lose. Redis replicates asynchronously: a master that acknowledged a write and died
 * before its replica had it loses that write when the replica takes over. `WAIT 1 <ms>` holds the answer until a
 * replica has every write made before it on the same connection, or the time is up. The BFF uses it for the one
 * write whose loss a user would notice at once: a new session's record at login (lost, the user would be
 * logged out right after logging in).
 *
 * It is used only with a cluster or Sentinel client (node-redis sends the writes and the WAIT over the same
 * connection there: the key's master connection, or the Sentinel client's shared master lease). A plain client
 * gets no failover from node-redis, and may well point at a server without replicas.
 */

/** The longest a login waits for a replica. A healthy replica answers in about one round trip. */
const MAX_WAIT_MS = 100;
/**
 * After a WAIT no replica answered (the replica is down or far behind), the next logins on that master skip it for
 * this long: WAIT blocks the connection it runs on, and every other command queued behind it would wait too.
 */
const SKIP_AFTER_MISS_MS = 30_000;

type Send = (args: string[]) => Promise<unknown>;

interface ClusterLike {
  slots: Array<{ master: { host?: string; port?: number } } | undefined>;
  nodeClient(node: unknown): Promise<{ sendCommand(args: string[]): Promise<unknown> }>;
}

/**
 * A function that waits (bounded) until a replica has the writes made so far to the masters of `keys`, or
 * undefined when the client is a plain one. It never fails: a WAIT that errs or times out only means the write
 * is not known to be replicated.
 */
export function replicaWaiter(client: unknown, commandTimeoutMs: number): ((keys: readonly string[]) => Promise<void>) | undefined {
  const timeout = String(Math.max(1, Math.min(MAX_WAIT_MS, Math.floor(commandTimeoutMs / 4))));
  const skipUntil = new Map<string, number>();
  const waitOn = async (node: string, send: Send) => {
    if ((skipUntil.get(node) ?? 0) > performance.now()) return;
    try {
      const acked = Number(await send(['WAIT', '1', timeout]));
      if (acked >= 1) skipUntil.delete(node);
      else skipUntil.set(node, performance.now() + SKIP_AFTER_MISS_MS);
    } catch {
      // The write itself was acknowledged; only its replication is unconfirmed.
    }
  };

  const candidate = client as Partial<ClusterLike> & { getMasterNode?: unknown; sendCommand?: (...args: unknown[]) => Promise<unknown> };
  if (Array.isArray(candidate.slots) && typeof candidate.nodeClient === 'function') {
    const cluster = candidate as ClusterLike;
    return async (keys) => {
      const masters = new Map<string, unknown>();
      for (const key of keys) {
        const master = cluster.slots[keySlot(key)]?.master;
        if (master) masters.set(`${master.host}:${master.port}`, master);
      }
      await Promise.all([...masters].map(([address, master]) =>
        waitOn(address, async (args) => (await cluster.nodeClient(master)).sendCommand(args))));
    };
  }
  if (typeof candidate.getMasterNode === 'function' && typeof candidate.sendCommand === 'function') {
    const send = candidate.sendCommand.bind(client);
    return async () => waitOn('master', (args) => send(false, args));
  }
  return undefined;
}

/**
 * The Redis Cluster slot of a key: CRC16 (XMODEM) of its hash tag (the part between the first `{` and the next
 * `}`, when not empty) or of the whole key, modulo 16384 (Redis Cluster specification, "Keys distribution model").
 */
export function keySlot(key: string): number {
  const bytes = Buffer.from(key);
  let start = 0;
  let end = bytes.length;
  const open = bytes.indexOf(0x7b);
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) {
      start = open + 1;
      end = close;
    }
  }
  let crc = 0;
  for (let i = start; i < end; i++) {
    crc ^= (bytes[i] as number) << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16_384;
}
