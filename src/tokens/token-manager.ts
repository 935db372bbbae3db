import { randomUUID } from 'node:crypto';
import type { BffConfig } from '../config/validate.js';
import { fitsKey } from '../dpop/dpop.js';
import { BffError, ErrorCode } from '../errors.js';
import type { Renewal } from '../events/renewal.js';
import type { Reporter } from '../events/reporter.js';
import { classifyTokenFailure } from '../idp/failures.js';
import type { IdpClient, TokenAnswer } from '../idp/idp-client.js';
import type { AccessTokenEntry, StoredSessionRecord, TokenUpdate } from '../session/record.js';
import type { RecordWatch } from '../session/record-watch.js';
import { sessionExpiryOf } from '../session/session-expiry.js';
import { sessionEnded, sessionRef, type LoadedSession, type Sessions } from '../session/sessions.js';
import { AudienceCheck } from './audience-check.js';
import { RETRY_AFTER_CAP_MS, retryWait, sleep } from './backoff.js';
import { RenewedTokens } from './renewed-tokens.js';

/** Which access token: the API's audience, and the scope to ask for when it must be exchanged. */
export interface TokenTarget {
  readonly audience: string;
  readonly scope?: string | undefined;
}

export interface AccessTokenOptions {
  /** Exchange even though the token looks fresh (the upstream rejected it). */
  readonly force?: boolean;
  /** With force: the token the upstream rejected; a different fresh token stored meanwhile is taken instead. */
  readonly rejected?: string;
}

/** The options of a call that passes none: one object, not a new `{}` per API call. */
const NO_OPTIONS: AccessTokenOptions = Object.freeze({});
/**
 * How long a token that a renewal forced by an upstream's rejection gave is spared another forced renewal: an
 * upstream that rejects every token (misconfigured) then costs a session one token request per interval, and one
 * that revokes a token it took for a while (a change of roles) gets a new one at its next call after the interval.
 */
const FORCED_RENEWAL_INTERVAL_MS = 60_000;
/** How far ahead of this process's clock another instance's may run for its forced-renewal marks to count. */
const MARK_CLOCK_TOLERANCE_MS = 5_000;
/** Sessions whose Retry-After is remembered at once, at most: the oldest is forgotten first (its session asks again). */
const NOT_BEFORE_CAPACITY = 10_000;

/**
 * How a process waits for the token another process is exchanging. Where the store says when a session's record
 * changes (Redis with client-side caching, memory), the waiter reads the view when told, and otherwise only every
 * `watchedPollMs` (in case a change goes unheard, or the holder gives up without storing a token); elsewhere, and
 * for a forced renewal (an upstream's refusal, rare), it reads every `pollMs`.
 */
export interface WaitTiming {
  readonly pollMs: number;
  readonly watchedPollMs: number;
}

export const WAIT_TIMING: WaitTiming = Object.freeze({ pollMs: 25, watchedPollMs: 250 });

/** What decides a token's refresh point (`config.tokens`). */
export interface RefreshTiming {
  readonly refreshMargin: (lifetimeSeconds: number) => number;
  readonly clockSkewMs: number;
}

/**
 * The entry kept for a token Auth0 just issued: when it expires, and when to start renewing it, fixed now so the
 * hot path only compares two numbers. Used at login and after every exchange.
 *
 * `requestedAt` is when the token request went out. The API compares `exp` with its own clock, and `exp` is
 * `iat + expires_in` in whole seconds, `iat` being the second Auth0 issued the token in, rounded down. So the
 * token may expire up to a second before `issued + expires_in`, and it was issued after the request went out,
 * not when its answer arrived: counting from the answer would add the whole round trip to the token's life.
 * The refresh point then leaves the refresh margin (the proxied call's way to the API, and renewing early) and
 * the clock-skew allowance (an API whose clock runs ahead of the BFF's).
 */
export function accessTokenEntry(answer: TokenAnswer, requestedAt: number, timing: RefreshTiming): AccessTokenEntry {
  // 0 (a token at its `exp` already) is due at once: it is never handed out again.
  const lifetime = Math.max(0, answer.expiresIn);
  const expiresAt = requestedAt + (lifetime - 1) * 1000;
  const margin = Math.max(0, Math.min(lifetime, timing.refreshMargin(lifetime))) * 1000;
  return { token: answer.accessToken, expiresAt, refreshAt: expiresAt - margin - timing.clockSkewMs, scope: answer.scope, jkt: answer.jkt };
}

