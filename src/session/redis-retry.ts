import { sleep } from '../tokens/backoff.js';

/**
 * Error replies by which Redis says it did not run the command, and that the same command may work moments later:
 * - `TRYAGAIN`: a multi-key command (our scripts) whose keys a slot migration has split between two nodes;
 * - `CLUSTERDOWN`: the cluster has no master for a slot (a failover not yet done);
 * - `LOADING`: a server loading its data after a restart;
 * - `MASTERDOWN`: a replica that lost its master and serves no stale data;
 * - `READONLY`: a write that reached a demoted master before the client learned of the failover.
 * `MOVED` and `ASK` never get here: node-redis follows them itself.
 */
const RETRYABLE = ['TRYAGAIN', 'CLUSTERDOWN', 'LOADING', 'MASTERDOWN', 'READONLY'];

export function isRetryableReply(error: unknown): boolean {
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' && RETRYABLE.some((code) => message.startsWith(code));
}

/**
 * Sends a command again while Redis answers that it did not run it (see `RETRYABLE`), with a short backoff, until
 * `deadline` (a `performance.now()` time). Safe for every command: such a reply means nothing was written.
 * Any other failure, or one past the deadline, is thrown as it came.
 */
export async function retryingReplies<T>(deadline: number, send: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await send();
    } catch (error) {
      // A slot migration moves a session's keys within milliseconds: begin retrying fast.
      const wait = Math.min(100, 5 * 2 ** attempt);
      if (!isRetryableReply(error) || performance.now() + wait >= deadline) throw error;
      await sleep(wait);
    }
  }
}
