import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AnswerDeadlines, type WaitingCall } from '../../src/proxy/answer-deadlines.js';

function call(name: string, late: string[]): WaitingCall {
  return { waitDeadline: 0, waitPrev: undefined, waitNext: undefined, waiting: false, answerLate: () => void late.push(name) };
}

describe('the wait for an upstream\'s answer, one timer for every call of an API', () => {
  beforeEach(() => void vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] }));
  afterEach(() => void vi.useRealTimers());

  it('ends each call\'s wait at its own deadline, and not the waits of calls that were answered', () => {
    const late: string[] = [];
    const deadlines = new AnswerDeadlines(1_000);
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((name) => call(name, late)) as [WaitingCall, WaitingCall, WaitingCall, WaitingCall];
    deadlines.enter(a);
    vi.advanceTimersByTime(300);
    deadlines.enter(b);
    deadlines.enter(c);
    vi.advanceTimersByTime(300);
    deadlines.enter(d);
    // a and c are answered; b (the middle of the list) and d are not.
    deadlines.leave(a);
    deadlines.leave(c);
    deadlines.leave(c);

    // a's deadline passes with a gone: nothing to end, and the timer is armed again for b's.
    vi.advanceTimersByTime(699);
    expect(late).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(late).toEqual(['b']);
    vi.advanceTimersByTime(299);
    expect(late).toEqual(['b']);
    vi.advanceTimersByTime(1);
    expect(late).toEqual(['b', 'd']);
    expect([a, b, c, d].map((x) => x.waiting)).toEqual([false, false, false, false]);
    // Nothing waits: no timer is left behind.
    expect(vi.getTimerCount()).toBe(0);
  });

  it('ends a call sent again at the deadline of the call it replaces, before calls that entered earlier but wait longer', () => {
    const late: string[] = [];
    const deadlines = new AnswerDeadlines(1_000);
    const [first, other, replay, alone] = ['first', 'other', 'replay', 'alone'].map((name) => call(name, late)) as [WaitingCall, WaitingCall, WaitingCall, WaitingCall];
    deadlines.enter(first);
    const firstDeadline = first.waitDeadline;
    vi.advanceTimersByTime(600);
    deadlines.enter(other);
    // `first` was answered (a nonce challenge) and is sent again, with what it had left: 400 ms.
    deadlines.leave(first);
    deadlines.enter(replay, firstDeadline);
    vi.advanceTimersByTime(399);
    expect(late).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(late).toEqual(['replay']);
    vi.advanceTimersByTime(600);
    expect(late).toEqual(['replay', 'other']);

    // With the timer armed for a later call only, an earlier deadline arms it again.
    deadlines.enter(other);
    vi.advanceTimersByTime(900);
    deadlines.enter(alone, performance.now() + 50);
    vi.advanceTimersByTime(50);
    expect(late).toEqual(['replay', 'other', 'alone']);
    vi.advanceTimersByTime(50);
    expect(late).toEqual(['replay', 'other', 'alone', 'other']);
    expect(vi.getTimerCount()).toBe(0);

    // The list empty, the timer still armed for a call that has left: a replay's earlier deadline arms it again.
    const gone = call('gone', late);
    const again = call('again', late);
    deadlines.enter(gone);
    deadlines.leave(gone);
    deadlines.enter(again, performance.now() + 100);
    vi.advanceTimersByTime(100);
    expect(late.at(-1)).toBe('again');
  });

  it('keeps one timer however many calls wait, and arms it again for calls that come later', () => {
    const late: string[] = [];
    const deadlines = new AnswerDeadlines(500);
    for (let i = 0; i < 1_000; i++) deadlines.enter(call(`early${i}`, late));
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(500);
    expect(late).toHaveLength(1_000);

    const answered = call('answered', late);
    deadlines.enter(answered);
    deadlines.leave(answered);
    vi.advanceTimersByTime(250);
    deadlines.enter(call('later', late));
    vi.advanceTimersByTime(250);
    expect(late.at(-1)).toBe('early999');
    vi.advanceTimersByTime(250);
    expect(late.at(-1)).toBe('later');
    expect(vi.getTimerCount()).toBe(0);
  });
});
