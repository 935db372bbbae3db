import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/** Fails the run at once, with one clear message, when redis-server or redis-cli is missing. */
export default async function checkRedisTools(): Promise<void> {
  for (const tool of ['redis-server', 'redis-cli']) {
    try {
      await promisify(execFile)(tool, ['--version'], { timeout: 5_000 });
    } catch (error) {
      throw new Error(
        `The Redis Cluster and Sentinel tests start their own servers and need ${tool} on the PATH: ${(error as Error).message}. ` +
          'On Debian: apt-get install redis-server redis-tools',
      );
    }
  }
}