/**
 * Whether a token past its refresh point still serves a call while its renewal fails for the moment (Auth0 down,
 * rate-limited, slow): until half of its refresh margin is left, and never within a second of its end. That much
 * still covers what the margin is for, the call's way to the API (a wait for a connection included), and the
 * clock-skew allowance is kept whole: no API gets a token past its `exp`. A token too short-lived for that (a few
 * seconds) is not served past its refresh point at all.
 */
export function servesPastRefresh(entry: AccessTokenEntry, now: number, clockSkewMs: number): boolean {
  const end = entry.expiresAt - clockSkewMs;
  return now < end - Math.max((end - entry.refreshAt) / 2, SERVE_RESERVE_MS);
}

/** The least of a token's life kept for a call's way to the API when it serves past its refresh point. */
const SERVE_RESERVE_MS = 1_000;

/**
 * Keeps a fresh access token per session and audience, exchanging the ORT when the token is expiring.
 * One exchange per expiry per session: requests of one process share a promise, and processes sharing Redis
 * share a lock (with an owner and an expiry); whoever does not hold it waits for the stored result.
 */
export class TokenManager {
  private readonly inflight = new Map<string, Promise<AccessTokenEntry>>();
  /**
   * Until when (the config's clock) Auth0 asked not to be asked again for a session's token for an API (its
   * Retry-After, at most RETRY_AFTER_CAP_MS), by `<session id> <audience>`: the session's calls meanwhile do not each
   * send another token request to a rate-limited tenant. In this process; ended by a token, or by the time.
   */
  private readonly notBefore = new Map<string, number>();
  /** Tokens that a forced exchange produced: an upstream rejecting one of those gets no second try for a while. */
  private readonly forced: RenewedTokens;
  private readonly lockTtlMs: number;
  /** Whether a token Auth0 issued is for the API it was asked for: checked when one is stored (login, exchange). */
  readonly audiences: AudienceCheck;
  /** The DPoP key's thumbprint: a stored token bound to another key is renewed before use, unless a previous key's. */
  private readonly jkt: string | undefined;

  constructor(
    private readonly config: BffConfig,
    private readonly idp: IdpClient,
    private readonly sessions: Sessions,
    private readonly report: Reporter,
    private readonly waits: WaitTiming = WAIT_TIMING,
  ) {
    this.lockTtlMs = config.tokens.exchangeDeadlineMs + config.tokens.attemptTimeoutMs + 1_000;
    this.forced = new RenewedTokens(1_000, config.clock, FORCED_RENEWAL_INTERVAL_MS);
    this.audiences = new AudienceCheck(config.logger);
    this.jkt = config.dpop?.key.thumbprint;
  }

  /** A fresh access token for a loaded session: the stored one when it is not expiring, else one exchange. */
  accessToken(session: LoadedSession, target: TokenTarget, options: AccessTokenOptions = NO_OPTIONS): AccessTokenEntry | Promise<AccessTokenEntry> {
    const current = session.view.accessToken;
    if (!options.force && current !== undefined && this.config.clock() < current.refreshAt && this.fits(current)) return current;
    const key = `${session.id} ${target.audience}`;
    const joined = this.inflight.get(key);
    if (joined) {
      const renewal = this.report.renewal(sessionRef(session.id), target.audience, 'joined', options.force === true);
      // The exchange under way answers for this call too, unless it settles on the very token the upstream
      // refused (it found that token stored and fresh): then this call renews it itself, if that token may still be
      // renewed by force (not when the exchange joined found it one a forced renewal gave a short while ago).
      if (!options.force || options.rejected === undefined) return renewal.follow(joined);
      return renewal.follow(joined.then((entry) => (entry.token === options.rejected && this.mayForce(entry.token) ? this.accessToken(session, target, options) : entry)));
    }
    const wait = this.waitAskedFor(key);
    if (wait > 0) return this.meanwhile(current, options, wait);
    const renewal = this.report.renewal(sessionRef(session.id), target.audience, 'led', options.force === true);
    let pending = renewal.run(() => this.exchangeOnce(session, target, options, renewal)).finally(() => this.inflight.delete(key));
    // Auth0 failing for the moment is no reason to refuse a call its token at hand still serves.
    if (!options.force && current !== undefined) pending = pending.catch((error: unknown) => this.stillServes(current, error));
    this.inflight.set(key, pending);
    return pending;
  }

