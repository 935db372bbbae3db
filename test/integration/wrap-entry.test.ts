import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BffConfigError, createBff } from '../../src/index.js';
import { AUDIENCE, CLIENT_ID, CLIENT_SECRET, SESSION_SECRET, closeServer, listen, startHarness, type Browser, type Entry, type Harness } from '../support/harness.js';

/**
 * `http.createServer(bff.wrap(app))` against `app.use(bff)`, side by side: the same requests to two servers that
 * differ only in the entry must get the same answers. (vitest's `wrap` project also runs the other integration
 * tests through `bff.wrap(app)`.)
 */
const CSRF = { 'x-csrf': '1' };

interface Seen {
  status: number;
  headers: Record<string, string>;
  body: string;
}

async function seen(browser: Browser, path: string, init: RequestInit = {}): Promise<Seen> {
  const res = await browser.request(path, init);
  const headers: Record<string, string> = {};
  res.headers.forEach((value, name) => {
    if (name !== 'date') headers[name] = value;
  });
  return { status: res.status, headers, body: await res.text() };
}

describe('the wrap entry, side by side with app.use(bff)', () => {
  const servers = {} as Record<Entry, Harness>;
  beforeAll(async () => {
    for (const entry of ['use', 'wrap'] as const) {
      servers[entry] = await startHarness({ entry, bff: { routes: { sessions: true } } });
    }
  });
  afterAll(() => Promise.all(Object.values(servers).map((h) => h?.close())));

  const both = async (path: string, init: RequestInit = {}, login = false): Promise<Record<Entry, Seen>> => {
    const answers = {} as Record<Entry, Seen>;
    for (const entry of ['use', 'wrap'] as const) {
      const browser = servers[entry].browser();
      if (login) expect((await browser.login()).status).toBe(302);
      answers[entry] = await seen(browser, path, init);
    }
    return answers;
  };

  it.each<[string, string, RequestInit]>([
    ['an API call without the anti-forgery header', '/api/items', {}],
    ['an API call without a session', '/api/items', { headers: CSRF }],
    ['a HEAD API call without a session', '/api/items', { method: 'HEAD', headers: CSRF }],
    ['an API path that is not allowed', '/api/a%2fb', { headers: CSRF }],
    ['the user route without a session', '/auth/user', {}],
    ['the user route in another case, with a trailing slash', '/AUTH/User/', {}],
    ['OPTIONS on a route', '/auth/login', { method: 'OPTIONS' }],
    ['a route\'s path with a method it does not take (the app\'s 404)', '/auth/login', { method: 'POST' }],
    ['a session reference Express cannot decode', '/auth/sessions/%E0', { method: 'DELETE', headers: CSRF }],
    ['the health check', '/healthz', {}],
    ['the app\'s own page', '/', {}],
    ['a page the app does not have', '/nothing-here', {}],
  ])('answers %s the same', async (_name, path, init) => {
    const { use, wrap } = await both(path, init);
    expect(wrap).toEqual(use);
  });

  it('answers a malformed URL under a route as bad input, in the BFF\'s JSON, under both entries', async () => {
    const { use, wrap } = await both('/auth/sessions/%E0', { method: 'DELETE', headers: CSRF });
    for (const answer of [use, wrap]) {
      expect(answer.status).toBe(400);
      expect(JSON.parse(answer.body)).toMatchObject({ error: 'invalid_request' });
    }
  });

  it('proxies a logged-in API call the same: the answer, and what the upstream receives', async () => {
    const { use, wrap } = await both('/api/items?page=2', { headers: CSRF }, true);
    expect(use.status).toBe(200);
    expect(wrap).toEqual(use);
    const received = (h: Harness) => {
      const { authorization, host, 'x-forwarded-host': forwardedHost, ...rest } = h.upstream.requests.at(-1)!.headers;
      expect(authorization).toMatch(/^Bearer /);
      return { url: h.upstream.requests.at(-1)!.url, headers: rest };
    };
    expect(received(servers.wrap)).toEqual(received(servers.use));
  });

  it('answers the logged-in user route with the same headers and fields', async () => {
    const { use, wrap } = await both('/auth/user', {}, true);
    expect(use.status).toBe(200);
    expect(wrap.status).toBe(200);
    expect(Object.keys(wrap.headers).sort()).toEqual(Object.keys(use.headers).sort());
    expect(Object.keys(JSON.parse(wrap.body)).sort()).toEqual(Object.keys(JSON.parse(use.body)).sort());
  });

  it('reports the same events for a login, an exchange and a logout', async () => {
    const names = async (h: Harness) => {
      const from = h.events.length;
      const browser = h.browser();
      await browser.login();
      h.clock.advance(61_000);
      expect((await browser.api('/api/items')).status).toBe(200);
      const { logoutUrl } = await (await browser.request('/auth/user')).json() as { logoutUrl: string };
      expect((await browser.request(logoutUrl)).status).toBe(302);
      return h.events.slice(from).map((e) => e.name);
    };
    const use = await names(servers.use);
    expect(use).toEqual(expect.arrayContaining(['login', 'refresh', 'logout']));
    expect(await names(servers.wrap)).toEqual(use);
  });
});

/**
 * A request with the target as written (`fetch` would rewrite it): `target` may be in absolute form
 * (`http://host/path`) or hold a backslash or a fragment, as a hand-written or proxied request can.
 */
