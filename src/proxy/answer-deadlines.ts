/**
 * The wait for an upstream's answer to begin (an API's `timeout`), for every call of one API, kept with a single
 * timer instead of one per call. It also bounds the wait for a connection, which nothing in the pool does: a call
 * queued while all the API's connections are busy (long streams) would otherwise wait as long as they last.
 *
 * Why: undici keeps one timer per connection, and replaces it whenever the next phase of a call wants a different
 * delay. With the wait for headers (30 s) and the silences within a body (300 s) bounded apart, every call replaced
 * it twice more than needed; each replacement is a timer object that lives on, cleared, until undici's next timer
 * tick, so under load tens of thousands of them outlived the young generation (about 4 % of the proxy's throughput
 * here). With this, the pool runs both phases on the body's delay and refreshes one timer, and this list holds
 * the shorter wait for headers.
 *
 * Calls enter in the order they start and all wait the same time, so the list is ordered by deadline: the timer is
 * armed for the first one, and entering or leaving costs two links, no allocation.
 */
export interface WaitingCall {
  /** When the wait ends (performance.now() ms); set on entering. */
  waitDeadline: number;
  waitPrev: WaitingCall | undefined;
  waitNext: WaitingCall | undefined;
  /** In the list now. */
  waiting: boolean;
  /** The upstream did not begin to answer in time (the call has left the list). */
  answerLate(): void;
}

export class AnswerDeadlines {
  private head: WaitingCall | undefined;
  private tail: WaitingCall | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The deadline the timer is armed for. */
  private armedAt = 0;

  constructor(readonly timeoutMs: number) {}

  /**
   * The call starts waiting for its answer, for `timeoutMs`; or until `at`, the deadline of the call it sends again
   * (a DPoP nonce or proof retry): a replay gets no more time than the call it replaces had left.
   */
  enter(call: WaitingCall, at?: number): void {
    call.waitDeadline = at ?? performance.now() + this.timeoutMs;
    call.waiting = true;
    if (at !== undefined && this.tail !== undefined && at < this.tail.waitDeadline) return this.insertEarlier(call);
    call.waitPrev = this.tail;
    call.waitNext = undefined;
    if (this.tail === undefined) this.head = call;
    else this.tail.waitNext = call;
    this.tail = call;
    if (this.timer === undefined) this.timer = this.arm(call.waitDeadline);
    // A replay in an empty list, with the timer still armed for a later deadline of a call that has left.
    else if (at !== undefined && at < this.armedAt) this.rearm(at);
  }

  /** A replay's deadline, earlier than the last one's: in its place in the list, and the timer armed early enough. */
  private insertEarlier(call: WaitingCall): void {
    let after = this.tail;
    while (after !== undefined && after.waitDeadline > call.waitDeadline) after = after.waitPrev;
    const before = after === undefined ? this.head : after.waitNext;
    call.waitPrev = after;
    call.waitNext = before;
    if (after === undefined) this.head = call;
    else after.waitNext = call;
    if (before === undefined) this.tail = call;
    else before.waitPrev = call;
    if (this.timer === undefined) this.timer = this.arm(call.waitDeadline);
    else if (call.waitDeadline < this.armedAt) this.rearm(call.waitDeadline);
  }

  private rearm(at: number): void {
    clearTimeout(this.timer);
    this.timer = this.arm(at);
  }

  /** The answer began, or the call ended otherwise. Harmless when it already left. */
  leave(call: WaitingCall): void {
    if (!call.waiting) return;
    call.waiting = false;
    const { waitPrev: prev, waitNext: next } = call;
    if (prev === undefined) this.head = next;
    else prev.waitNext = next;
    if (next === undefined) this.tail = prev;
    else next.waitPrev = prev;
    call.waitPrev = undefined;
    call.waitNext = undefined;
    // The timer stays armed for a deadline that may no longer be in the list: when it fires, it re-arms for the
    // first one still waiting. Once per `timeoutMs` at most, instead of a timer per call.
  }

  private arm(at: number): NodeJS.Timeout {
    this.armedAt = at;
    const timer = setTimeout(this.expire, Math.max(0, at - performance.now()));
    // The calls' own connections keep the process alive, not this.
    timer.unref();
    return timer;
  }

  private readonly expire = (): void => {
    this.timer = undefined;
    const now = performance.now();
    let call = this.head;
    while (call !== undefined && call.waitDeadline <= now) {
      this.leave(call);
      call.answerLate();
      call = this.head;
    }
    if (call !== undefined) this.timer = this.arm(call.waitDeadline);
  };
}