  /** How long Auth0 still asked not to be asked for this token (ms; 0 or less: ask). */
  private waitAskedFor(key: string): number {
    const until = this.notBefore.get(key);
    if (until === undefined) return 0;
    const wait = until - this.config.clock();
    if (wait <= 0) this.notBefore.delete(key);
    return wait;
  }

  /**
   * While Auth0 asked not to be asked (Retry-After): the token at hand while it lasts (see `lasts`), unless the
   * upstream rejected it; else a 503 at once, with the time left (a rejected promise: callers of `accessToken`
   * expect a failure there, never a throw).
   */
  private meanwhile(current: AccessTokenEntry | undefined, options: AccessTokenOptions, wait: number): AccessTokenEntry | Promise<never> {
    if (!options.force && current !== undefined && this.lasts(current)) return current;
    return Promise.reject(unavailable(Math.max(1, Math.ceil(wait / 1000))));
  }

  /**
   * An exchange failed for the moment (Auth0 down, rate-limited, slow; or the store, whose lock it takes first,
   * stalled while the session was read from memory): the token at hand, while it lasts.
   */
  private stillServes(current: AccessTokenEntry, error: unknown): AccessTokenEntry {
    if (error instanceof BffError && (error.code === ErrorCode.TOKEN_SERVICE_UNAVAILABLE || error.code === ErrorCode.SESSION_STORE_UNAVAILABLE) && this.lasts(current)) return current;
    throw error;
  }

  /** Whether a token past its refresh point still serves (see `servesPastRefresh`), with this BFF's DPoP key. */
  private lasts(entry: AccessTokenEntry): boolean {
    return servesPastRefresh(entry, this.config.clock(), this.config.tokens.clockSkewMs) && this.fits(entry);
  }

  /** Remembers Auth0's Retry-After for a session's token (see `notBefore`). */
  private askedToWait(key: string, retryAfterSeconds: number): void {
    if (this.notBefore.size >= NOT_BEFORE_CAPACITY) this.notBefore.delete(this.notBefore.keys().next().value as string);
    this.notBefore.delete(key);
    this.notBefore.set(key, this.config.clock() + Math.min(retryAfterSeconds * 1000, RETRY_AFTER_CAP_MS));
  }

  /** {@link fitsKey}, with one comparison for the usual token: bound to the key (or to none, without DPoP). */
  private fits(entry: AccessTokenEntry): boolean {
    return entry.jkt === this.jkt || fitsKey(entry, this.config.dpop);
  }

  /**
   * Whether an upstream's rejection of this token may force an exchange: not for a token a forced exchange of this
   * process gave within FORCED_RENEWAL_INTERVAL_MS (see `forcedLately` for those of other processes).
   */
  mayForce(token: string): boolean {
    return !this.forced.has(token);
  }

  /**
   * Whether a mark of a forced exchange (of any process) made at `at` is within the interval. One from further in the
   * future than MARK_CLOCK_TOLERANCE_MS (another host's clock, far ahead) is not trusted: it would hold for longer.
   */
  private forcedLately(at: number): boolean {
    const age = this.config.clock() - at;
    return age >= -MARK_CLOCK_TOLERANCE_MS && age < FORCED_RENEWAL_INTERVAL_MS;
  }

  /**
   * Whether a stored token answers a call that found `stale` expiring: one before its refresh point, or one
   * renewed since (a different token) that has not expired. The second case only matters for tokens too short
   * for their refresh margin: their refresh point has passed when they arrive, and waiting for a better one would
   * make every waiter exchange again.
   */
  private isUsable(entry: AccessTokenEntry | undefined, stale: string | undefined, options: AccessTokenOptions): entry is AccessTokenEntry {
    if (entry === undefined || !this.fits(entry)) return false;
    const now = this.config.clock();
    if (now >= entry.expiresAt || (now >= entry.refreshAt && entry.token === stale)) return false;
    return !options.force || (options.rejected !== undefined && entry.token !== options.rejected);
  }

