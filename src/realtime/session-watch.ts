import type { BffConfig } from '../config/validate.js';
import type { LogoutReason } from '../events/events.js';
import type { Reporter } from '../events/reporter.js';
import { sessionRef, type Sessions } from '../session/sessions.js';
import type { SessionConnections, WatchedSession } from './registry.js';

/** How often open connections are checked against their session's lifetimes. */
const SWEEP_MS = 1_000;
/** After a failed check (the store is not answering), how long until the next try. */
const RETRY_MS = 5_000;
/**
 * How long a session's lifetimes known here are trusted without reading its record again: another instance, or an
 * exchange's ID token (a `session_expiry` moved earlier), may have shortened them.
 */
const RECHECK_MS = 60_000;

/**
 * Idle and absolute timeouts happen without a request: this notices them for sessions with open connections.
 * Once a second (while there are any), each session past its known idle or absolute expiry (by the BFF's clock),
 * or not read for a minute, is read again: past it indeed, the session is ended as a request would end it
 * (`Sessions.endAll`, which closes its connections on every instance); gone, its connections here are closed;
 * rolled meanwhile (API calls), the new expiry is watched; shortened (a later ID token's `session_expiry`), the
 * earlier end is.
 *
 * Activity: what the browser sends counts (its API calls, and data frames it sends over a WebSocket, which roll
 * the idle expiry as an API call does, at most once per roll interval). What the upstream pushes does not: a page
 * left alone with a live feed still reaches its idle timeout.
 */
export class SessionWatch {
  private timer: NodeJS.Timeout | undefined;
  private readonly rollInterval: number;

  constructor(
    private readonly config: BffConfig,
    private readonly sessions: Sessions,
    private readonly connections: SessionConnections,
    /** Store faults go through it: logged once per cause (then counted), by cause, never by message. */
    private readonly report: Reporter,
  ) {
    // As for API calls: a roll is a write, at most once per interval.
    this.rollInterval = Math.min(60_000, config.session.idleTimeoutMs / 10);
  }

  /** Runs the checks while connections are open (called when the first one registers). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.sweep(), SWEEP_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The browser sent something over a connection of this session: roll its idle expiry when due. */
  activity(session: WatchedSession): void {
    const now = this.config.clock();
    // Past its expiry as last read (before the next sweep sees it): checked, not rolled. A roll would bring back a
    // session that timed out, where an API call is refused.
    if (now >= Math.min(session.absoluteExpiresAt, session.idleExpiresAt)) {
      // Not sooner than the sweep would, after a store fault: a message is no reason to ask a failing store again.
      if (now >= session.retryAt) this.check(session);
      return;
    }
    if (now - session.lastActiveAt < this.rollInterval) return;
    const next = Math.min(session.absoluteExpiresAt, now + this.config.session.idleTimeoutMs);
    session.lastActiveAt = now;
    session.idleExpiresAt = next;
    this.sessions.backend.touch(session.id, next, now).catch((error: unknown) => this.report.storeFailed(error, 'idle_roll', sessionRef(session.id)));
  }

  /** Checks every watched session now, whatever its expiry (signals may have been missed: Redis reconnected). */
  checkAll(): void {
    for (const session of this.connections.sessions()) this.check(session);
  }

  private sweep(): void {
    if (this.connections.size === 0) return this.stop();
    const now = this.config.clock();
    for (const session of this.connections.sessions()) {
      session.checkedAt ??= now;
      const due = now >= Math.min(session.absoluteExpiresAt, session.idleExpiresAt) || now - session.checkedAt >= RECHECK_MS;
      if (due && now >= session.retryAt) this.check(session);
    }
  }

  private check(session: WatchedSession): void {
    if (session.checking) return;
    session.checking = true;
    session.checkedAt = this.config.clock();
    this.recheck(session).then(
      () => void (session.checking = false),
      (error: unknown) => {
        // A store fault ends nobody's session: try again a little later.
        session.checking = false;
        session.retryAt = this.config.clock() + RETRY_MS;
        this.report.storeFailed(error, 'websocket', sessionRef(session.id));
      },
    );
  }

  private async recheck(session: WatchedSession): Promise<void> {
    const view = await this.sessions.backend.readView(session.id, session.audience);
    if (view === undefined) {
      // Ended (and its signal missed here), or its keys expired: its connections go now.
      this.connections.end([session.digest]);
      return;
    }
    const now = this.config.clock();
    if (now >= view.absoluteExpiresAt || now >= view.idleExpiresAt) {
      const reason: LogoutReason = now >= view.absoluteExpiresAt ? 'absolute_timeout' : 'idle_timeout';
      await this.sessions.endAll({ id: session.id, sub: view.sub, sid: view.sid }, reason);
      return;
    }
    session.absoluteExpiresAt = view.absoluteExpiresAt;
    session.idleExpiresAt = Math.max(session.idleExpiresAt, view.idleExpiresAt);
    session.lastActiveAt = Math.max(session.lastActiveAt, view.lastActiveAt);
  }
}
