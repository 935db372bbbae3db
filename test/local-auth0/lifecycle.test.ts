import { createHook } from 'node:async_hooks';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

import { describe, expect, it, vi } from 'vitest';

import { startLocalAuth0 } from '../../src/local-auth0/index.js';
import { ALICE, API, BFF, claimsOf, loginForTokens, refresh } from './support.js';

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

  it('drops a back-channel delivery still waiting for its answer, without a warning, instead of holding it for 5 s', async () => {
    const waiting: IncomingMessage[] = [];
    let closed = 0;
    // An application that takes the logout token and never answers.
    const hanging = createServer((req) => {
      waiting.push(req);
      req.socket.on('close', () => void (closed += 1));
    });
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    const warnings: string[] = [];
    const app = { ...BFF, backchannelLogoutUri: `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/backchannel-logout` };
    const auth0 = await startLocalAuth0({ clients: [app], users: [ALICE], apis: [{ audience: API }], logger: { warn: (message) => void warnings.push(message) } });
    try {
      const { tokens } = await loginForTokens(auth0.issuer, { client: app });
      const ending = auth0.admin.endSession({ sid: claimsOf(tokens.id_token).sid as string }, { backchannel: true });
      await vi.waitFor(() => expect(waiting).toHaveLength(1));

      await auth0.stop();
      // Well within the 5 s an application has to answer: the delivery is dropped, not waited out.
      await vi.waitFor(() => expect(closed).toBe(1), { timeout: 2_500 });
      await ending;
      expect(warnings).toEqual([]);
    } finally {
      await auth0.stop();
      hanging.closeAllConnections();
      await new Promise<void>((resolve) => hanging.close(() => resolve()));
    }
  });
});