  private readonly warnedDueOnArrival = new Set<string>();
  /**
   * Says once per API why a token arrived already due for renewal: its lifetime is shorter than the refresh margin
   * and clock-skew allowance (then every call renews one), or Auth0 took longer to answer than the token stays
   * usable (an overloaded BFF or Auth0).
   */
  private warnDueOnArrival(audience: string, entry: AccessTokenEntry, requestedAt: number, lifetime: number, durationMs: number): void {
    const tooShort = entry.refreshAt <= requestedAt;
    const kind = `${tooShort ? 'short' : 'slow'} ${audience}`;
    if (this.warnedDueOnArrival.has(kind)) return;
    this.warnedDueOnArrival.add(kind);
    const details = { audience, lifetimeSeconds: lifetime, clockSkewSeconds: this.config.tokens.clockSkewMs / 1000, durationMs };
    this.config.logger.warn(tooShort
      ? 'Access tokens for this API live too short for the refresh margin and clock-skew allowance: every call renews one'
      : 'Auth0 took longer to answer than the new access token stays usable: it arrived due for renewal', details);
  }

  private async exchangeOnce(session: LoadedSession, target: TokenTarget, options: AccessTokenOptions, renewal: Renewal): Promise<AccessTokenEntry> {
    // Listening from before the first lock attempt: a token another process stores from now on is heard of.
    const watch = this.sessions.backend.watchRecord?.(session.id);
    try {
      return await this.exchangeOrWait(session, target, options, renewal, watch);
    } finally {
      watch?.stop();
    }
  }

  private async exchangeOrWait(session: LoadedSession, target: TokenTarget, options: AccessTokenOptions, renewal: Renewal, watch: RecordWatch | undefined): Promise<AccessTokenEntry> {
    const { backend } = this.sessions;
    const deadline = performance.now() + this.config.tokens.exchangeDeadlineMs;
    const owner = randomUUID();
    const stale = session.view.accessToken?.token;
    while (performance.now() < deadline) {
      if (await this.lock(session.id, owner, target.audience)) {
        try {
          const record = await backend.readRecord(session.id);
          if (!record) throw sessionEnded('The session ended while its token was being renewed.');
          // Another process may have stored a fresh token between our read and our lock.
          const stored = record.accessTokens[target.audience];
          // The upstream rejected a token that a forced renewal gave, in this process or another, a short while ago:
          // no second one yet (an upstream that rejects every token costs one forced exchange in all per interval, not
          // one per process or per call). Only while that token serves: one due for renewal is renewed.
          const markedAt = record.forced.get(target.audience);
          const marked = options.force === true && markedAt !== undefined && this.forcedLately(markedAt);
          if (marked && stored !== undefined && stored.token === options.rejected && this.config.clock() < stored.refreshAt && this.fits(stored)) {
            renewal.declined();
            // Known here too from now on (for the rest of the interval): its next rejection is not retried.
            this.forced.add(stored.token, markedAt);
            return stored;
          }
          if (this.isUsable(stored, stale, options)) {
            renewal.tookStored();
            // A token another process's forced renewal just gave is known here too from now on.
            if (marked) this.forced.add(stored.token, markedAt);
            return stored;
          }
          return await this.exchange(session.id, record, target, deadline, options.force === true);
        } finally {
          // Auth0 asked to wait (Retry-After) and this exchange gave up: the session's exchanges for this API are
          // held as long (`holdLock`), so that no other process asks it before then either.
          const wait = this.waitAskedFor(`${session.id} ${target.audience}`);
          await (wait > 0 ? backend.holdLock(session.id, owner, target.audience, this.config.clock() + wait) : backend.releaseLock(session.id, owner))
            .catch(() => this.sessions.releaseLockLater(session.id, owner));
        }
      }
      // Someone else is exchanging: take their result once it is stored. With a watch, the first read comes at
      // once (the token may be stored already, and Redis reports only changes to what this client read since its
      // last report), and each next one when the store says the record changed.
      // A change that brought no token for this API while the lock is still held is most often the holder storing
      // another API's token of the same session (one lock per session), about to let go of the lock, which no
      // store reports: from then on the reads come every `pollMs` (or at the next change), as without a watch.
      // A forced renewal's wait reads every `pollMs` from the start: the holder may be another call for the token the
      // upstream refused, which takes back the token a forced renewal marked and lets go of the lock with nothing
      // stored (no change to hear of), and this call's refusal then stands as soon as it can read the mark itself.
      renewal.waiting();
      let changedWithoutToken = false;
      for (let reads = 0; performance.now() < deadline; reads++) {
        if (watch === undefined) {
          await sleep(this.waits.pollMs);
        } else if (reads > 0) {
          const interval = changedWithoutToken || options.force === true ? this.waits.pollMs : this.waits.watchedPollMs;
          if (await watch.next(Math.min(interval, deadline - performance.now()))) changedWithoutToken = true;
        }
        const view = await backend.readView(session.id, target.audience);
        if (!view) throw sessionEnded('The session ended while its token was being renewed.');
        if (this.isUsable(view.accessToken, stale, options)) {
          renewal.tookStored();
          return view.accessToken;
        }
        if (await this.lock(session.id, owner, target.audience)) {
          // The holder gave up without a token (a transient failure): our turn.
          await backend.releaseLock(session.id, owner).catch((error: unknown) => {
            this.sessions.releaseLockLater(session.id, owner);
            throw error;
          });
          break;
        }
      }
    }
    throw unavailable(1);
  }

