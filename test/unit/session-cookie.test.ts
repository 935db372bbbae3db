import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { cookieValue, readSignedSessionId } from '../../src/session/session-cookie.js';

const sign = (id: string, secret: string) => `s:${id}.${createHmac('sha256', secret).update(id).digest('base64').replace(/=+$/, '')}`;
const OLD = 'old-secret-old-secret-old-secret-0000';
const NEW = 'new-secret-new-secret-new-secret-1111';

describe('the session cookie read on the API fast path', () => {
  it('reads an id signed the way express-session signs it, with any configured secret', () => {
    const header = `other=1; bff=${encodeURIComponent(sign('abc123', OLD))}; last=2`;
    expect(readSignedSessionId(header, 'bff', [NEW, OLD])).toBe('abc123');
  });

  it('refuses a tampered id, a wrong secret, an unsigned value and a missing cookie', () => {
    const good = sign('abc123', NEW);
    expect(readSignedSessionId(`bff=${encodeURIComponent(good.replace('abc123', 'abc124'))}`, 'bff', [NEW])).toBeUndefined();
    expect(readSignedSessionId(`bff=${encodeURIComponent(good)}`, 'bff', [OLD])).toBeUndefined();
    expect(readSignedSessionId('bff=abc123', 'bff', [NEW])).toBeUndefined();
    expect(readSignedSessionId('xbff=1', 'bff', [NEW])).toBeUndefined();
    expect(readSignedSessionId('bff=%E0%A4%A', 'bff', [NEW])).toBeUndefined();
    expect(readSignedSessionId(undefined, 'bff', [NEW])).toBeUndefined();
  });

  it('matches cookie names exactly', () => {
    expect(cookieValue('abff=1; bff=2', 'bff')).toBe('2');
    expect(cookieValue('bff.tx=1; bff=2', 'bff')).toBe('2');
    expect(cookieValue('bff.tx=1', 'bff')).toBeUndefined();
    expect(cookieValue(' bff = 3 ', 'bff')).toBe('3');
    expect(cookieValue('\tbff\t=4', 'bff')).toBe('4');
    expect(cookieValue('bff x=5; bffx=6; bff', 'bff')).toBeUndefined();
    expect(cookieValue('x=1;bff=;bff=7', 'bff')).toBe('');
  });

  it('reads a Cookie header the way splitting it on ";" and trimming each name would', () => {
    // What the reader must agree with, on headers built from the characters that matter to it.
    const reference = (header: string, name: string): string | undefined => {
      for (const part of header.split(';')) {
        const eq = part.indexOf('=');
        if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
      }
      return undefined;
    };
    const pieces = ['bff', 'b', 'x', '=', ';', ' ', '\t', '\u00a0', 'ff', '1', '%3D'];
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % pieces.length;
    for (let i = 0; i < 20_000; i++) {
      const header = Array.from({ length: 1 + (i % 12) }, () => pieces[next()]).join('');
      expect(cookieValue(header, 'bff'), JSON.stringify(header)).toBe(reference(header, 'bff'));
    }
  });
});

describe('the verified-cookie cache of the API fast path', () => {
  it('gives the same answers as a full check, and never remembers a forged value', async () => {
    const { sessionIdReader } = await import('../../src/session/session-cookie.js');
    const reader = sessionIdReader('bff', [NEW], { capacity: 2 });
    const read = reader.read;
    const good = `bff=${encodeURIComponent(sign('abc123', NEW))}`;
    const forged = `bff=${encodeURIComponent(sign('abc123', OLD))}`;
    expect(read(good)).toBe('abc123');
    expect(read(good)).toBe('abc123');
    expect(read(forged)).toBeUndefined();
    expect(read(forged)).toBeUndefined();
    expect(read(`bff=${encodeURIComponent(sign('other', NEW))}`)).toBe('other');
    expect(read(`bff=${encodeURIComponent(sign('third', NEW))}`)).toBe('third');
    expect(read(good)).toBe('abc123');
    expect(read(undefined)).toBeUndefined();
    reader.close();
  });

  it('reads the session cookie among others, and a header like the last one but for a forged value is refused', async () => {
    const { sessionIdReader } = await import('../../src/session/session-cookie.js');
    const reader = sessionIdReader('bff', [NEW]);
    const good = encodeURIComponent(sign('abc123', NEW));
    const forged = `${good.slice(0, -2)}${good.at(-2) === 'A' ? 'B' : 'A'}${good.at(-1)}`;
    expect(reader.read(`theme=dark; bff=${good}`)).toBe('abc123');
    expect(reader.read(`theme=dark; bff=${good}`)).toBe('abc123');
    // Same length and last character as the header just read: only the full comparison tells them apart.
    expect(reader.read(`theme=dark; bff=${forged}`)).toBeUndefined();
    expect(reader.read(`bff=${good}; theme=light`)).toBe('abc123');
    expect(reader.read(`bff=${forged}; theme=light`)).toBeUndefined();
    expect(reader.read('theme=dark')).toBeUndefined();
    reader.close();
  });

  it('tells apart two sessions whose cookies end alike, read one after the other', async () => {
    const { sessionIdReader } = await import('../../src/session/session-cookie.js');
    const reader = sessionIdReader('bff', [NEW]);
    const cookie = (id: string) => `bff=${encodeURIComponent(sign(id, NEW))}`;
    const first = cookie('session-0');
    // Another session's cookie of the same length and last character: only a full comparison tells them apart.
    const id = Array.from({ length: 2000 }, (_, i) => `session-${i + 1}`).find((other) => {
      const value = cookie(other);
      return value.length === first.length && value.at(-1) === first.at(-1);
    });
    expect(id).toBeDefined();
    expect(reader.read(first)).toBe('session-0');
    expect(reader.read(cookie(id!))).toBe(id);
    expect(reader.read(first)).toBe('session-0');
    reader.close();
  });

  it('still verifies a cookie after what it remembered of the session was dropped', async () => {
    const { sessionIdReader } = await import('../../src/session/session-cookie.js');
    const reader = sessionIdReader('bff', [NEW, OLD], { rotateMs: 20 });
    const good = `bff=${encodeURIComponent(sign('abc123', NEW))}`;
    expect(reader.read(good)).toBe('abc123');
    reader.forget(['abc123']);
    // Forgetting drops only what was remembered: the cookie itself still verifies.
    expect(reader.read(good)).toBe('abc123');
    reader.close();
  });
});
