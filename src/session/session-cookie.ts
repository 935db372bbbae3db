import { createHmac, timingSafeEqual } from 'node:crypto';

/** express-session's cookie signature for a session id (cookie-signature: HMAC-SHA256, base64 without padding). */
function sign(id: string, secret: string): string {
  return createHmac('sha256', secret).update(id).digest('base64').replace(/=+$/, '');
}

/**
 * Reads the BFF session id from the Cookie header the way express-session signs it
 * (`s:<id>.<base64 HMAC-SHA256>`, URL-encoded), without running express-session: API calls take this path,
 * so that a proxied request costs one cookie check and one store read, and never a session write.
 */
export function readSignedSessionId(cookieHeader: string | undefined, name: string, secrets: readonly string[]): string | undefined {
  if (!cookieHeader) return undefined;
  const raw = cookieValue(cookieHeader, name);
  if (raw === undefined) return undefined;
  let value = raw;
  if (value.includes('%')) {
    try {
      value = decodeURIComponent(value);
    } catch {
      return undefined;
    }
  }
  if (!value.startsWith('s:')) return undefined;
  const dot = value.lastIndexOf('.');
  if (dot < 3) return undefined;
  const id = value.slice(2, dot);
  const signature = Buffer.from(value.slice(dot + 1));
  for (const secret of secrets) {
    const expected = Buffer.from(sign(id, secret));
    if (expected.length === signature.length && timingSafeEqual(expected, signature)) return id;
  }
  return undefined;
}

/** Reads session ids from Cookie headers; see {@link sessionIdReader}. */
export interface SessionIdReader {
  read(cookieHeader: string | undefined): string | undefined;
  /** Drops what is remembered about these sessions (they ended). */
  forget(ids: Iterable<string>): void;
  /** Stops the rotation timer. */
  close(): void;
}

/**
 * `readSignedSessionId` bound to one cookie name and secret list, remembering cookie values it verified: an HMAC
 * per API call is measurable on the hot path, a Map lookup is not. Only genuine values are remembered, so forged
 * cookies cannot fill it. Two generations rotate every `rotateMs`, so a cookie unused for that long is forgotten
 * and ended sessions leave nothing behind; `forget` drops a session at once when it ends here.
 */
export function sessionIdReader(name: string, secrets: readonly string[], options: { capacity?: number; rotateMs?: number } = {}): SessionIdReader {
  const capacity = options.capacity ?? 10_000;
  let current = new Map<string, string>();
  let previous = new Map<string, string>();
  // The Cookie header read last and its id: one client's calls often come one after another, and comparing a
  // header with the last one costs less than finding the cookie in it (copies of its parts) and hashing its value
  // for a Map lookup. Another client's header is told apart by its length and last character before any full
  // comparison, so that calls of many clients, interleaved, pay next to nothing for it.
  let lastHeader = '';
  let lastId: string | undefined;
  const timer = setInterval(() => {
    previous = current;
    current = new Map();
    lastHeader = '';
    lastId = undefined;
  }, options.rotateMs ?? 60_000);
  timer.unref();

  return {
    read(cookieHeader) {
      if (!cookieHeader) return undefined;
      const end = cookieHeader.length - 1;
      if (cookieHeader.length === lastHeader.length && cookieHeader.charCodeAt(end) === lastHeader.charCodeAt(end) && cookieHeader === lastHeader) return lastId;
      const raw = cookieValue(cookieHeader, name);
      if (raw === undefined) return undefined;
      let id = current.get(raw);
      if (id === undefined) {
        id = previous.get(raw) ?? readSignedSessionId(`${name}=${raw}`, name, secrets);
        if (id === undefined) return undefined;
        if (current.size >= capacity) current.clear();
        current.set(raw, id);
      }
      lastHeader = cookieHeader;
      lastId = id;
      return id;
    },
    forget(ids) {
      for (const id of ids) {
        if (id === lastId) {
          lastHeader = '';
          lastId = undefined;
        }
        for (const secret of secrets) {
          const signed = `s:${id}.${sign(id, secret)}`;
          for (const raw of [encodeURIComponent(signed), signed]) {
            current.delete(raw);
            previous.delete(raw);
          }
        }
      }
    },
    close: () => clearInterval(timer),
  };
}

/**
 * The first cookie with that exact name (RFC 6265 5.4: browsers send the most specific first), without the double
 * quotes RFC 6265 4.1.1 allows around a value, as express-session reads it: both must see the same session.
 */
export function cookieValue(header: string, name: string): string | undefined {
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end < 0) end = header.length;
    const eq = header.indexOf('=', start);
    if (eq > start && eq < end && header.slice(start, eq).trim() === name) {
      const value = header.slice(eq + 1, end).trim();
      return value.length > 1 && value.charCodeAt(0) === 0x22 && value.charCodeAt(value.length - 1) === 0x22 ? value.slice(1, -1) : value;
    }
    start = end + 1;
  }
  return undefined;
}
