import { describe, expect, it } from 'vitest';
import { isRetryableReply, retryingReplies } from '../../src/session/redis-retry.js';

describe('commands Redis answered without running them', () => {
  it.each([
    'TRYAGAIN Multiple keys request during rehashing of slot',
    'CLUSTERDOWN The cluster is down',
    'LOADING Redis is loading the dataset in memory',
    'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to \'no\'.',
    "READONLY You can't write against a read only replica.",
  ])('retries "%s"', (message) => {
    expect(isRetryableReply(new Error(message))).toBe(true);
  });

  it.each([
    'ERR unknown command',
    'NOSCRIPT No matching script',
    'Socket closed unexpectedly',
    'The client is closed',
  ])('does not retry "%s" (it may have run, or will not work later)', (message) => {
    expect(isRetryableReply(new Error(message))).toBe(false);
  });

  it('sends again until the command runs', async () => {
    let sent = 0;
    const reply = await retryingReplies(performance.now() + 5_000, async () => {
      if (++sent < 3) throw new Error('TRYAGAIN Multiple keys request during rehashing of slot');
      return 'OK';
    });
    expect({ reply, sent }).toEqual({ reply: 'OK', sent: 3 });
  });

  it('gives up at the deadline with the last answer, and at once on any other failure', async () => {
    let sent = 0;
    const tryAgain = () => {
      sent++;
      return Promise.reject(new Error('TRYAGAIN Multiple keys request during rehashing of slot'));
    };
    await expect(retryingReplies(performance.now() + 50, tryAgain)).rejects.toThrow(/^TRYAGAIN/);
    expect(sent).toBeGreaterThan(1);
    sent = 0;
    await expect(retryingReplies(performance.now() + 5_000, () => (sent++, Promise.reject(new Error('ERR wrong'))))).rejects.toThrow('ERR wrong');
    expect(sent).toBe(1);
  });
});
