/**
 * Back-channel logout delivery (OpenID Connect Back-Channel Logout 1.0), shaped like Auth0's: the logout token
 * has header `typ: "JWT"` (oidc-provider would use `logout+jwt`), `exp = iat + 120`, and is POSTed as
 * `logout_token=<JWT>` with a 5 s timeout. Loopback and plain-http targets are allowed, unlike Auth0, so that
 * a BFF under test on 127.0.0.1 receives them. Deliveries are awaited and recorded for the admin handle.
 * Each application gets a token only for the session ends it subscribed to (Auth0's Back-Channel Logout
 * Initiators); `rp-logout` and `idp-logout` always send one, as on Auth0 (reference: "rp-logout, idp-logout
 * (always)"). Like Auth0's, each token carries a `trace_id` (here a random W3C trace id).
 */
import { randomBytes, randomUUID } from 'node:crypto';

import type { BackchannelLogoutInitiator } from './options.js';
import type { SigningKey } from './signing-key.js';
import type { BackchannelDelivery } from './types.js';

/** Where an application receives logout tokens, and for which session ends. */
export interface BackchannelTarget {
  uri: string;
  initiators: 'all' | readonly BackchannelLogoutInitiator[];
}

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** Auth0 waits 5 seconds for the application's answer. */
const DELIVERY_TIMEOUT_MS = 5_000;
/** Initiators Auth0 sends a logout token for whatever the application subscribed to. */
const ALWAYS_SENT: readonly BackchannelLogoutInitiator[] = ['rp-logout', 'idp-logout'];

/** Signs and sends logout tokens, and remembers what happened. */
export class BackchannelSender {
  readonly deliveries: BackchannelDelivery[] = [];
  sent = 0;

  constructor(
    private readonly issuer: string,
    private readonly key: SigningKey,
    private readonly targets: ReadonlyMap<string, BackchannelTarget>,
    private readonly logger: { warn(msg: string): void },
    /** Aborted when the emulator stops: a delivery still waiting for its answer is dropped, not held for 5 s. */
    private readonly stopped: AbortSignal,
  ) {}

  /** Sends one logout token to each of `clientIds` that registered a back-channel logout URI for `initiator`. */
  async send(clientIds: Iterable<string>, sub: string, sid: string, initiator: BackchannelLogoutInitiator): Promise<void> {
    const targets = [...new Set(clientIds)].flatMap((clientId) => {
      const target = this.targets.get(clientId);
      if (!target) return [];
      const subscribed = target.initiators === 'all' || ALWAYS_SENT.includes(initiator) || target.initiators.includes(initiator);
      return subscribed ? [{ clientId, uri: target.uri }] : [];
    });
    await Promise.all(targets.map(({ clientId, uri }) => this.deliver(clientId, uri, sub, sid)));
  }

  private async deliver(clientId: string, uri: string, sub: string, sid: string): Promise<void> {
    if (this.stopped.aborted) return;
    const iat = Math.floor(Date.now() / 1000);
    const logoutToken = await this.key.sign(
      {
        iss: this.issuer, sub, aud: clientId, iat, exp: iat + 120, jti: randomUUID(), events: { [EVENT]: {} }, sid,
        trace_id: randomBytes(16).toString('hex'),
      },
      { typ: 'JWT' },
    );
    let status: number | 'error';
    try {
      const response = await fetch(uri, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ logout_token: logoutToken }),
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(DELIVERY_TIMEOUT_MS), this.stopped]),
      });
      await response.arrayBuffer().catch(() => undefined);
      status = response.status;
    } catch (error) {
      status = 'error';
      if (this.stopped.aborted) return;
      this.logger.warn(`local-auth0: back-channel logout to ${uri} failed: ${(error as Error).message}`);
    }
    this.sent += 1;
    this.deliveries.push({ clientId, uri, status, sid });
  }
}
