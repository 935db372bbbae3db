import { STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { AccessTokenEntry } from '../session/record.js';
import { clientAddress } from './client-address.js';

/** RFC 9110 7.6.1 hop-by-hop headers, plus what a proxy must never pass on from the browser. */
const DROP_REQUEST = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'host', 'cookie', 'authorization', 'dpop', 'expect', 'forwarded',
  'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-prefix', 'x-forwarded-port',
  'x-forwarded-server', 'x-real-ip',
  // Where other proxies and CDNs put the client's address or scheme, which libraries read before X-Forwarded-For
  // (npm's request-ip takes X-Client-IP first; Rack, X-Forwarded-Ssl before X-Forwarded-Proto): the BFF sends the
  // client's address and scheme in X-Forwarded-*, and none of these may say otherwise.
  'x-client-ip', 'client-ip', 'true-client-ip', 'cf-connecting-ip', 'fastly-client-ip', 'x-cluster-client-ip',
  'x-forwarded', 'forwarded-for', 'x-original-forwarded-for', 'x-forwarded-ssl', 'x-forwarded-scheme', 'x-url-scheme',
  'front-end-https',
  // Some frameworks (Symfony, Zend, IIS) take the request path or method from these: the proxy's path checks
  // would mean nothing if the browser could set them.
  'x-original-url', 'x-rewrite-url', 'x-http-method-override', 'x-http-method', 'x-method-override',
  // W3C Baggage: services behind the API would take the browser's key-value pairs (`tenant=admin`) for context the
  // BFF vouches for. The trace context the BFF sends carries no baggage either (see telemetry/propagation.ts).
  'baggage',
]);
const DROP_RESPONSE = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer',
  'transfer-encoding', 'upgrade',
  // The cookies on the BFF's origin are the BFF's: an upstream (which never gets the browser's cookies back) could
  // otherwise clear the session cookie, or set one of its own choosing. Clear-Site-Data: "cookies" would clear it
  // too (and "storage" the SPA's), leaving the BFF session and its refresh token alive with no logout.
  'set-cookie', 'clear-site-data',
]);

/**
 * The headers the upstream gets: the browser's own minus cookies, credentials and hop-by-hop headers, plus the
 * access token (none for an API called without one) and X-Forwarded-* describing the BFF's public origin.
 */
export function upstreamRequestHeaders(req: IncomingMessage, accessToken: AccessTokenEntry | undefined, forwarded: { proto: string; host: string; prefix: string }, source: IncomingHttpHeaders = req.headers): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const named = connectionTokens(source.connection);
  for (const name in source) {
    if (DROP_REQUEST.has(name) || (named !== undefined && named.has(name))) continue;
    const value = source[name];
    if (value !== undefined) out[name] = value;
  }
  if (accessToken !== undefined) out.authorization = bearer(accessToken);
  out['x-forwarded-for'] = clientAddress(req, source) ?? 'unknown';
  out['x-forwarded-proto'] = forwarded.proto;
  out['x-forwarded-host'] = forwarded.host;
  out['x-forwarded-prefix'] = forwarded.prefix;
  return out;
}

/**
 * `Bearer <token>`, made once per token entry and kept on it: the entry of a session's token is the same object
 * from call to call (src/session/view-memo.ts), and undici checks every byte of a header value, which a value
 * joined anew per call would first have to be copied flat for. Kept on the entry rather than in a WeakMap, whose
 * table keeps the size of its busiest moment after the sessions it held have ended (128 KiB after 10,000).
 * Not enumerable: the entry looks the same to everything else.
 */
const AUTHORIZATION = Symbol('express-ort-bff.authorization');
function bearer(entry: AccessTokenEntry): string {
  const held = (entry as { [AUTHORIZATION]?: string })[AUTHORIZATION];
  if (held !== undefined) return held;
  const value = `Bearer ${entry.token}`;
  Object.defineProperty(entry, AUTHORIZATION, { value });
  return value;
}

/** What Node refuses in a reason phrase (its check of header values): llhttp reads some of it from an upstream. */
const UNWRITABLE_REASON = /[^\t\x20-\x7e\x80-\xff]/;

/**
 * The upstream's reason phrase for the browser (`422 Validation Failed` stays so, and a code Node has no text for
 * keeps the API's): undefined, for Node's own, when it is Node's own already or one Node would refuse to write.
 */
export function reasonPhrase(statusCode: number, statusMessage: string | undefined): string | undefined {
  if (statusMessage === undefined || statusMessage === STATUS_CODES[statusCode]) return undefined;
  return UNWRITABLE_REASON.test(statusMessage) ? undefined : statusMessage;
}

/** The upstream's response headers minus hop-by-hop ones (the BFF frames the response to the browser itself) and cookies. */
export function browserResponseHeaders(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const named = connectionTokens(headers.connection);
  for (const name in headers) {
    if (DROP_RESPONSE.has(name) || (named !== undefined && named.has(name))) continue;
    const value = headers[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  // The usual values name no header that is not dropped already.
  if (value === undefined || value === 'keep-alive' || value === 'close') return undefined;
  const list = (Array.isArray(value) ? value.join(',') : value).split(',').map((t) => t.trim().toLowerCase()).filter(Boolean);
  return list.length === 0 ? undefined : new Set(list);
}
