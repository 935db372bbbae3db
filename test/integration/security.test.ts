import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import express from 'express';
import { exportJWK, generateKeyPair } from 'jose';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBff, type Bff, type RedisClient } from '../../src/index.js';
import { CookieJar, scriptedLogin, startLocalAuth0 } from '../../src/local-auth0/index.js';
import { AUDIENCE, CLIENT_ID, CLIENT_SECRET, SESSION_SECRET, closeDeletingKeys, startHarness, USER, type Browser, type Harness } from '../support/harness.js';

describe('tokens encrypted at rest', () => {
  const oldKey = randomBytes(32).toString('hex');
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: true, instances: 2, bff: { session: { secrets: [SESSION_SECRET], encryptionKeys: [oldKey] } } });
  });
  afterAll(() => h?.close());

  it('keeps only ciphertext of the ORT, ID token and access tokens in Redis, and still exchanges', async () => {
    const browser = h.browser();
    await browser.login();
    const r = h.redis as unknown as { hGetAll(k: string): Promise<Record<string, string>> };
    const [key] = (await h.redisKeys()).filter((k) => k.includes(':tok:'));
    const fields = await r.hGetAll(key as string);
    expect(fields.rt).toMatch(/^e1\./);
    expect(fields.idt).toMatch(/^e1\./);
    const at = Object.entries(fields).find(([k]) => k.startsWith('at:'))?.[1] as string;
    expect(at.split('|')[2]).toMatch(/^e1\./);
    // No JWT (two base64url JSON segments) anywhere; ciphertext cannot look like that by chance.
    expect(JSON.stringify(fields)).not.toMatch(/eyJ[\w-]+\.eyJ[\w-]+\./);

    h.clock.advance(61_000);
    expect((await browser.api('/api/items')).status).toBe(200);
    expect(h.upstream.requests.at(-1)?.headers.authorization).toMatch(/^Bearer eyJ/);
  });
});

describe('key rotation for encryption at rest', () => {
  it('reads sessions written with the previous key after a new key is put first', async () => {
    const oldKey = randomBytes(32).toString('hex');
    const newKey = randomBytes(32).toString('hex');
    const before = await startHarness({ redis: true, bff: { session: { secrets: [SESSION_SECRET], encryptionKeys: [oldKey] } } });
    try {
      const browser = before.browser();
      await browser.login();
      // A second BFF on the same Redis prefix, rotated: new key first, old key still accepted.
      const { createBff } = await import('../../src/index.js');
      const express = (await import('express')).default;
      const rotated = createBff({
        issuer: before.auth0.issuer, clientId: 'bff-client', clientSecret: 'bff-client-secret-for-tests-only', audience: 'https://api.example.test',
        baseURL: browser.url, redis: before.redis, redisPrefix: before.prefix, clock: before.clock.now,
        session: { secrets: [SESSION_SECRET], encryptionKeys: [newKey, oldKey] }, apis: [{ mount: '/api', upstream: before.upstream.url }],
        logger: { warn() {}, error() {} },
      });
      await rotated.ready();
      const app = express().use(rotated);
      const { createServer } = await import('node:http');
      const server = createServer(app);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      try {
        const cookie = browser.jar.header(browser.url);
        before.clock.advance(61_000);
        const res = await fetch(`${url}/api/items`, { headers: { cookie, 'x-csrf': '1' } });
        expect(res.status).toBe(200);
      } finally {
        await rotated.close();
        server.closeAllConnections();
        server.close();
      }
    } finally {
      await before.close();
    }
  });
});

