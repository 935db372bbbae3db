import { createHmac, timingSafeEqual } from 'node:crypto';

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
    const expected = Buffer.from(createHmac('sha256', secret).update(id).digest('base64').replace(/=+$/, ''));
    if (expected.length === signature.length && timingSafeEqual(expected, signature)) return id;
  }
  return undefined;
}

/**
 * `readSignedSessionId` bound to one cookie name and secret list, remembering cookie values it has verified:
 * an HMAC per API call is measurable on the hot path, a Map lookup is not. Only genuine values are remembered,
 * so forged cookies cannot fill the cache; it is bounded and simply starts over when full.
 */
export function sessionIdReader(name: string, secrets: readonly string[], capacity = 10_000): (cookieHeader: string | undefined) => string | undefined {
  const verified = new Map<string, string>();
  return (cookieHeader) => {
    if (!cookieHeader) return undefined;
    const raw = cookieValue(cookieHeader, name);
    if (raw === undefined) return undefined;
    const known = verified.get(raw);
    if (known !== undefined) return known;
    const id = readSignedSessionId(`${name}=${raw}`, name, secrets);
    if (id !== undefined) {
      if (verified.size >= capacity) verified.clear();
      verified.set(raw, id);
    }
    return id;
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
