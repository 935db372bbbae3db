/**
 * Auth0 login sessions on top of oidc-provider's Session records: the idle and absolute lifetimes (measured
 * with the emulator's clock, so tests can move time), activity that resets the idle timer, and ending a
 * session the way Auth0 does (its ORTs die, SSO ends, optionally back-channel logout to its applications).
 *
 * The Auth0 session id (`sid`) is oidc-provider's session `uid`: it is stable for the session's life, while
 * the session's storage id (`jti`, the cookie value) changes at every login.
 */
import type { AdapterPayload } from 'oidc-provider';

import type { BackchannelSender } from './backchannel.js';
import type { BackchannelLogoutInitiator } from './options.js';
import type { MemoryStore, SessionGuard } from './store.js';
import type { LocalAuth0Session } from './types.js';

interface Lifetime {
  accountId: string;
  createdAt: number;
  lastActiveAt: number;
}

/** The live sessions, their lifetimes, and how they end. */
export class SessionRegistry implements SessionGuard {
  readonly #lifetimes = new Map<string, Lifetime>();
  /** Each user's `session_expiry` claim, by `sub`: a session's lifetime is checked on every read of it. */
  readonly #idpSessionEnds: Map<string, unknown>;

  constructor(
    private readonly store: MemoryStore,
    private readonly backchannel: BackchannelSender,
    private readonly settings: {
      clock: () => number;
      idleTimeout: number;
      absoluteTimeout: number;
      users: ReadonlyArray<{ readonly sub: string; readonly session_expiry?: unknown }>;
    },
  ) {
    this.#idpSessionEnds = new Map(settings.users.map((user) => [user.sub, user.session_expiry]));
    store.setSessionGuard(this);
  }

  /** The user's `session_expiry` claim now: what later ID tokens carry. */
  sessionExpiryOf(sub: string): unknown {
    return this.#idpSessionEnds.get(sub);
  }

  /** Moves the user's `session_expiry` claim (undefined: none); it caps the user's sessions from now on. */
  setSessionExpiry(sub: string, sessionExpiry: number | undefined): void {
    this.#idpSessionEnds.set(sub, sessionExpiry);
  }

  /** Called by the store on every session read. A session with no login yet is not Auth0's concern. */
  isAlive(payload: AdapterPayload): boolean {
    if (!payload.accountId || !payload.uid) return true;
    const lifetime = this.#lifetimes.get(payload.uid);
    if (!lifetime) return true;
    if (this.settings.clock() < this.#expiry(lifetime).idle) return true;
    this.#forget(payload.uid);
    return false;
  }

  /** Called by the store on every session write: a login starts the session's lifetimes. */
  saved(payload: AdapterPayload): void {
    if (!payload.accountId || !payload.uid) return;
    const known = this.#lifetimes.get(payload.uid);
    if (known?.accountId === payload.accountId) return;
    const now = this.settings.clock();
    this.#lifetimes.set(payload.uid, { accountId: payload.accountId, createdAt: now, lastActiveAt: now });
  }

  /**
   * Activity on the session (SSO at /authorize, an ORT exchange): the idle timer restarts. The absolute
   * lifetime is untouched, so activity never keeps a session past it.
   */
  touch(sid: string): void {
    const lifetime = this.#lifetimes.get(sid);
    if (lifetime) lifetime.lastActiveAt = this.settings.clock();
  }

  /** The live sessions, logged-in ones only. */
  list(): LocalAuth0Session[] {
    return this.#live().map(([, payload]) => this.#describe(payload));
  }

  /**
   * Ends the sessions matching `selector` (all given fields must match) and returns how many ended.
   * With `backchannel` (what ended them), resolves once every logout token delivery has been answered or has failed.
   */
  async endMatching(selector: { sid?: string; sub?: string }, backchannel: BackchannelLogoutInitiator | false): Promise<number> {
    const matching = this.#live().filter(
      ([, payload]) =>
        (selector.sid === undefined || payload.uid === selector.sid) &&
        (selector.sub === undefined || payload.accountId === selector.sub),
    );
    await Promise.all(matching.map(([, payload]) => this.end(payload.uid!, { backchannel })));
    return matching.length;
  }

  /** The live session with this sid, if any. */
  find(sid: string): LocalAuth0Session | undefined {
    const found = this.#live().find(([, payload]) => payload.uid === sid);
    return found && this.#describe(found[1]);
  }

  /**
   * Ends one session: its record and the ORTs and codes bound to it are deleted (classic offline refresh
   * tokens are not bound to the session and live on), and SSO ends with it. With `backchannel` (what ended it),
   * logout tokens go to the session's applications that subscribed to that initiator.
   */
  async end(sid: string, options: { backchannel: BackchannelLogoutInitiator | false }): Promise<boolean> {
    const found = this.#live().find(([, payload]) => payload.uid === sid);
    if (!found) return false;
    const [id, payload] = found;
    this.store.delete('Session', id);
    this.#forget(sid);
    if (options.backchannel) {
      await this.backchannel.send(Object.keys(payload.authorizations ?? {}), payload.accountId!, sid, options.backchannel);
    }
    return true;
  }

  /** Whether the session with this sid is alive now. */
  isLive(sid: string | undefined): boolean {
    return sid !== undefined && this.#live().some(([, payload]) => payload.uid === sid);
  }

  #forget(sid: string): void {
    this.#lifetimes.delete(sid);
    const bound = (payload: AdapterPayload) => payload.expiresWithSession === true && payload.sessionUid === sid;
    this.store.deleteWhere('RefreshToken', bound);
    this.store.deleteWhere('AuthorizationCode', bound);
  }

  #live(): Array<[string, AdapterPayload]> {
    return this.store.entries('Session').filter(([, payload]) => payload.accountId && payload.uid);
  }

  #expiry(lifetime: Lifetime): { idle: number; absolute: number } {
    // A user's `session_expiry` claim (an enterprise IdP's session end, epoch seconds) caps the session, as on Auth0.
    const idpEnd = this.#idpSessionEnds.get(lifetime.accountId);
    const absolute = Math.min(lifetime.createdAt + this.settings.absoluteTimeout * 1000, typeof idpEnd === 'number' ? idpEnd * 1000 : Infinity);
    return { idle: Math.min(lifetime.lastActiveAt + this.settings.idleTimeout * 1000, absolute), absolute };
  }

  #describe(payload: AdapterPayload): LocalAuth0Session {
    const now = this.settings.clock();
    const lifetime = this.#lifetimes.get(payload.uid!) ?? { accountId: payload.accountId!, createdAt: now, lastActiveAt: now };
    const { idle, absolute } = this.#expiry(lifetime);
    return {
      sid: payload.uid!,
      sub: payload.accountId!,
      clients: Object.keys(payload.authorizations ?? {}),
      createdAt: Math.floor(lifetime.createdAt / 1000),
      idleExpiresAt: Math.floor(idle / 1000),
      expiresAt: Math.floor(absolute / 1000),
    };
  }
}