  /**
   * Takes the session's exchange lock for `owner`, if nobody holds it. While Auth0's Retry-After holds this API's
   * exchanges (another process's exchange was asked to wait, see `holdLock`): this process waits as long, with a
   * 503 now (the token at hand still serves, see `stillServes`), and no token request.
   */
  private async lock(id: string, owner: string, audience: string): Promise<boolean> {
    const { backend } = this.sessions;
    let answer;
    try {
      answer = await backend.acquireLock(id, owner, this.lockTtlMs, audience);
    } catch (error) {
      // A request the store answered too late may still have taken the lock, or still take it (a client that
      // resends after reconnecting): give it back (only if it is ours), or every call of this session, in every
      // process, would wait for it to expire.
      this.sessions.releaseLockLater(id, owner, true);
      throw error;
    }
    if (typeof answer === 'boolean') return answer;
    // Another host's clock set the hold's end: never longer than this process would wait itself.
    const seconds = Math.max(1, Math.ceil(Math.min(answer.heldUntil - this.config.clock(), RETRY_AFTER_CAP_MS) / 1000));
    this.askedToWait(`${id} ${audience}`, seconds);
    throw unavailable(seconds);
  }

  /** `forced`: the upstream rejected the token before (see `StoredSessionRecord.forced`). */
  private async exchange(id: string, record: StoredSessionRecord, target: TokenTarget, deadline: number, forced: boolean): Promise<AccessTokenEntry> {
    const ref = sessionRef(id);
    const who = { sub: record.sub, sid: record.sid, sessionRef: ref, audience: target.audience };
    if (record.refreshToken === undefined) {
      // Login granted no ORT (the API does not "Allow Online Access"): nothing can renew the session.
      if (record.storedRefreshToken === undefined) {
        this.config.logger.warn('The session has no refresh token; is "Allow Online Access" on for the API?', { sessionRef: ref });
        await this.sessions.endAll({ id, sub: record.sub, sid: record.sid }, 'session_ended');
        throw sessionEnded();
      }
      // Or it cannot be read (its encryption key left session.encryptionKeys too soon): this BFF session ends, and
      // no other of its Auth0 session, which is not over.
      this.config.logger.warn('The session\'s refresh token cannot be decrypted: its key is no longer in session.encryptionKeys (keep an old key for one absolute session lifetime); the session ends', { sessionRef: ref });
      await this.sessions.endAll({ id, sub: record.sub }, 'session_ended');
      throw sessionEnded('The session can no longer be renewed; log in again.');
    }
    const parameters: Record<string, string> = {};
    // Auth0 Multi-Resource Refresh Tokens: one ORT, an access token per API, chosen by `audience`.
    if (target.audience !== (this.config.audience ?? '')) parameters.audience = target.audience;
    if (target.scope !== undefined) parameters.scope = target.scope;

    const began = performance.now();
    for (let attempt = 0; ; attempt++) {
      const remaining = deadline - performance.now();
      if (remaining <= 0) throw unavailable(1);
      const started = performance.now();
      const requestedAt = this.config.clock();
      let answer: TokenAnswer;
      try {
        answer = await this.idp.refresh(record.refreshToken, parameters, Math.min(this.config.tokens.attemptTimeoutMs, remaining));
      } catch (error) {
        const failure = classifyTokenFailure(error);
        this.report.refreshFailed(who, failure, performance.now() - started);
        if (failure.kind === 'terminal') {
          // Auth0 refused the ORT for good: the session is over even if the store cannot be told right now.
          await this.sessions.endEventually({ id, sub: record.sub, sid: record.sid }, 'session_ended');
          throw sessionEnded();
        }
        if (failure.kind === 'configuration') throw this.report.configurationError('The BFF could not renew the access token because of its configuration.');
        const wait = retryWait(failure.retryAfter, attempt);
        // Remembered for the session's calls after this one, when this exchange gives up before then.
        if (failure.retryAfter !== undefined && failure.retryAfter > 0) this.askedToWait(`${id} ${target.audience}`, failure.retryAfter);
        if (performance.now() + wait >= deadline) throw unavailable(Math.max(1, Math.ceil(Math.min(wait, RETRY_AFTER_CAP_MS) / 1000)));
        await sleep(wait);
        continue;
      }
      const ended = performance.now();
      return this.store(id, record, target, answer, requestedAt, Math.round(ended - started), Math.round(ended - began), forced);
    }
  }

