import { createHash, randomUUID } from 'node:crypto';
import type { BffConfig } from '../config/validate.js';
import { fitsKey } from '../dpop/dpop.js';
import { BffError, ErrorCode } from '../errors.js';
import type { Reporter } from '../events/reporter.js';
import { markLogged } from '../http/json-error.js';
import { classifyTokenFailure, type ClassifiedFailure } from '../idp/failures.js';
import type { IdpClient, TokenAnswer } from '../idp/idp-client.js';
import type { SessionBackend } from '../session/backend.js';
import type { Sessions } from '../session/sessions.js';
import type { AccessTokenEntry } from '../session/record.js';
import type { RecordWatch } from '../session/record-watch.js';
import { RETRY_AFTER_CAP_MS, retryWait, sleep } from './backoff.js';
import { RenewedTokens } from './renewed-tokens.js';
import { tokenAudiences } from './audience-check.js';
import { WAIT_TIMING, accessTokenEntry, servesPastRefresh, type WaitTiming } from './token-manager.js';

/** How long a refusal by Auth0 (credentials, client grant) is answered from memory instead of asking again. */
const REFUSAL_MEMORY_MS = 10_000;
/** OpenID scopes mean nothing to the client-credentials grant (no user): Auth0 would refuse them as not granted. */
const OIDC_SCOPES = new Set(['openid', 'profile', 'email', 'address', 'phone', 'offline_access', 'online_access']);

/**
 * The BFF application's own access tokens (the client-credentials grant), one per API audience and scope, for
 * APIs whose token policy is `client` or `user-or-client`. A token is kept in this process and in the session
 * store (Redis: shared by every process), and renewed at the same point as a user's token (`accessTokenEntry`):
 * one exchange per expiry, across processes, under the store's lock.
 */
/** What gives an exchange lock back once the store answers again (the sessions' background retries). */
export type LockReleases = Pick<Sessions, 'releaseLockLater'>;

export class ClientTokens {
  private readonly slots = new Map<string, ClientToken>();
  /**
   * Which application (issuer and Client ID) the tokens are for, in their names in the store: applications sharing a
   * Redis and its prefix must never send each other's token. A hash keeps the key short and the Client ID unread.
   */
  private readonly application: string;

  constructor(
    private readonly config: BffConfig,
    private readonly idp: IdpClient,
    private readonly backend: SessionBackend,
    private readonly report: Reporter,
    /** Gives back, once the store answers again, a lock whose release (or request) the store did not answer. */
    private readonly locks: LockReleases,
    private readonly waits: WaitTiming = WAIT_TIMING,
  ) {
    this.application = applicationTag(config.issuer.href, config.clientId);
  }

  /** The token of one API, made once when the proxy is built (the hot path then reads a field). APIs of one audience and scope share it. */
  forApi(audience: string, scope: string | undefined): ClientToken {
    const granted = scope?.split(/\s+/).filter((s) => s !== '' && !OIDC_SCOPES.has(s)).join(' ') || undefined;
    const name = `${this.application}:${granted === undefined ? audience : `${audience} ${granted}`}`;
    let slot = this.slots.get(name);
    if (slot === undefined) this.slots.set(name, (slot = new ClientToken(name, audience, granted, this.config, this.idp, this.backend, this.report, this.locks, this.waits)));
    return slot;
  }
}

/** The application's token for one audience and scope. */
export class ClientToken {
  private current: AccessTokenEntry | undefined;
  private pending: Promise<AccessTokenEntry> | undefined;
  /** Auth0's last refusal, answered without asking again until `until`. */
  private refused: { until: number; error: BffError } | undefined;
  /** Until when (the config's clock) Auth0 asked not to be asked again (Retry-After), capped at RETRY_AFTER_CAP_MS. */
  private notBefore = 0;
  /** Whether the current run of refusals was logged (once, until a token is issued again). */
  private reported = false;
  private warnedTooShort = false;
  /** Tokens that a renewal after a rejection produced: an upstream rejecting one of those gets no second renewal. */
  private readonly renewed = new RenewedTokens(100);
  private readonly parameters: Record<string, string>;
  private readonly lockTtlMs: number;

