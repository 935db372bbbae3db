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
  // The cookie value read last and its id: one client's calls often come one after another, and comparing a value
  // with the last one costs less than hashing it for a Map lookup. Another client's value is told apart by its
  // last character (the signature's) before any full comparison, so that calls of many clients, interleaved, pay
  // next to nothing for it.
  let lastRaw = '';
  let lastId: string | undefined;
  const timer = setInterval(() => {
    previous = current;
    current = new Map();
    lastRaw = '';
    lastId = undefined;
  }, options.rotateMs ?? 60_000);
  timer.unref();

  return {
    read(cookieHeader) {
      if (!cookieHeader) return undefined;
      const raw = cookieValue(cookieHeader, name);
      if (raw === undefined) return undefined;
      const end = raw.length - 1;
      if (raw.length === lastRaw.length && raw.charCodeAt(end) === lastRaw.charCodeAt(end) && raw === lastRaw) return lastId;
      let id = current.get(raw);
      if (id === undefined) {
        id = previous.get(raw) ?? readSignedSessionId(`${name}=${raw}`, name, secrets);
        if (id === undefined) return undefined;
        if (current.size >= capacity) current.clear();
        current.set(raw, id);
      }
      lastRaw = raw;
      lastId = id;
      return id;
    },
    forget(ids) {
      for (const id of ids) {
        if (id === lastId) {
          lastRaw = '';
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

/** The first cookie with that exact name (RFC 6265 5.4: browsers send the most specific first). */
export function cookieValue(header: string, name: string): string | undefined {
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end < 0) end = header.length;
    const eq = header.indexOf('=', start);
    if (eq > start && eq < end && header.slice(start, eq).trim() === name) return header.slice(eq + 1, end).trim();
    start = end + 1;
  }
  return undefined;
}