function rawRequest(base: string, target: string): Promise<{ status: number; contentType: string | undefined }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    request({ hostname, port, path: target, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'] }));
    }).on('error', reject).end();
  });
}

describe('the wrap entry, for targets Express reads differently from their text', () => {
  const servers = {} as Record<Entry, Harness>;
  const atRoot = {} as Record<Entry, Harness>;
  beforeAll(async () => {
    for (const entry of ['use', 'wrap'] as const) {
      servers[entry] = await startHarness({ entry });
      // A route may be configured at "/": then "/?x" is that route with a query.
      atRoot[entry] = await startHarness({ entry, bff: { routes: { healthz: '/' } } });
    }
  });
  afterAll(() => Promise.all([...Object.values(servers), ...Object.values(atRoot)].map((h) => h?.close())));

  it.each([
    ['the health check in absolute form (RFC 9112 3.2.2)', (base: string) => `${base}/healthz`, 200],
    ['the user route in absolute form', (base: string) => `${base}/auth/user`, 401],
    ['the login route in absolute form', (base: string) => `${base}/auth/login`, 302],
    ['the user route with a backslash and a fragment (Express reads "/auth/user")', () => '/auth\\user#x', 401],
    ['the login route with a backslash and a fragment', () => '/auth\\login#', 302],
    ['an app page with a backslash', () => '/auth\\nothing', 404],
  ])('answers %s as app.use(bff) does', async (_name, target, status) => {
    const answers = await Promise.all((['use', 'wrap'] as const).map((entry) => rawRequest(servers[entry].urls[0]!, target(servers[entry].urls[0]!))));
    expect(answers[0]!.status).toBe(status);
    expect(answers[1]).toEqual(answers[0]);
  });

  it.each(['/', '/?probe=1'])('answers a route configured at "/" as app.use(bff) does: %s', async (target) => {
    const answers = await Promise.all((['use', 'wrap'] as const).map((entry) => rawRequest(atRoot[entry].urls[0]!, target)));
    expect(answers[0]).toEqual({ status: 200, contentType: expect.stringMatching(/^application\/json/) });
    expect(answers[1]).toEqual(answers[0]);
  });
});

describe('the wrap entry and the app\'s settings', () => {
  let h: Harness;
  let app: express.Express;
  beforeAll(async () => {
    h = await startHarness({
      entry: 'wrap',
      app: () => {
        app = express();
        app.get('/api/local', (_req, res) => void res.json({ from: 'the app' }));
        return app;
      },
    });
  });
  afterAll(() => h?.close());

  it('sends X-Powered-By on the BFF\'s answers exactly when the app does, as it changes', async () => {
    const browser = h.browser();
    app.enable('x-powered-by');
    expect((await browser.api('/api/items')).headers.get('x-powered-by')).toBe('Express');
    expect((await browser.request('/auth/user')).headers.get('x-powered-by')).toBe('Express');
    app.disable('x-powered-by');
    expect((await browser.api('/api/items')).headers.get('x-powered-by')).toBeNull();
    expect((await browser.request('/auth/user')).headers.get('x-powered-by')).toBeNull();
    expect((await browser.request('/')).headers.get('x-powered-by')).toBeNull();
  });

  it('answers the BFF\'s routes with the app\'s settings: no ETag when the app turned them off', async () => {
    const browser = h.browser();
    await browser.login();
    app.set('etag', 'weak');
    expect((await browser.request('/auth/user')).headers.get('etag')).toMatch(/^W\//);
    app.set('etag', false);
    expect((await browser.request('/auth/user')).headers.get('etag')).toBeNull();
  });

  it('takes every call under an API mount, the app\'s own routes there included (declare those elsewhere)', async () => {
    const res = await h.browser().request('/api/local');
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: 'csrf_required' });
  });
});

describe('bff.wrap() refusals', () => {
  const options = {
    issuer: 'http://127.0.0.1:9/', clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, audience: AUDIENCE,
    baseURL: 'http://127.0.0.1:3000', session: { secrets: [SESSION_SECRET] }, apis: [{ mount: '/api', upstream: 'http://127.0.0.1:9' }],
    logger: { warn: () => {}, error: () => {} },
  };

  it('refuses session.external, naming the option: the app\'s express-session runs inside Express', async () => {
    const bff = createBff({ ...options, session: { external: true } });
    try {
      expect(() => bff.wrap(express())).toThrow(BffConfigError);
      expect(() => bff.wrap(express())).toThrow(/^session.external cannot be used with bff.wrap\(app\)/);
    } finally {
      await bff.close();
    }
  });

  it('refuses an app that is not a request listener', async () => {
    const bff = createBff(options);
    try {
      expect(() => bff.wrap({} as never)).toThrow(TypeError);
      expect(() => bff.wrap({} as never)).toThrow(/app must be a request listener/);
      // A plain listener is an app too: what the BFF does not answer goes to it.
      const server = createServer(bff.wrap((_req, res) => res.end('plain')));
      await listen(server);
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      try {
        expect(await (await fetch(`${url}/`)).text()).toBe('plain');
        const api = await fetch(`${url}/api/items`);
        expect(api.status).toBe(403);
        expect(api.headers.get('x-powered-by')).toBeNull();
        expect(await api.json()).toMatchObject({ error: 'csrf_required' });
      } finally {
        await closeServer(server);
      }
    } finally {
      await bff.close();
    }
  });
});