  /** `durationMs`: the request that brought the token; `totalMs`: the exchange, its retries included. */
  private async store(id: string, record: StoredSessionRecord, target: TokenTarget, answer: TokenAnswer, requestedAt: number, durationMs: number, totalMs: number, forced: boolean): Promise<AccessTokenEntry> {
    this.notBefore.delete(`${id} ${target.audience}`);
    // A token for another API (Auth0's answer to an audience its refresh token policy lacks) is neither stored nor
    // used, and ends nothing: the configuration is wrong, not the session.
    const mismatch = this.audiences.mismatch(answer.accessToken, target.audience);
    if (mismatch) {
      this.report.tokenRefused({ sub: record.sub, sid: record.sid, sessionRef: sessionRef(id), audience: target.audience }, 'audience_mismatch', durationMs);
      throw mismatch;
    }
    this.report.tokenAnswered(target.audience, durationMs);
    const now = this.config.clock();
    const accessToken = accessTokenEntry(answer, requestedAt, this.config.tokens);
    if (accessToken.refreshAt <= now) this.warnDueOnArrival(target.audience, accessToken, requestedAt, answer.expiresIn, durationMs);
    // An enterprise IdP's session end (a new ID token's session_expiry) may only bring the absolute lifetime forward.
    const capped = sessionExpiryOf(answer.claims);
    const absoluteExpiresAt = capped !== undefined && capped < record.absoluteExpiresAt ? capped : undefined;
    const update: TokenUpdate = {
      audience: target.audience,
      accessToken,
      // Auth0 keeps the ORT (no refresh_token in the answer); an IdP that rotates gets its new token stored atomically.
      ...(answer.refreshToken !== undefined && answer.refreshToken !== record.refreshToken
        ? { refreshToken: { previousStored: record.storedRefreshToken, next: answer.refreshToken } }
        : {}),
      ...(answer.idToken !== undefined ? { idToken: answer.idToken } : {}),
      ...(answer.claims !== undefined ? { claims: answer.claims } : {}),
      ...(absoluteExpiresAt === undefined ? {} : { absoluteExpiresAt }),
      // As Auth0 resets its own idle timer on an exchange; never past the absolute lifetime.
      idleExpiresAt: Math.min(absoluteExpiresAt ?? record.absoluteExpiresAt, now + this.config.session.idleTimeoutMs),
      lastActiveAt: now,
      ...(forced ? { forcedAt: now } : {}),
    };
    if (!(await this.sessions.backend.storeTokens(id, update))) throw sessionEnded('The session ended while its token was being renewed.');
    if (forced) this.forced.add(accessToken.token, now);
    this.report.refreshed({ sub: record.sub, sid: record.sid, sessionRef: sessionRef(id), audience: target.audience }, answer.expiresIn, totalMs);
    return accessToken;
  }
}

const unavailable = (retryAfter: number): BffError =>
  new BffError(ErrorCode.TOKEN_SERVICE_UNAVAILABLE, 'Auth0 is not answering token requests right now; try again shortly.', { retryAfter });
