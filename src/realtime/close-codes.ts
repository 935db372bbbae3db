/**
 * The close codes the BFF itself puts on a browser's WebSocket (RFC 6455 7.4). Codes and frames that the upstream
 * sends pass through unchanged; these are only the ones the BFF adds. The close frame's reason is the string
 * after the code's name here (`session_ended`, `upstream_unavailable`, ...).
 */
export const WebSocketCloseCode = {
  /**
   * 4401 `session_ended`: the session ended (logout, back-channel logout, a revoked ORT found at an exchange, the
   * idle or absolute timeout), on this instance or another. The upstream gets the same code. Log in again.
   */
  SESSION_ENDED: 4401,
  /**
   * 1014 (Bad Gateway) `upstream_unavailable`, `upstream_timeout` or `upstream_refused <status>`: the upstream
   * could not be reached, did not answer the handshake in time, answered it with something other than 101, or
   * broke the connection off without a close frame. Retry later.
   */
  UPSTREAM_FAILED: 1014,
  /** 1001 (Going Away) `bff_closing`: the BFF is shutting down (`bff.close()`). Reconnect. */
  GOING_AWAY: 1001,
} as const;

export type WebSocketCloseCode = (typeof WebSocketCloseCode)[keyof typeof WebSocketCloseCode];
