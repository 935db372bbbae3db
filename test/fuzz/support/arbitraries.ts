/** Generators of hostile HTTP input for the fuzz suite (fast-check arbitraries). */
import fc from 'fast-check';

const HEX = [...'0123456789abcdefABCDEF'];
const percentByte = fc.tuple(fc.constantFrom(...HEX), fc.constantFrom(...HEX)).map(([a, b]) => `%${a}${b}`);
/** C0 controls, space, DEL, and raw bytes above 0x7f (sent as single latin1 bytes). */
const rawByte = fc.oneof(fc.integer({ min: 0, max: 0x20 }), fc.constant(0x7f), fc.integer({ min: 0x80, max: 0xff })).map((n) => String.fromCharCode(n));

/** Pieces that mean something to some server's path handling. */
const TRICKS = [
  '.', '..', '...', '%2e', '%2E', '.%2e', '%2e.', '%2e%2e', '%2E%2e', '..;', '..;x=1', '.;', ';', ';a=b', '%3b', '..%3b', '%00', '.%00',
  '..%00', '%2f', '%2F', '%5c', '%5C', '%252f', '%252e%252e', '%25', '%c0%ae', '%c0%af', '%e0%80%ae', '%u002e', '\\', '#', '#x', '#/../..',
  '?', '?a=1', '?/../..', '&', '=', '~', '*', '@', ':', '%23', '%3f', '%3F', '%20', '+', '%', '%zz', '%2', '\t', '\r\n', '\n',
  'ï¼', 'Ã©', '%ef%bc%8f', '%e2%80%a8',
] as const;
const NAMES = ['items', 'a', 'v1', 'base', 'admin', 'x.json', '', 'api', 'data'] as const;

/** Dots, plain or encoded, followed by what might end a segment for some server. */
const dotSegment = fc
  .tuple(
    fc.constantFrom('.', '..', '...', '%2e', '%2E%2E', '%2e%2e', '.%2e', '%2e.', '%252e%252e', '%c0%ae%c0%ae'),
    fc.oneof(fc.constantFrom('', '', ';', ';x', '#', '#x', '#/', '?', '?q', '%00', '%3b', '%23', '%3f', '\\', '%5c', '%20', ' ', '\t', '%09', '/'), rawByte, percentByte),
  )
  .map(([dots, end]) => `${dots}${end}`);
const segment = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NAMES) },
  { weight: 3, arbitrary: dotSegment },
  {
    weight: 2,
    arbitrary: fc
      .array(fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...NAMES) }, { weight: 4, arbitrary: fc.constantFrom(...TRICKS) }, percentByte, rawByte,
        fc.string({ unit: fc.constantFrom(...'abc.%/\\;#?&=:@!$\'()*+,~-_'), maxLength: 6 })), { maxLength: 3 })
      .map((parts) => parts.join('')),
  },
);
const separator = fc.constantFrom('/', '/', '/', '/', '//', '\\', '%2f', '/./', '/../', '/%2e%2e/', ';/');

/** Anything goes: segments with every kind of separator. */
const chaoticTail = fc.array(fc.tuple(separator, segment), { maxLength: 6 }).map((parts) => parts.map(([sep, seg]) => `${sep}${seg}`).join(''));
/** A plausible path with one trick in it: what gets past a filter that only looks for the usual patterns. */
const oneTrickTail = fc
  .tuple(fc.array(fc.constantFrom(...NAMES), { maxLength: 2 }), dotSegment, fc.array(fc.constantFrom(...NAMES), { maxLength: 2 }), fc.constantFrom('', '', '/', '?q=1', '#top', '?a=1#b'))
  .map(([before, trick, after, end]) => [...before, trick, ...after].map((x) => `/${x}`).join('') + end);

/** A path after a route prefix. */
export const pathTail = fc.oneof({ weight: 2, arbitrary: oneTrickTail }, { weight: 3, arbitrary: chaoticTail });

/** Where a fuzzed target starts: the API mount and its look-alikes, and the BFF's own routes (not login, which creates state by design). */
export const routePrefix = fc.oneof({ weight: 1, arbitrary: fc.constant('/api') }, fc.constantFrom(
  '/api/', '/API', '/api/.', '/api/..', '/%61pi', '/api;', '/./api', '/x/../api', '//api', '/api%2f', '/api\\',
  '/auth/user', '/healthz', '/', '', '/auth/logout', '/auth/callback', '/auth/backchannel-logout', '/auth', '/auth/',
));

/** How the target is written: origin-form mostly, and absolute-, asterisk- and authority-form. */
export function requestTarget(port: number) {
  const form = fc.oneof({ weight: 12, arbitrary: fc.constant('origin') }, fc.constantFrom('absolute', 'absolute-elsewhere', 'asterisk', 'authority'));
  return fc.tuple(form, routePrefix, pathTail).map(
    ([form, prefix, tail]) => {
      switch (form) {
        case 'absolute': return `http://127.0.0.1:${port}${prefix}${tail}`;
        case 'absolute-elsewhere': return `http://evil.example${prefix}${tail}`;
        case 'asterisk': return '*';
        case 'authority': return `127.0.0.1:${port}`;
        default: return `${prefix}${tail}`;
      }
    },
  );
}

