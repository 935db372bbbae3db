import type { IncomingMessage } from 'node:http';
import { BffError, ErrorCode } from '../errors.js';

/**
 * Cross-site WebSocket hijacking: a page on any site may open a WebSocket to the BFF, and the browser sends the
 * session cookie with it (SameSite=Lax cookies go with same-site handshakes; other sites' pages on a sibling
 * subdomain are same-site). A handshake cannot carry the anti-forgery header, but browsers always send the page's
 * `Origin` and scripts cannot change it: only allowed origins pass. A handshake without one is not from a browser
 * page and is refused as well.
 */
export function checkOrigin(req: IncomingMessage, allowed: readonly string[]): void {
  const origin = req.headers.origin;
  if (origin === undefined || !allowed.includes(origin.toLowerCase())) {
    throw new BffError(ErrorCode.CSRF_REQUIRED, 'WebSocket handshakes must come from a page of an allowed origin (the Origin header).');
  }
}
