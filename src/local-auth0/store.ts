/**
 * In-memory storage for oidc-provider's models (sessions, grants, codes, refresh tokens, interactions...).
 * Unlike oidc-provider's own MemoryAdapter it can be enumerated (the admin handle lists sessions and tokens),
 * and every read of a Session goes through a guard, so that the emulator's clock-driven idle and absolute
 * timeouts apply wherever oidc-provider looks a session up (cookie at /authorize, ORT binding at /oauth/token).
 */
import type { Adapter, AdapterPayload } from 'oidc-provider';

interface Entry {
  payload: AdapterPayload;
  /** Real-time expiry (ms), as oidc-provider computes `expiresIn` from the real clock. */
  expiresAt: number | undefined;
}

/** Decides whether a stored session is still alive; called on every session read. */
export interface SessionGuard {
  isAlive(payload: AdapterPayload): boolean;
  saved(payload: AdapterPayload): void;
}

/** All models' records, one map per model name. */
export class MemoryStore {
  readonly #models = new Map<string, Map<string, Entry>>();
  #guard: SessionGuard | undefined;

  /** Installs the session guard (the session registry, created after the store). */
  setSessionGuard(guard: SessionGuard): void {
    this.#guard = guard;
  }

  /** The adapter factory for oidc-provider's `adapter` configuration. */
  readonly adapterFactory = (name: string): Adapter => new ModelAdapter(this, name);

  model(name: string): Map<string, Entry> {
    let map = this.#models.get(name);
    if (!map) {
      map = new Map();
      this.#models.set(name, map);
    }
    return map;
  }

  /** Live records of one model as `[id, payload]`, expired ones dropped (sessions also pass the guard). */
  entries(name: string): Array<[string, AdapterPayload]> {
    const out: Array<[string, AdapterPayload]> = [];
    for (const id of [...this.model(name).keys()]) {
      const payload = this.read(name, id);
      if (payload) out.push([id, payload]);
    }
    return out;
  }

  read(name: string, id: string): AdapterPayload | undefined {
    const map = this.model(name);
    const entry = map.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      map.delete(id);
      return undefined;
    }
    if (name === 'Session' && this.#guard && !this.#guard.isAlive(entry.payload)) {
      map.delete(id);
      return undefined;
    }
    return entry.payload;
  }

  write(name: string, id: string, payload: AdapterPayload, expiresIn: number | undefined): void {
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : undefined;
    this.model(name).set(id, { payload, expiresAt });
    if (name === 'Session') this.#guard?.saved(payload);
  }

  delete(name: string, id: string): void {
    this.model(name).delete(id);
  }

  /** Deletes the records of one model that match `predicate` (no guard: used to clean up after a session ends). */
  deleteWhere(name: string, predicate: (payload: AdapterPayload) => boolean): void {
    const map = this.model(name);
    for (const [id, entry] of map) if (predicate(entry.payload)) map.delete(id);
  }

  clear(): void {
    this.#models.clear();
  }
}

/** One model's view of the store: the adapter interface oidc-provider calls. */
class ModelAdapter implements Adapter {
  constructor(
    private readonly store: MemoryStore,
    private readonly name: string,
  ) {}

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    this.store.write(this.name, id, payload, expiresIn);
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return this.store.read(this.name, id);
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.findWhere((payload) => payload.uid === uid);
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.findWhere((payload) => payload.userCode === userCode);
  }

  async consume(id: string): Promise<void> {
    const payload = this.store.read(this.name, id);
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id: string): Promise<void> {
    this.store.delete(this.name, id);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    this.store.deleteWhere(this.name, (payload) => payload.grantId === grantId);
  }

  private findWhere(predicate: (payload: AdapterPayload) => boolean): AdapterPayload | undefined {
    // The predicate first, then the read (expiry and the session guard) of the match only: reading every record
    // made a token request cost as much as all sessions, and 10,000 logins in a row slowed to a crawl.
    for (const [id, entry] of this.store.model(this.name)) {
      if (!predicate(entry.payload)) continue;
      const payload = this.store.read(this.name, id);
      if (payload) return payload;
    }
    return undefined;
  }
}