export const method = fc.constantFrom('GET', 'GET', 'GET', 'POST', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'CONNECT', 'PROPFIND', 'get');

/** Short request bodies, binary included. */
export const body = fc.oneof(fc.constant(''), fc.string({ maxLength: 64 }), fc.string({ unit: rawByte, maxLength: 16 }));

/** Header values: printable text, raw bytes, long runs, and values that mean something to parsers. */
export const headerValue = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: fc.constantFrom(...'abcXYZ019 -_.,;:=/"()<>@?[]{}*+'), maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: rawByte, maxLength: 8 }) },
  { weight: 4, arbitrary: fc.constantFrom('', ' ', '1', '0', 'true', 'close', 'keep-alive', 'upgrade', 'websocket', 'h2c', 'chunked', 'gzip, deflate', 'bytes=0-1,5-',
    'trailers', '100-continue', '/admin', '/../../admin', 'http://evil.example/', 'Bearer x', 'Basic YTpi', 'DELETE', '127.0.0.1', 'x-csrf',
    'cookie', 'authorization', 'x-csrf, cookie', '*/*', 'application/json', 'text/plain; charset=utf-16', '\u00ff\u00fe') },
  { weight: 1, arbitrary: fc.nat({ max: 9_000 }).map((n) => 'a'.repeat(n)) },
);

/**
 * Header names: the ones a proxy must treat with care, and random tokens. Content-Length and Transfer-Encoding
 * are left to the client, which frames every request itself.
 */
export const headerName = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom('X-CSRF', 'x-csrf', 'X-Csrf', 'Cookie', 'Authorization', 'Proxy-Authorization', 'Connection', 'Keep-Alive', 'Upgrade', 'TE',
    'Trailer', 'Expect', 'Host', 'Forwarded', 'X-Forwarded-For', 'X-Forwarded-Host', 'X-Forwarded-Proto', 'X-Forwarded-Prefix', 'X-Real-IP',
    'X-Original-URL', 'X-Rewrite-URL', 'X-HTTP-Method-Override', 'X-Method-Override', 'Origin', 'Referer', 'Accept', 'Accept-Encoding', 'Range',
    'If-None-Match', 'Content-Type', 'Content-Encoding', 'Max-Forwards', 'Via', 'Sec-Fetch-Site', 'Sec-WebSocket-Key', 'Sec-WebSocket-Version') },
  { weight: 2, arbitrary: fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz-_0123456789!#$%&\'*+.^`|~'), minLength: 1, maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: rawByte, minLength: 1, maxLength: 4 }) },
);

/** Cookie headers built around the real session cookie: tampered, repeated, truncated, re-encoded, or replaced. */
export function cookieHeader(name: string, value: string) {
  const tampered = fc.tuple(fc.nat({ max: Math.max(0, value.length - 1) }), fc.constantFrom(...'abcXYZ019+/=-_.%;, "'), fc.constantFrom('flip', 'cut', 'insert')).map(
    ([at, char, how]) => how === 'cut' ? value.slice(0, at) : how === 'insert' ? `${value.slice(0, at)}${char}${value.slice(at)}` : `${value.slice(0, at)}${char}${value.slice(at + 1)}`,
  );
  const sessionValue = fc.oneof(
    tampered,
    fc.constant(decodeURIComponent(value)),
    fc.constant(value.replace(/^s%3A/, '')),
    fc.constant(`s%3A${'A'.repeat(32)}.${'B'.repeat(43)}`),
    fc.string({ maxLength: 120 }),
    fc.string({ unit: rawByte, maxLength: 12 }),
  );
  const pair = fc.oneof(
    sessionValue.map((v) => `${name}=${v}`),
    fc.constant(`${name}=${value}`),
    fc.tuple(fc.string({ unit: fc.constantFrom(...'abcbf.tx_-'), minLength: 1, maxLength: 8 }), fc.string({ maxLength: 20 })).map(([n, v]) => `${n}=${v}`),
    fc.constantFrom('', ';', '=', `${name}`, `${name}=`, `${name.toUpperCase()}=${value}`, `${name}.tx=${value}`, ` ${name} = ${value} `),
  );
  return fc.array(pair, { minLength: 1, maxLength: 4 }).chain((pairs) => fc.constantFrom('; ', ';', ', ', ' ;').map((sep) => pairs.join(sep)));
}

/** Query-string values, raw as they would stand in a URL (some deliberately malformed). */
export const queryValue = fc.oneof(
  fc.string({ maxLength: 30 }).map((v) => encodeURIComponent(v)),
  fc.string({ unit: fc.constantFrom(...'abcXYZ019-_.~%&=+#/?:;'), maxLength: 30 }),
  fc.constantFrom('', '%', '%zz', '%00', '%0d%0a', 'a'.repeat(3000), '%ff%fe', '%C0%80'),
);
