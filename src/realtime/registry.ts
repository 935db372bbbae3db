import { createHash } from 'node:crypto';
import type { LoadedSession } from '../session/sessions.js';
import { WebSocketCloseCode } from './close-codes.js';

/** Something of a session's that must end with it: a WebSocket tunnel, a handshake under way, a long response. */
export interface Closable {
  close(code: number, reason: string): void;
}

/** One session's open connections, and what is known of its lifetimes (epoch ms) for the watch. */
export interface WatchedSession {
  readonly id: string;
  readonly digest: string;
  readonly audience: string;
  readonly sub: string;
  readonly sid: string | undefined;
  absoluteExpiresAt: number;
  idleExpiresAt: number;
  /** The session's last recorded activity (epoch ms): decides when the idle expiry is rolled next. */
  lastActiveAt: number;
  /** A re-check of the record is under way. */
  checking: boolean;
  /** Not before this time (epoch ms) is the record checked again after a failed check. */
  retryAt: number;
  /** When the watch last read the record (epoch ms); unset until its first sweep, which counts the open's read. */
  checkedAt?: number;
  readonly members: Set<Closable>;
}

/** A registration; `remove` when the connection is over. */
export interface Tracked {
  readonly session: WatchedSession;
  remove(): void;
}

/** What the API proxy registers its long responses with (see `SessionConnections.track`). */
export interface StreamTracker {
  track(session: LoadedSession, audience: string, member: Closable): Tracked | undefined;
}

/**
 * How long, and how many, ended sessions are remembered: a long response registers when its answer begins, which
 * may be after its session's end signal arrived (the signal can also overtake the store's reply to a session read).
 * A minute at least; longer when an API may take longer to begin its answer (see `rememberEndedMs`).
 */
const REMEMBER_ENDED_MS = 60_000;
const REMEMBER_ENDED_MAX = 10_000;

/**
 * How long ended sessions are remembered for these APIs: a response registers at most its API's `timeout` after its
 * request was sent, which came after its session and token were had (at most the exchange deadline).
 */
export function rememberEndedMs(apiTimeoutsMs: readonly number[], exchangeDeadlineMs: number): number {
  return Math.max(REMEMBER_ENDED_MS, Math.max(0, ...apiTimeoutsMs) + exchangeDeadlineMs + 5_000);
}

/**
 * A one-way digest of a session id: what the session-end signal carries across instances (the id is a bearer
 * secret; a digest closes sockets but logs nobody in).
 */
export const sessionDigest = (id: string): string => createHash('sha256').update(id).digest('base64url').slice(0, 22);

/**
 * The open connections of each session in this process, keyed by session digest, so that a session-end signal
 * closes all of them. A connection that registers just after its session's end signal is refused.
 */
export class SessionConnections implements StreamTracker {
  private readonly byDigest = new Map<string, WatchedSession>();
  private readonly digestById = new Map<string, string>();
  /** Digests of sessions that ended lately, with when (monotonic ms), oldest first. */
  private readonly ended = new Map<string, number>();
  /** Forgets ended sessions once they are old enough, also when no other session ends after them. */
  private pruneTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly onFirst: () => void,
    private readonly rememberMs: number = REMEMBER_ENDED_MS,
  ) {}

  get size(): number {
    return this.byDigest.size;
  }

  /** How many ended sessions are remembered now. */
  get endedRemembered(): number {
    return this.ended.size;
  }

  sessions(): IterableIterator<WatchedSession> {
    return this.byDigest.values();
  }

  /** Registers a connection of a session; undefined when that session has just ended, or the BFF is closing (close the connection). */
  track(session: LoadedSession, audience: string, member: Closable): Tracked | undefined {
    if (this.closing) return undefined;
    let digest = this.digestById.get(session.id);
    let watched = digest === undefined ? undefined : this.byDigest.get(digest);
    if (watched === undefined) {
      digest = sessionDigest(session.id);
      if (this.ended.has(digest)) return undefined;
      const { view } = session;
      watched = {
        id: session.id, digest, audience, sub: view.sub, sid: view.sid,
        absoluteExpiresAt: view.absoluteExpiresAt, idleExpiresAt: view.idleExpiresAt, lastActiveAt: view.lastActiveAt,
        checking: false, retryAt: 0, members: new Set(),
      };
      this.byDigest.set(digest, watched);
      this.digestById.set(session.id, digest);
      if (this.byDigest.size === 1) this.onFirst();
    }
    const entry = watched;
    entry.members.add(member);
    return {
      session: entry,
      remove: () => {
        entry.members.delete(member);
        if (entry.members.size === 0 && this.byDigest.get(entry.digest) === entry) this.forget(entry);
      },
    };
  }

  /** The sessions ended: closes their connections with 4401, and refuses new ones for a while. */
  end(digests: Iterable<string>): void {
    const now = performance.now();
    this.prune(now);
    for (const digest of digests) {
      this.ended.delete(digest);
      this.ended.set(digest, now);
      const watched = this.byDigest.get(digest);
      if (watched === undefined) continue;
      this.forget(watched);
      for (const member of watched.members) member.close(WebSocketCloseCode.SESSION_ENDED, 'session_ended');
    }
    this.schedulePrune();
  }

  private prune(now: number): void {
    for (const [digest, at] of this.ended) {
      if (now - at < this.rememberMs && this.ended.size < REMEMBER_ENDED_MAX) break;
      this.ended.delete(digest);
    }
  }

  /** After the oldest remembered end is old enough (a second later, so that ends close together go at once). */
  private schedulePrune(): void {
    if (this.pruneTimer !== undefined) return;
    const oldest = this.ended.values().next();
    if (oldest.done) return;
    this.pruneTimer = setTimeout(() => {
      this.pruneTimer = undefined;
      this.prune(performance.now());
      this.schedulePrune();
    }, Math.max(0, oldest.value + this.rememberMs - performance.now()) + 1_000);
    this.pruneTimer.unref();
  }

  /**
   * Whether `closeAll` ran: the BFF is shutting down, and a connection whose handshake or answer was under way
   * then is closed as it arrives rather than registered (else it would outlive the BFF, or hold up its close).
   */
  get closing(): boolean {
    return this.closed;
  }

  /** Closes every connection, and from now on every one that would register (the BFF is shutting down). */
  closeAll(code: number, reason: string): void {
    this.closed = true;
    const all = [...this.byDigest.values()];
    this.byDigest.clear();
    this.digestById.clear();
    clearTimeout(this.pruneTimer);
    this.pruneTimer = undefined;
    for (const watched of all) for (const member of watched.members) member.close(code, reason);
  }

  private forget(watched: WatchedSession): void {
    this.byDigest.delete(watched.digest);
    this.digestById.delete(watched.id);
  }
}
