import type { ServerResponse } from 'node:http';
import { errors as undiciErrors, type Dispatcher } from 'undici';
import type { StreamTracker, Tracked } from '../realtime/registry.js';
import type { LoadedSession } from '../session/sessions.js';
import { dpopError, parseChallenges } from '../dpop/challenge.js';
import type { AnswerDeadlines, WaitingCall } from './answer-deadlines.js';
import { browserResponseHeaders, reasonPhrase } from './headers.js';

/** How one upstream exchange ended. */
export type ForwardOutcome =
  | { readonly kind: 'done' }
  /**
   * Nothing was sent to the browser yet, and the request may be sent again: the upstream said the token is no good
   * (401 invalid_token, and the request may be replayed), or it wants a DPoP nonce (401 use_dpop_nonce) or refused
   * the proof (401 invalid_dpop_proof; for both, whether the request can be replayed is the caller's to decide).
   */
  | { readonly kind: 'retry'; readonly reason: RetryReason }
  /** Failed before anything reached the browser: the caller answers with an error. */
  | { readonly kind: 'failed'; readonly error: Error }
  /** Failed after the answer began: the browser's connection was broken off. */
  | { readonly kind: 'broken'; readonly error: Error }
  /** The browser went away first and the upstream request was ended: there is nobody left to answer. */
  | { readonly kind: 'gone' };

export type RetryReason = 'invalid_token' | 'use_dpop_nonce' | 'invalid_dpop_proof';

/** The most an answer's body may be and still be likely to arrive in one chunk (undici reads 64 KiB at a time). */
const ONE_CHUNK = 65_536;

/** The outcome of every call that went well: one object, not one per call. */
const DONE: ForwardOutcome = Object.freeze({ kind: 'done' });
const GONE: ForwardOutcome = Object.freeze({ kind: 'gone' });

/**
 * Streams one upstream answer straight into the browser's response, with backpressure both ways: undici's
 * low-level dispatch API, without a Readable per answer, a pipeline, or an AbortController per request.
 */
