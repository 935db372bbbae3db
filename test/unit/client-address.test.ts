import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { clientAddress, WRAPPED_TRUST, type TrustProxy } from '../../src/proxy/client-address.js';

/** A request from `peer`, with these headers, routed by `app` (Express's request prototype, as `app.use(bff)` sees it). */
function routedRequest(app: express.Express, peer: string, forwardedFor: string | undefined): express.Request {
  const req = Object.create(app.request) as express.Request & { app: express.Express };
  Object.assign(req, { app, socket: { remoteAddress: peer }, headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor } });
  return req;
}

/** The same request as `bff.wrap(app)` answers it: Node's own request, the app's compiled setting left on it. */
function wrappedRequest(app: express.Express, peer: string, forwardedFor: string | undefined): IncomingMessage {
  const socket = new Socket();
  Object.defineProperty(socket, 'remoteAddress', { value: peer });
  const req = new IncomingMessage(socket);
  if (forwardedFor !== undefined) req.headers['x-forwarded-for'] = forwardedFor;
  if (app.get('trust proxy')) (req as { [WRAPPED_TRUST]?: TrustProxy })[WRAPPED_TRUST] = app.get('trust proxy fn') as TrustProxy;
  return req;
}

const SETTINGS: unknown[] = [false, true, 'loopback', 1, 2, 3, '10.0.0.0/8', 'loopback, 10.0.0.0/8', (address: string) => address.startsWith('10.')];
const PEERS = ['127.0.0.1', '10.0.0.5', '203.0.113.9', '::1'];
const HEADERS = [
  undefined,
  '',
  '9.9.9.9',
  '9.9.9.9,',
  ',9.9.9.9',
  '9.9.9.9,,10.0.0.1',
  '9.9.9.9, 10.0.0.1',
  '  9.9.9.9  ,  10.0.0.1  ',
  '9.9.9.9 ,, , 10.0.0.2,',
  '8.8.8.8, 9.9.9.9, 10.0.0.1, 10.0.0.2',
  ',',
  ' , ',
  '2001:db8::1, ::1',
  'not-an-address, 10.0.0.1',
];

describe('the browser\'s address a proxied call names in X-Forwarded-For', () => {
  it('is the one Express gives as req.ip, for every trust setting, peer and X-Forwarded-For value, under both entries', () => {
    let compared = 0;
    for (const setting of SETTINGS) {
      const app = express().set('trust proxy', setting);
      for (const peer of PEERS) {
        for (const header of HEADERS) {
          const expected = routedRequest(app, peer, header).ip;
          const label = JSON.stringify({ setting: String(setting), peer, header });
          expect(clientAddress(routedRequest(app, peer, header)), label).toBe(expected);
          expect(clientAddress(wrappedRequest(app, peer, header)), label).toBe(expected);
          compared++;
        }
      }
    }
    expect(compared).toBe(SETTINGS.length * PEERS.length * HEADERS.length);
  });

  it('skips empty entries instead of naming nobody: a trusted proxy that appends a comma still names the browser', () => {
    const app = express().set('trust proxy', 'loopback');
    expect(clientAddress(routedRequest(app, '127.0.0.1', '9.9.9.9,'))).toBe('9.9.9.9');
    expect(clientAddress(wrappedRequest(app, '127.0.0.1', '9.9.9.9, ,'))).toBe('9.9.9.9');
  });

  it('names the connecting address, never what the browser claims, when the app trusts no proxy', () => {
    const app = express();
    expect(clientAddress(routedRequest(app, '203.0.113.9', '9.9.9.9'))).toBe('203.0.113.9');
    expect(clientAddress(wrappedRequest(app, '203.0.113.9', '9.9.9.9'))).toBe('203.0.113.9');
  });
});
