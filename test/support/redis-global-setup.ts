import { createClient } from 'redis';

/**
 * Fails the whole run at once, with one clear message, when no Redis server answers.
 * Without this, every Redis-backed test would wait on its own connection attempts.
 */
export default async function checkRedis(): Promise<void> {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const client = createClient({
    url,
    socket: { connectTimeout: 2_000, reconnectStrategy: false },
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    throw new Error(
      `The tests need a Redis server at ${url} (set REDIS_URL to use another one): ${(error as Error).message}. ` +
        'Start one with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
    );
  } finally {
    if (client.isOpen) await client.close();
  }
}