export class ForwardHandler implements Dispatcher.DispatchHandler, WaitingCall {
  private controller: Dispatcher.DispatchController | undefined;
  private started = false;
  private retrying: RetryReason | undefined;
  private settled = false;
  /** The upstream's Content-Length, while no byte of the body was written: a body that arrives whole is sent whole. */
  private wholeLength = -1;
  private ended = false;
  /** This handler ended the upstream request because the browser went away. */
  private browserGone = false;
  /** The wait for the answer ended before the request was sent: it is aborted as soon as it starts. */
  private late = false;
  /** A long response, registered to end with its session. */
  private tracked: Tracked | undefined;
  /** The upstream's status, once its answer began (0 before). */
  private status = 0;
  /** With `deadlines`: this call's place in its API's wait for answers (see AnswerDeadlines). */
  waitDeadline = 0;
  waitPrev: WaitingCall | undefined = undefined;
  waitNext: WaitingCall | undefined = undefined;
  waiting = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly mayRetry: boolean,
    private readonly settle: (outcome: ForwardOutcome, status: number) => void,
    /** Where a long response registers, with its session (only those: an answer that arrives whole never does). */
    private readonly streams?: StreamTracker | undefined,
    private readonly session?: LoadedSession | undefined,
    private readonly audience = '',
    /** With a DPoP-bound token: takes the upstream's `DPoP-Nonce` from any answer. */
    private readonly rememberNonce?: (nonce: string) => boolean,
    /**
     * Where the wait for a connection is bounded (the pool queues a call without limit while all its connections are
     * busy), and the wait for the answer to begin too, unless `deadlineEndsAtStart`.
     */
    private readonly deadlines?: AnswerDeadlines,
    /**
     * The call leaves `deadlines` once it has a connection: the pool's headers timeout bounds the rest. So for a
     * request with a body, whose wait for the answer must count from when the body was sent (undici restarts that
     * timeout then), not from when the browser began a slow upload.
     */
    private readonly deadlineEndsAtStart = false,
    /** The deadline of the call this one sends again (a DPoP retry): not a new `timeout` from now. */
    waitUntil?: number,
  ) {
    // `on`, not `once`: `finish` takes it off, and a response closes once; `once` would wrap it in two more
    // objects per call.
    res.on('close', this.onClientClose);
    deadlines?.enter(this, waitUntil);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    // Gone while the request waited (for a session read, an exchange, a free connection), or waited too long.
    if (this.res.destroyed) this.abortForBrowser(controller);
    // Already answered 504 (see `answerLate`): the request is not sent.
    else if (this.late) controller.abort(answerTimeout());
    else if (this.deadlineEndsAtStart) this.deadlines?.leave(this);
  }

  /**
   * The upstream did not begin to answer within the API's `timeout` (or the call got no connection in that time):
   * the same failure as undici's own headers timeout.
   */
  answerLate(): void {
    if (this.controller !== undefined) {
      if (!this.controller.aborted) this.controller.abort(answerTimeout());
      return;
    }
    // Still queued for a connection (every one of the pool's is busy): nothing tells when one frees, so the call
    // is answered now, and dropped unsent when it gets one.
    this.late = true;
    this.finish(this.res.destroyed ? GONE : { kind: 'failed', error: answerTimeout() });
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    // Interim answers (100, 102, 103 Early Hints) are not the response: writing one would end the real one.
    if (statusCode < 200) return;
    this.deadlines?.leave(this);
    this.status = statusCode;
    if (this.rememberNonce !== undefined) {
      const nonce = headers['dpop-nonce'];
      const remembered = typeof nonce === 'string' && this.rememberNonce(nonce);
      // RFC 9449 9: the API refused the request unprocessed; the nonce to use came with the refusal. Without a
      // usable one (none, two, or not a nonce) no retry could do better: its refusal goes to the browser as it is.
      const refusal = statusCode === 401 ? dpopError(headers['www-authenticate']) : undefined;
      if (refusal === 'use_dpop_nonce' && remembered) {
        this.retrying = refusal;
        return;
      }
      // The API refused the proof (its clock, or the URL it sees, differs from the BFF's): never the browser's to
      // see as a 401, which an SPA takes for a logout. A fresh proof may do (a replay cache that collided, an
      // `iat` just out of the API's window); the caller decides.
      if (refusal === 'invalid_dpop_proof') {
        this.retrying = refusal;
        return;
      }
    }
    if (this.mayRetry && statusCode === 401 && invalidToken(headers['www-authenticate'])) {
      this.retrying = 'invalid_token';
      return;
    }
    this.res.writeHead(statusCode, reasonPhrase(statusCode, statusMessage), browserResponseHeaders(headers));
    this.started = true;
    // 204 and 304 have no content, whatever Content-Length says (RFC 9110 6.4.1, 8.6: a 304 may name the length of
    // the representation): the browser's answer is complete now. undici then fails such a 304 for its missing body
    // (ResponseContentLengthMismatchError), after the answer ended: see `onResponseError`.
    if (statusCode === 204 || statusCode === 304) {
      this.ended = true;
      this.res.end();
      return;
    }
    const length = headers['content-length'];
    if (typeof length === 'string') {
      this.wholeLength = Number(length);
      // A body too large to come in one chunk is a download, which may be slow to start: it ends with its session
      // from now on, not from its first byte (which a stalled upstream may send minutes after a logout).
      if (this.wholeLength > ONE_CHUNK) this.track();
    }
    // An event stream or a body of unknown length may last: it ends with its session.
    else this.track();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.retrying) return;
    // The usual small JSON answer: headers and body leave in one write, and the response is done.
    if (chunk.length === this.wholeLength) {
      this.ended = true;
      this.res.end(chunk);
      return;
    }
    if (this.wholeLength >= 0) {
      this.wholeLength = -1;
      this.track();
    }
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    if (this.retrying !== undefined) return this.finish({ kind: 'retry', reason: this.retrying });
    if (!this.ended) this.res.end();
    this.finish(DONE);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    // A browser that leaves is not a failure of the BFF or the upstream: nothing to answer, nothing to log.
    if (this.browserGone) return this.finish(GONE);
    // The browser's answer was complete already (a 304 undici faults for its Content-Length, or an upstream that
    // went wrong after a whole body): nothing was lost, nothing to report.
    if (this.ended) return this.finish(DONE);
    if (this.started) {
      // An upstream that broke off mid-answer: break the browser's connection too, so the response is not
      // mistaken for a complete one.
      this.res.destroy(error);
      return this.finish({ kind: 'broken', error });
    }
    this.finish({ kind: 'failed', error });
  }

  private finish(outcome: ForwardOutcome): void {
    if (this.settled) return;
    this.settled = true;
    this.deadlines?.leave(this);
    this.res.off('close', this.onClientClose);
    this.tracked?.remove();
    this.settle(outcome, this.status);
  }

  private track(): void {
    if (this.streams === undefined || this.session === undefined || this.tracked !== undefined) return;
    this.tracked = this.streams.track(this.session, this.audience, this);
    if (this.tracked === undefined) this.close();
  }

  /**
   * The session ended: the response is broken off (not ended: a download must not look complete). An
   * EventSource then reconnects and gets 401 session_ended.
   */
  close(): void {
    this.res.destroy();
  }

  private readonly onClientClose = (): void => {
    if (!this.res.writableFinished && this.controller && !this.controller.aborted) this.abortForBrowser(this.controller);
  };

  private abortForBrowser(controller: Dispatcher.DispatchController): void {
    this.browserGone = true;
    controller.abort(new Error('the browser went away'));
  }
}

/** RFC 6750 3.1 (RFC 9449 7.1 for DPoP): the resource server says the access token is expired, revoked or otherwise invalid. */
export function invalidToken(header: string | string[] | undefined): boolean {
  // Any of the challenges may be the token's: `Basic realm="x", DPoP error="invalid_token"` is one too.
  return header !== undefined && parseChallenges(header).some((c) => (c.scheme === 'bearer' || c.scheme === 'dpop') && c.params.error === 'invalid_token');
}

const answerTimeout = (): Error => new undiciErrors.HeadersTimeoutError('The upstream did not begin to answer in time');
