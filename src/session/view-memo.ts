import type { SessionView } from './record.js';

/**
 * What this module needs of node-redis's client-side cache (`client.clientSideCache`, present when the app's
 * client was created with `RESP: 3` and `clientSideCache`).
 */
interface ClientSideCache {
  /** The current entry for a command's cache key, or undefined once invalidated, expired, evicted or cleared. */
  get(cacheKey: string): unknown;
  on(event: 'invalidate', listener: (key: string | Buffer | null) => void): unknown;
  off(event: 'invalidate', listener: (key: string | Buffer | null) => void): unknown;
  readonly maxEntries?: number;
}

export interface ViewMemo {
  /** The decoded view of a read node-redis still holds as current, without a round trip or an await. */
  get(id: string, audience: string): SessionView | undefined;
  /** Remembers the decoded view of a read that node-redis just cached (`args` is the HMGET it ran). */
  remember(id: string, audience: string, args: readonly string[], reply: ReadonlyArray<string | null>, view: SessionView): void;
  /** Forgets a session at once (it ended here). */
  forget(id: string): void;
  close(): void;
}

interface Memo {
  readonly cacheKey: string;
  /** node-redis's cache entry the view was decoded from: the memo is good exactly as long as it is current. */
  readonly entry: object;
  readonly view: SessionView;
}

/**
 * Decoded session views on top of node-redis's client-side cache, so that an API call of a cached session costs
 * two Map lookups instead of a command, a structured clone and a decode.
 *
 * It decides nothing on its own: a view is returned only while node-redis still holds, as current, the very
 * entry the view was decoded from. An invalidation from Redis, a ttl expiry, an eviction, or the cache being
 * emptied when the connection drops all replace or remove that entry, and the memo with it. Invalidations also
 * drop memos eagerly, so ended sessions leave nothing behind.
 * Returns undefined when the client has no client-side cache.
 *
 * `onInvalidated` hears of every key Redis says changed (undefined: every key may have), so that a process waiting
 * for another's token exchange reads the new token as soon as it is stored.
 */
export function createViewMemo(client: unknown, tokKeyPrefix: string, onInvalidated?: (key: string | undefined) => void): ViewMemo | undefined {
  const cache = (client as { clientSideCache?: Partial<ClientSideCache> } | undefined)?.clientSideCache;
  if (!cache || typeof cache.get !== 'function' || typeof cache.on !== 'function' || typeof cache.off !== 'function') return undefined;
  const csc = cache as ClientSideCache;
  const capacity = csc.maxEntries && csc.maxEntries > 0 ? csc.maxEntries : 10_000;
  // Session id -> audience -> memo. Insertion order gives the oldest session to drop when full.
  const memos = new Map<string, Map<string, Memo>>();

  // Keys look like `<prefix>tok:{<id>}`.
  const onInvalidate = (key: string | Buffer | null) => {
    if (key === null) {
      memos.clear();
      return onInvalidated?.(undefined);
    }
    const name = key.toString();
    if (name.startsWith(tokKeyPrefix) && name.endsWith('}')) memos.delete(name.slice(tokKeyPrefix.length + 1, -1));
    onInvalidated?.(name);
  };
  csc.on('invalidate', onInvalidate);

  return {
    get(id, audience) {
      const byAudience = memos.get(id);
      const memo = byAudience?.get(audience);
      if (memo === undefined) return undefined;
      if (csc.get(memo.cacheKey) === memo.entry) return memo.view;
      byAudience?.delete(audience);
      return undefined;
    },
    remember(id, audience, args, reply, view) {
      const cacheKey = cacheKeyOf(args);
      const entry = csc.get(cacheKey);
      // The entry must hold exactly what was decoded: not one a newer read stored meanwhile.
      const value = (entry as { value?: unknown } | undefined)?.value;
      if (typeof entry !== 'object' || entry === null || !Array.isArray(value) || value.length !== reply.length) return;
      for (let i = 0; i < reply.length; i++) if (value[i] !== reply[i]) return;
      let byAudience = memos.get(id);
      if (byAudience === undefined) {
        if (memos.size >= capacity) memos.delete(memos.keys().next().value as string);
        byAudience = new Map();
        memos.set(id, byAudience);
      }
      byAudience.set(audience, { cacheKey, entry, view });
    },
    forget(id) {
      memos.delete(id);
    },
    close() {
      csc.off('invalidate', onInvalidate);
      memos.clear();
    },
  };
}

/** node-redis's cache key for a command's arguments: their lengths, then the arguments, joined by "_". */
function cacheKeyOf(args: readonly string[]): string {
  const parts = new Array<string | number>(args.length * 2);
  for (let i = 0; i < args.length; i++) {
    parts[i] = (args[i] as string).length;
    parts[i + args.length] = args[i] as string;
  }
  return parts.join('_');
}