describe('the session cookie on an https site', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: true });
  });
  afterAll(() => h?.close());

  it('is __Host- prefixed, Secure, HttpOnly and SameSite=Lax when baseURL is https', async () => {
    const { createBff } = await import('../../src/index.js');
    const express = (await import('express')).default;
    const { createServer } = await import('node:http');
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const httpUrl = `http://127.0.0.1:${port}`;
    // Plain http on loopback stands in for the TLS terminator, which says https through X-Forwarded-Proto.
    const bff = createBff({
      issuer: h.auth0.issuer, clientId: 'bff-client', clientSecret: 'bff-client-secret-for-tests-only', audience: 'https://api.example.test',
      baseURL: `https://127.0.0.1:${port}`, redis: h.redis, redisPrefix: h.prefix,
      session: { secrets: [SESSION_SECRET] }, logger: { warn() {}, error() {} },
    });
    server.on('request', express().use(bff));
    try {
      await bff.ready();
      const login = await fetch(`${httpUrl}/auth/login`, { redirect: 'manual', headers: { 'x-forwarded-proto': 'https' } });
      expect(login.status).toBe(302);
      const binding = login.headers.getSetCookie().find((c) => c.startsWith('__Host-bff.tx='));
      expect(binding).toMatch(/Secure/);
      expect(binding).toMatch(/HttpOnly/);
      expect(binding).toMatch(/Path=\//);
      expect(binding).not.toMatch(/Domain=/i);
      expect(new URL(login.headers.get('location') as string).searchParams.get('redirect_uri')).toBe(`https://127.0.0.1:${port}/auth/callback`);
    } finally {
      await bff.close();
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('a login on an https site behind a TLS terminator', () => {
  // Plain http on loopback stands in for the terminator, which may or may not say https through X-Forwarded-Proto.
  it.each([
    ['says so', 'https'],
    ['says nothing (nginx\'s default proxy_pass)', undefined],
    ['is followed by a proxy that says http (the hop it got the request on)', 'http'],
  ])('sets the Secure session cookie when the terminator %s', async (_name, forwarded) => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const site = `https://127.0.0.1:${port}`;
    const plain = `http://127.0.0.1:${port}`;
    const auth0 = await startLocalAuth0({
      clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [`${site}/auth/callback`], postLogoutRedirectUris: [`${site}/`] }],
      users: [{ ...USER }],
      apis: [{ audience: AUDIENCE }],
    });
    const redis = createClient({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
    await redis.connect();
    const prefix = `bfftest:${randomUUID()}:`;
    const bff = createBff({
      issuer: auth0.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, audience: AUDIENCE,
      baseURL: site, redis: redis as unknown as RedisClient, redisPrefix: prefix,
      session: { secrets: [SESSION_SECRET] }, logger: { warn() {}, error() {} },
    });
    server.on('request', express().use(bff));
    const jar = new CookieJar();
    const headers = (): Record<string, string> => ({ ...(forwarded ? { 'x-forwarded-proto': forwarded } : {}), cookie: jar.header(site) });
    try {
      await bff.ready();
      const login = await fetch(`${plain}/auth/login`, { redirect: 'manual', headers: headers() });
      for (const cookie of login.headers.getSetCookie()) jar.set(site, cookie);
      const { callbackUrl } = await scriptedLogin(login.headers.get('location') as string, USER, { jar, stopAt: `${site}/auth/callback` });
      const callback = await fetch(callbackUrl.replace(site, plain), { redirect: 'manual', headers: headers() });
      expect(callback.status).toBe(302);
      const session = callback.headers.getSetCookie().find((c) => c.startsWith('__Host-bff='));
      expect(session).toMatch(/; Path=\/;.*HttpOnly; Secure; SameSite=Lax$/);
      jar.set(site, session as string);
      expect((await fetch(`${plain}/auth/user`, { headers: headers() })).status).toBe(200);
    } finally {
      await bff.close();
      server.closeAllConnections();
      server.close();
      await auth0.stop();
      for await (const batch of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) if (batch.length) await redis.del(batch);
      await redis.close();
    }
  });
});

describe('client authentication methods', () => {
  it('logs in and exchanges with client_secret_basic', async () => {
    const h = await startHarness({ redis: true, client: { tokenEndpointAuthMethod: 'client_secret_basic' }, bff: { clientAuthMethod: 'client_secret_basic' } });
    try {
      const browser = h.browser();
      await browser.login();
      h.clock.advance(61_000);
      expect((await browser.api('/api/items')).status).toBe(200);
      expect(h.auth0.admin.counts().token.refresh_token?.ok).toBe(1);
    } finally {
      await h.close();
    }
  });

  it('logs in, exchanges and revokes with private_key_jwt', async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const publicJwk = { ...(await exportJWK(publicKey)), kid: 'bff-key-1', alg: 'RS256', use: 'sig' };
    const privateJwk = { ...(await exportJWK(privateKey)), kid: 'bff-key-1', alg: 'RS256' };
    const h = await startHarness({
      redis: true,
      client: { clientSecret: undefined, tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [publicJwk] } },
      bff: { clientSecret: undefined, clientAuthMethod: 'private_key_jwt', clientAssertionKey: privateJwk as JsonWebKey },
    });
    try {
      const browser = h.browser();
      await browser.login();
      h.clock.advance(61_000);
      expect((await browser.api('/api/items')).status).toBe(200);
      const { body } = await browser.user();
      const before = h.auth0.admin.counts().revocations;
      await browser.request(body.logoutUrl);
      expect(h.auth0.admin.counts().revocations).toBe(before + 1);
      expect(h.auth0.admin.sessions().filter((s) => s.sub === USER.sub)).toHaveLength(0);
    } finally {
      await h.close();
    }
  });
});

describe('id_token_hint on request', () => {
  it('sends the ID token to the end-session endpoint only when logout.idTokenHint is set', async () => {
    const h = await startHarness({ redis: true, bff: { logout: { idTokenHint: true } } });
    try {
      const browser = h.browser();
      await browser.login();
      const { body } = await browser.user();
      const res = await browser.request(body.logoutUrl);
      const location = new URL(res.headers.get('location') as string);
      expect(location.searchParams.get('id_token_hint')).toMatch(/^eyJ/);
      // The emulator accepts it and logs out at once.
      const end = await fetch(location, { redirect: 'manual' });
      expect(end.status).toBe(302);
    } finally {
      await h.close();
    }
  });
});

describe('local-only logout', () => {
  it('redirects to the app instead of Auth0 when idpLogout is off', async () => {
    const h = await startHarness({ redis: true, bff: { logout: { idpLogout: false, returnTo: '/bye' } } });
    try {
      const browser = h.browser();
      await browser.login();
      const { body } = await browser.user();
      const res = await browser.request(body.logoutUrl);
      expect(res.headers.get('location')).toBe(`${browser.url}/bye`);
      expect((await browser.user()).status).toBe(401);
      expect(h.auth0.admin.counts().revocations).toBe(1);
    } finally {
      await h.close();
    }
  });
});


describe('a key taken out of session.encryptionKeys too soon', () => {
  const keyA = randomBytes(32).toString('hex');
  const keyB = randomBytes(32).toString('hex');
  let h: Harness;
  let rotated: Bff;
  let logs: string[];
  type Listener = (...args: unknown[]) => void;
  /** The harness's own request listener: the BFF with key A. */
  let original: Listener[] | undefined;
  beforeAll(async () => {
    h = await startHarness({ redis: true, bff: { session: { secrets: [SESSION_SECRET], encryptionKeys: [keyA] } } });
  });
  afterAll(async () => {
    await rotated?.close();
    await h?.close();
  });

  /**
   * A browser logged in under key A, then the BFF serving the same store with key B alone, and a second browser
   * profile of the same Auth0 session (SSO) logged in under it.
   */
  async function rotateTooSoon(): Promise<{ old: Browser; fresh: Browser }> {
    const server = h.servers[0]!;
    original ??= server.listeners('request') as Listener[];
    server.removeAllListeners('request');
    for (const listener of original) server.on('request', listener);
    const old = h.browser();
    await old.login();
    await rotated?.close();
    logs = [];
    const log = (level: string) => (message: string) => void logs.push(`${level} ${message}`);
    rotated = createBff({
      issuer: h.auth0.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, audience: AUDIENCE, baseURL: old.url,
      redis: h.redis, redisPrefix: h.prefix, clock: h.clock.now, logger: { warn: log('warn'), error: log('error') },
      session: { secrets: [SESSION_SECRET], encryptionKeys: [keyB] }, apis: [{ mount: '/api', upstream: h.upstream.url }],
    });
    await rotated.ready();
    server.removeAllListeners('request');
    server.on('request', express().use(rotated));
    const fresh = h.browser();
    // Auth0's cookies only: on one host, the jar sends the BFF's (port-blind) cookies to the issuer too.
    for (const cookie of old.jar.header(h.auth0.issuer).split('; ')) if (!cookie.startsWith('bff')) fresh.jar.set(h.auth0.issuer, cookie);
    expect((await fresh.login()).status).toBe(302);
    return { old, fresh };
  }

  it('ends the session it cannot read at its next API call, with session_ended, and no other', async () => {
    const { old, fresh } = await rotateTooSoon();
    expect((await old.user()).status).toBe(200);
    const call = await old.api('/api/items');
    expect(call.status).toBe(401);
    expect(await call.json()).toMatchObject({ error: 'session_ended' });
    expect(logs.some((line) => line.startsWith('warn') && line.includes('cannot be decrypted'))).toBe(true);
    expect(logs.filter((line) => line.startsWith('error'))).toEqual([]);
    expect((await fresh.api('/api/items')).status).toBe(200);
  });

  it('still ends every session of an Auth0 session on a back-channel logout, the one it cannot read too', async () => {
    const { old, fresh } = await rotateTooSoon();
    const sid = h.auth0.admin.sessions().filter((s) => s.sub === USER.sub).at(-1)?.sid as string;
    await h.auth0.admin.endSession({ sid }, { backchannel: true });
    expect(h.auth0.admin.backchannelDeliveries().at(-1)?.status).toBe(200);
    for (const browser of [fresh, old]) expect((await browser.user()).status).toBe(401);
  });

  it('logs out a readable session whose Auth0 session also holds one it cannot read', async () => {
    const { old, fresh } = await rotateTooSoon();
    const { body } = await fresh.user();
    const res = await fresh.request(body.logoutUrl);
    expect(res.status).toBe(302);
    expect(res.headers.getSetCookie().some((cookie) => /^bff=;/.test(cookie))).toBe(true);
    for (const browser of [fresh, old]) expect((await browser.user()).status).toBe(401);
  });
});

describe('a session cookie sent in quotes', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ redis: true });
  });
  afterAll(() => closeDeletingKeys(h));

  // RFC 6265 allows a cookie value in double quotes, and some clients and proxies send it so. express-session reads
  // it without them: the API path must read the same session, not answer 401 where /auth/user answers 200.
  it('is the same session on the API path as on the BFF routes', async () => {
    const browser = h.browser();
    await browser.login();
    const quoted = browser.jar.header(browser.url).replace(/(^|; )(bff)=([^;]+)/, '$1$2="$3"');
    expect(quoted).toMatch(/bff="s%3A/);
    const headers = { cookie: quoted, 'x-csrf': '1' };
    expect((await fetch(`${browser.url}/auth/user`, { headers })).status).toBe(200);
    const res = await fetch(`${browser.url}/api/items`, { headers });
    expect(res.status).toBe(200);
    expect(h.upstream.requests.at(-1)?.headers.authorization).toMatch(/^Bearer /);
    expect(h.upstream.requests.at(-1)?.headers.cookie).toBeUndefined();
  });
});
