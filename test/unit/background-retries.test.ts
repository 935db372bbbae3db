import { describe, expect, it } from 'vitest';
import { BackgroundRetries } from '../../src/session/background-retries.js';
import { waitFor } from '../support/harness.js';

const FAST = { maxAgeMs: 60_000, baseDelayMs: 1, maxDelayMs: 5 };

function recordingLogger() {
  const lines: string[] = [];
  return { lines, logger: { warn: (m: string, d?: object) => lines.push(`${m} ${JSON.stringify(d ?? {})}`), error: (m: string) => lines.push(m) } };
}

describe('work the session store refused, retried in the background', () => {
  it('retries until the work succeeds, then forgets it', async () => {
    const { logger } = recordingLogger();
    const retries = new BackgroundRetries(logger);
    let attempts = 0;
    retries.add('a', 'a test', async () => {
      if (++attempts < 4) throw new Error('store down');
    }, FAST);
    expect(retries.size).toBe(1);
    await waitFor(() => retries.size === 0, 'the work succeeded');
    expect(attempts).toBe(4);
    retries.close();
  });

  it('gives up after its maximum age, with a log line naming the work and nothing else', async () => {
    const { lines, logger } = recordingLogger();
    const retries = new BackgroundRetries(logger);
    retries.add('a', 'a user logout', () => Promise.reject(new Error('secret-looking detail')), { ...FAST, maxAgeMs: 20 });
    await waitFor(() => retries.size === 0, 'given up');
    expect(lines).toEqual(['Gave up waiting for the session store {"what":"a user logout"}']);
  });

  it('gives up on many pieces of work in an outage with one line for their kind, the rest counted', async () => {
    const { lines, logger } = recordingLogger();
    const retries = new BackgroundRetries(logger);
    for (let i = 0; i < 20; i++) retries.add(`k${i}`, 'a user logout', () => Promise.reject(new Error('down')), { ...FAST, maxAgeMs: 20 });
    retries.add('lock', 'a lock release', () => Promise.reject(new Error('down')), { ...FAST, maxAgeMs: 20 });
    await waitFor(() => retries.size === 0, 'given up');
    // (In the order they gave up, which the retries' jitter decides.)
    expect([...lines].sort()).toEqual(['Gave up waiting for the session store {"what":"a lock release"}', 'Gave up waiting for the session store {"what":"a user logout"}']);
    retries.close();
  });

  it('keeps one piece of work per key, the newest', async () => {
    const { logger } = recordingLogger();
    const retries = new BackgroundRetries(logger);
    const ran: string[] = [];
    retries.add('same', 'old', async () => void ran.push('old'), { ...FAST, baseDelayMs: 50, maxDelayMs: 50 });
    retries.add('same', 'new', async () => void ran.push('new'), FAST);
    expect(retries.size).toBe(1);
    await waitFor(() => retries.size === 0, 'done');
    await new Promise((r) => setTimeout(r, 60));
    expect(ran).toEqual(['new']);
  });

  it('drops the oldest work when full, and stops everything when closed', async () => {
    const { lines, logger } = recordingLogger();
    const retries = new BackgroundRetries(logger, undefined, 2);
    const never = () => Promise.reject(new Error('down'));
    retries.add('1', 'first', never, FAST);
    retries.add('2', 'second', never, FAST);
    retries.add('3', 'third', never, FAST);
    expect(retries.size).toBe(2);
    expect(lines[0]).toMatch(/dropped the oldest/);
    retries.close();
    expect(retries.size).toBe(0);
    expect(lines.at(-1)).toMatch(/Closing with work .*"pieces":2/);
  });
});