  constructor(
    /** Its name in the session store: `<application>:<audience>[ <scope>]` (see `applicationTag`). */
    readonly name: string,
    readonly audience: string,
    scope: string | undefined,
    private readonly config: BffConfig,
    private readonly idp: IdpClient,
    private readonly backend: SessionBackend,
    private readonly report: Reporter,
    private readonly locks: LockReleases,
    private readonly waits: WaitTiming,
  ) {
    this.parameters = scope === undefined ? { audience } : { audience, scope };
    this.lockTtlMs = config.tokens.exchangeDeadlineMs + config.tokens.attemptTimeoutMs + 1_000;
  }

  /** A fresh token: the one at hand when it is before its refresh point (the usual case), else one exchange at most. */
  token(): AccessTokenEntry | Promise<AccessTokenEntry> {
    const current = this.current;
    if (current !== undefined && this.config.clock() < current.refreshAt) return current;
    return this.obtain(undefined);
  }

  /** A token other than `rejected`, which the upstream refused although it looked fresh. */
  renew(rejected: string): Promise<AccessTokenEntry> {
    const current = this.current;
    if (current !== undefined && current.token !== rejected && this.config.clock() < current.refreshAt) return Promise.resolve(current);
    return this.obtain(rejected).then((entry) => {
      this.renewed.add(entry.token);
      return entry;
    });
  }

  /** Whether an upstream's rejection of this token may renew it: once per token a normal exchange gave. */
  mayRenew(token: string): boolean {
    return !this.renewed.has(token);
  }

  /** One exchange under way per process: every call joins it (unless it settles on the very token to replace). */
  private obtain(rejected: string | undefined): Promise<AccessTokenEntry> {
    const refused = this.refused;
    if (refused !== undefined && this.config.clock() < refused.until) return Promise.reject(refused.error);
    const joined = this.pending;
    if (joined !== undefined) {
      return rejected === undefined ? joined : joined.then((entry) => (entry.token === rejected ? this.obtain(rejected) : entry));
    }
    const wait = this.notBefore - this.config.clock();
    if (wait > 0) return this.meanwhile(rejected, wait);
    // Auth0 failing for the moment is no reason to refuse a call the token at hand still serves.
    const pending = this.obtainShared(rejected).catch((error: unknown) => this.stillServes(rejected, error)).finally(() => {
      this.pending = undefined;
    });
    this.pending = pending;
    return pending;
  }

  /**
   * While Auth0 asked not to be asked (Retry-After): a token that has not expired yet, one another process stored or
   * the one at hand, even past its refresh point (renewing it early is what the margin is for, and it still works);
   * else a 503 at once, with the time left. Auth0 is not asked: the token is every user's, and each call asking
   * would multiply the pressure on a rate-limited tenant.
   */
  private async meanwhile(rejected: string | undefined, wait: number): Promise<AccessTokenEntry> {
    if (this.serves(this.current, rejected)) return this.current!;
    // A store that fails too has nothing to offer: the 503 below says what there is to say.
    const stored = await this.backend.readClientToken(this.name).catch(() => undefined);
    if (this.serves(stored, rejected)) return this.keep(stored!);
    throw unavailable(Math.max(1, Math.ceil(wait / 1000)));
  }

  /** An exchange failed for the moment: the token at hand, while it still serves. */
  private stillServes(rejected: string | undefined, error: unknown): AccessTokenEntry {
    if (error instanceof BffError && error.code === ErrorCode.TOKEN_SERVICE_UNAVAILABLE && this.serves(this.current, rejected)) return this.current!;
    throw error;
  }

  /** Whether a token past its refresh point still serves a call (see `servesPastRefresh`): not the one rejected. */
  private serves(entry: AccessTokenEntry | undefined, rejected: string | undefined): boolean {
    return entry !== undefined && entry.token !== rejected && servesPastRefresh(entry, this.config.clock(), this.config.tokens.clockSkewMs) && fitsKey(entry, this.config.dpop);
  }

