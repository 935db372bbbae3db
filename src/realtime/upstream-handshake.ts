import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Duplex } from 'node:stream';
import { demandsNonce } from '../dpop/challenge.js';
import { invalidToken } from '../proxy/forward.js';

/** How the upstream answered a forwarded handshake. */
export type UpstreamAnswer =
  | { readonly kind: 'upgraded'; readonly headers: IncomingHttpHeaders; readonly socket: Duplex; readonly head: Buffer }
  /**
   * It answered, but not with 101; `invalidToken`: 401 with `error="invalid_token"` (RFC 6750); `nonceDemanded`:
   * 401 with `DPoP error="use_dpop_nonce"` (RFC 9449 9); `dpopNonce`: the DPoP-Nonce it gave.
   */
  | { readonly kind: 'refused'; readonly status: number; readonly invalidToken: boolean; readonly nonceDemanded?: boolean; readonly dpopNonce?: string | undefined }
  /** It could not be reached, or did not answer in time; `error`: what failed, when something did. */
  | { readonly kind: 'failed'; readonly reason: 'upstream_unavailable' | 'upstream_timeout'; readonly error?: unknown };

export interface UpstreamHandshake {
  readonly answer: Promise<UpstreamAnswer>;
  /** Gives up: the request, or the upgraded connection if it arrived meanwhile, is destroyed. */
  abort(): void;
}

/**
 * Sends the handshake to the upstream (ws over http, wss over https) on a connection of its own (a WebSocket keeps
 * it), and waits at most `timeoutMs` for the answer's head.
 */
export function openUpstream(origin: URL, path: string, headers: Record<string, string | string[]>, timeoutMs: number): UpstreamHandshake {
  let settle!: (answer: UpstreamAnswer) => void;
  let settled = false;
  let upgraded: Duplex | undefined;
  const answer = new Promise<UpstreamAnswer>((resolve) => {
    settle = (value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(value);
    };
  });
  const request = (origin.protocol === 'https:' ? httpsRequest : httpRequest)({
    protocol: origin.protocol,
    hostname: origin.hostname.replace(/^\[|\]$/g, ''),
    port: origin.port,
    path,
    method: 'GET',
    headers,
    agent: false,
  });
  const timer = setTimeout(() => {
    settle({ kind: 'failed', reason: 'upstream_timeout' });
    request.destroy();
  }, timeoutMs);
  request.on('upgrade', (res, socket: Duplex, head: Buffer) => {
    if (settled || res.statusCode !== 101) {
      socket.destroy();
      return settle({ kind: 'refused', status: res.statusCode ?? 502, invalidToken: false, dpopNonce: nonceOf(res.headers) });
    }
    upgraded = socket;
    settle({ kind: 'upgraded', headers: res.headers, socket, head });
  });
  request.on('response', (res) => {
    const challenge = res.headers['www-authenticate'];
    settle({
      kind: 'refused',
      status: res.statusCode ?? 502,
      invalidToken: res.statusCode === 401 && invalidToken(challenge),
      nonceDemanded: res.statusCode === 401 && demandsNonce(challenge),
      dpopNonce: nonceOf(res.headers),
    });
    // The upstream said no: its status and headers are all that is used, and its connection is of no further use,
    // also when the body of its answer never ends.
    request.destroy();
  });
  request.on('error', (error) => settle({ kind: 'failed', reason: 'upstream_unavailable', error }));
  request.end();
  return {
    answer,
    abort() {
      settle({ kind: 'failed', reason: 'upstream_unavailable' });
      request.destroy();
      upgraded?.destroy();
    },
  };
}

function nonceOf(headers: IncomingHttpHeaders): string | undefined {
  const nonce = headers['dpop-nonce'];
  return typeof nonce === 'string' ? nonce : undefined;
}
