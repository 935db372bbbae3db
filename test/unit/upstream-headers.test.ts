import { Socket } from 'node:net';
import { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { upstreamRequestHeaders } from '../../src/proxy/headers.js';
import type { AccessTokenEntry } from '../../src/session/record.js';

const forwarded = { proto: 'https', host: 'app.example', prefix: '/api' };

function request(headers: Record<string, string>): IncomingMessage {
  const req = new IncomingMessage(new Socket());
  Object.assign(req.headers, headers);
  return req;
}

describe('the headers a proxied request takes upstream', () => {
  it('carries the token of the entry it is given, call after call, and a new entry\'s after a renewal', () => {
    const req = request({ cookie: 'sid=s%3Aabc', 'x-csrf': '1', accept: 'application/json' });
    const first: AccessTokenEntry = { token: 'at-1', expiresAt: 2, refreshAt: 1, scope: undefined };
    const renewed: AccessTokenEntry = { token: 'at-2', expiresAt: 4, refreshAt: 3, scope: 'read' };

    expect(upstreamRequestHeaders(req, first, forwarded)).toMatchObject({ authorization: 'Bearer at-1', accept: 'application/json' });
    expect(upstreamRequestHeaders(req, first, forwarded).authorization).toBe('Bearer at-1');
    expect(upstreamRequestHeaders(req, renewed, forwarded).authorization).toBe('Bearer at-2');
    expect(upstreamRequestHeaders(req, undefined, forwarded).authorization).toBeUndefined();
  });

  it('leaves the token entry as it was: the value it keeps for the next call is invisible to everything else', () => {
    const entry: AccessTokenEntry = { token: 'at-1', expiresAt: 2, refreshAt: 1, scope: 'read', jkt: undefined };
    const before = JSON.stringify(entry);

    upstreamRequestHeaders(request({}), entry, forwarded);

    expect(JSON.stringify(entry)).toBe(before);
    expect(Object.keys(entry)).toEqual(['token', 'expiresAt', 'refreshAt', 'scope', 'jkt']);
    expect(entry).toEqual({ token: 'at-1', expiresAt: 2, refreshAt: 1, scope: 'read', jkt: undefined });
    expect({ ...entry }).toEqual(entry);
  });

  it('never passes on the browser\'s cookie, credentials or forwarding headers, and describes the BFF\'s origin', () => {
    const req = request({ cookie: 'sid=1', authorization: 'Bearer from-browser', 'x-forwarded-host': 'evil.example', 'x-forwarded-for': '6.6.6.6', 'x-request-id': 'r1' });
    const headers = upstreamRequestHeaders(req, { token: 't', expiresAt: 2, refreshAt: 1, scope: undefined }, forwarded);

    expect(headers.cookie).toBeUndefined();
    expect(headers.authorization).toBe('Bearer t');
    expect(headers).toMatchObject({ 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example', 'x-forwarded-prefix': '/api', 'x-request-id': 'r1' });
    expect(headers['x-forwarded-for']).not.toContain('6.6.6.6');
  });
});
