import { createHook } from 'node:async_hooks';

import { describe, expect, it, vi } from 'vitest';

import { startLocalAuth0 } from '../../src/local-auth0/index.js';
import { ALICE, API, BFF, loginForTokens, refresh } from './support.js';

/** Long enough that only stop() can end it within the test. */
const DELAY_MS = 600_000;

/**
 * The live timers of `ms` milliseconds, as async_hooks sees them created and destroyed (`_idleTimeout` is Node's
 * name for a Timeout's duration): a way to see the emulator's delay without sleeping.
 */
function watchTimersOf(ms: number): { live: Set<number>; stop(): void } {
  const live = new Set<number>();
  const hook = createHook({
    init(asyncId, type, _trigger, resource) {
      if (type === 'Timeout' && (resource as { _idleTimeout?: number })._idleTimeout === ms) live.add(asyncId);
    },
    destroy(asyncId) {
      live.delete(asyncId);
    },
  }).enable();
  return { live, stop: () => hook.disable() };
}

describe('stopping the emulator', () => {
  it('drops a delayed token answer still pending, and the timer that would keep the process alive', async () => {
    const auth0 = await startLocalAuth0({ clients: [BFF], users: [ALICE], apis: [{ audience: API }] });
    const timers = watchTimersOf(DELAY_MS);
    try {
      const { tokens } = await loginForTokens(auth0.issuer);
      auth0.admin.failTokenEndpoint({ delayMs: DELAY_MS });
      const answer = refresh(auth0.issuer, tokens.refresh_token!).then(
        () => 'answered',
        () => 'connection closed',
      );
      await vi.waitFor(() => expect(timers.live.size).toBe(1));

      await auth0.stop();
      expect(await answer).toBe('connection closed');
      await vi.waitFor(() => expect(timers.live.size).toBe(0));
    } finally {
      timers.stop();
      await auth0.stop();
    }
  });
});