  /**
   * The token another process stored, when it is usable; else the store's lock and one exchange; else (another
   * process holds the lock) its result once stored.
   */
  private async obtainShared(rejected: string | undefined): Promise<AccessTokenEntry> {
    // Listening from before the first read: a token another process stores after it is heard of.
    const watch = this.backend.watchClientToken?.(this.name);
    try {
      return await this.obtainOrWait(rejected, watch);
    } finally {
      watch?.stop();
    }
  }

  private async obtainOrWait(rejected: string | undefined, watch: RecordWatch | undefined): Promise<AccessTokenEntry> {
    const deadline = performance.now() + this.config.tokens.exchangeDeadlineMs;
    const owner = randomUUID();
    const first = await this.backend.readClientToken(this.name);
    if (this.usable(first, rejected, undefined)) return this.keep(first!);
    // A token that differs from the one first seen ('' for none) was stored meanwhile: it is taken even inside
    // its refresh margin (a token too short for the margin is inside it from the start).
    const seen = first?.token ?? '';
    while (performance.now() < deadline) {
      if (await this.lock(owner)) {
        try {
          const stored = await this.backend.readClientToken(this.name);
          if (this.usable(stored, rejected, seen)) return this.keep(stored!);
          return this.keep(await this.exchange(deadline));
        } finally {
          await this.backend.releaseLock(this.name, owner).catch(() => this.locks.releaseLockLater(this.name, owner));
        }
      }
      // Another process is exchanging: read again when the store says the token changed (with a watch), else on a timer.
      while (performance.now() < deadline) {
        if (watch === undefined) await sleep(this.waits.pollMs);
        else await watch.next(Math.min(this.waits.watchedPollMs, deadline - performance.now()));
        const stored = await this.backend.readClientToken(this.name);
        if (this.usable(stored, rejected, seen)) return this.keep(stored!);
        if (await this.lock(owner)) {
          // The holder gave up without a token (a transient failure): our turn.
          await this.backend.releaseLock(this.name, owner).catch((error: unknown) => {
            this.locks.releaseLockLater(this.name, owner);
            throw error;
          });
          break;
        }
      }
    }
    throw unavailable(1);
  }

  /**
   * Takes the token's lock for `owner`, if nobody holds it. As for a session's: a request the store answered too
   * late may have taken it, or still take it, and it is given back then, or every process would wait out its expiry.
   */
  private async lock(owner: string): Promise<boolean> {
    try {
      // The application's token takes no Retry-After hold: a lock is free or taken.
      return (await this.backend.acquireLock(this.name, owner, this.lockTtlMs)) === true;
    } catch (error) {
      this.locks.releaseLockLater(this.name, owner, true);
      throw error;
    }
  }

  /**
   * Before its refresh point; or, given what was `seen` first, stored since and not expired. Never the `rejected`
   * one, nor one bound to another key than this BFF's (another instance's key, or DPoP turned off here).
   */
  private usable(entry: AccessTokenEntry | undefined, rejected: string | undefined, seen: string | undefined): boolean {
    if (entry === undefined || entry.token === rejected || !fitsKey(entry, this.config.dpop)) return false;
    const now = this.config.clock();
    return now < entry.refreshAt || (now < entry.expiresAt && seen !== undefined && entry.token !== seen);
  }

  private keep(entry: AccessTokenEntry): AccessTokenEntry {
    this.current = entry;
    return entry;
  }

  /** The client-credentials grant, retried on transient failures within the deadline; a refusal is a configuration error. */
  private async exchange(deadline: number): Promise<AccessTokenEntry> {
    const began = performance.now();
    for (let attempt = 0; ; attempt++) {
      const remaining = deadline - performance.now();
      if (remaining <= 0) throw unavailable(1);
      const requestedAt = this.config.clock();
      let answer: TokenAnswer;
      try {
        answer = await this.idp.clientCredentials(this.parameters, Math.min(this.config.tokens.attemptTimeoutMs, remaining));
      } catch (error) {
        const failure = classifyTokenFailure(error);
        // Nothing here is about a user: a refusal (Auth0's `access_denied` included) means the BFF's registration.
        const kind = failure.kind === 'transient' ? 'transient' : 'configuration';
        this.report.clientTokenFailed(this.audience, kind, failure);
        if (kind === 'configuration') throw this.refuse(failure);
        const wait = retryWait(failure.retryAfter, attempt);
        // Remembered for the calls after this one (`meanwhile`), when this exchange gives up before then.
        if (failure.retryAfter !== undefined && failure.retryAfter > 0) {
          this.notBefore = this.config.clock() + Math.min(failure.retryAfter * 1000, RETRY_AFTER_CAP_MS);
        }
        if (performance.now() + wait >= deadline) throw unavailable(Math.max(1, Math.ceil(Math.min(wait, RETRY_AFTER_CAP_MS) / 1000)));
        await sleep(wait);
        continue;
      }
      // As for users' tokens: a token for another API is never stored nor sent (Auth0 gives the audience asked for).
      const audiences = tokenAudiences(answer.accessToken);
      if (audiences !== undefined && !audiences.includes(this.audience)) {
        this.report.clientTokenFailed(this.audience, 'configuration', { error: 'audience_mismatch', status: undefined });
        throw this.refuse({ kind: 'configuration', error: 'audience_mismatch', status: undefined, retryAfter: undefined });
      }
      // The grant's time, its retries included (what the event says).
      return this.store(answer, requestedAt, Math.round(performance.now() - began));
    }
  }

  private async store(answer: TokenAnswer, requestedAt: number, durationMs: number): Promise<AccessTokenEntry> {
    const entry = accessTokenEntry(answer, requestedAt, this.config.tokens);
    this.refused = undefined;
    this.notBefore = 0;
    this.reported = false;
    if (entry.refreshAt <= this.config.clock() && !this.warnedTooShort) {
      this.warnedTooShort = true;
      this.config.logger.warn('The application\'s tokens for this API live too short for the refresh margin and clock-skew allowance: every call renews one', {
        audience: this.audience, lifetimeSeconds: answer.expiresIn, clockSkewSeconds: this.config.tokens.clockSkewMs / 1000,
      });
    }
    try {
      await this.backend.storeClientToken(this.name, entry);
    } catch (error) {
      // Auth0 issued it: use it here, even if the other processes cannot see it (they will get their own).
      this.config.logger.warn('Could not share the application\'s token for this API through the session store', { audience: this.audience, error: String((error as Error)?.message) });
    }
    this.report.clientTokenIssued(this.audience, answer.expiresIn, durationMs);
    return entry;
  }

  private refuse(failure: ClassifiedFailure): BffError {
    if (!this.reported) {
      this.reported = true;
      this.config.logger.error(
        'Auth0 refused the application\'s own token for this API: is the application authorised for the API (Auth0 Dashboard: APIs, the API, Machine to Machine Applications) with these permissions, and are its credentials right?',
        { audience: this.audience, error: failure.error, status: failure.status, ...(this.parameters.scope === undefined ? {} : { scope: this.parameters.scope }) },
      );
    }
    const error = new BffError(ErrorCode.CONFIGURATION_ERROR, 'The BFF could not get the access token for this API because of its configuration.');
    markLogged(error);
    this.refused = { until: this.config.clock() + REFUSAL_MEMORY_MS, error };
    return error;
  }
}

/** 16 base64url characters (96 bits) of SHA-256 over the issuer and Client ID: one per application and tenant. */
function applicationTag(issuer: string, clientId: string): string {
  return createHash('sha256').update(`${issuer}\n${clientId}`).digest('base64url').slice(0, 16);
}

const unavailable = (retryAfter: number): BffError =>
  new BffError(ErrorCode.TOKEN_SERVICE_UNAVAILABLE, 'Auth0 is not answering token requests right now; try again shortly.', { retryAfter });
