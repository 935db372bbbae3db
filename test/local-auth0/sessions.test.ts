import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { scriptedLogin, startLocalAuth0, type LocalAuth0, type LocalAuth0Client } from '../../src/local-auth0/index.js';
import { ALICE, BFF, BOB, authorizeUrl, claimsOf, exchangeCode, login, loginForTokens, manualClock, refresh } from './support.js';

const IDLE = 600;
const ABSOLUTE = 1000;
const SECOND_APP: LocalAuth0Client = {
  clientId: 'second-app',
  clientSecret: 'second-secret',
  redirectUris: ['http://127.0.0.1:3002/callback'],
};
const DEAD = { error: 'invalid_grant', error_description: 'Unknown or invalid refresh token.' };

const clock = manualClock();
let auth0: LocalAuth0;

beforeAll(async () => {
  auth0 = await startLocalAuth0({
    clients: [BFF, SECOND_APP],
    users: [ALICE, BOB],
    apis: [{ audience: 'https://api.example.com' }],
    idleTimeout: IDLE,
    absoluteTimeout: ABSOLUTE,
    clock: clock.now,
  });
});
afterAll(() => auth0?.stop());

function sessionOf(sid: unknown) {
  return auth0.admin.sessions().find((session) => session.sid === sid);
}

describe('one Auth0 session for several applications', () => {
  it('gives both applications the same sid, in their ID tokens and the session list', async () => {
    const first = await loginForTokens(auth0.issuer, { user: BOB });
    const second = await login(auth0.issuer, { client: SECOND_APP, jar: first.jar });
    const secondTokens = await exchangeCode(auth0.issuer, second);

    const sid = claimsOf(first.tokens.id_token).sid;
    expect(sid).toEqual(expect.any(String));
    expect(claimsOf(secondTokens.body.id_token as string).sid).toBe(sid);
    expect(sessionOf(sid)).toMatchObject({ sub: 'auth0|bob', clients: ['bff', 'second-app'] });
    expect(auth0.admin.tokens().filter((t) => t.kind === 'refresh_token' && t.sid === sid).map((t) => t.clientId).sort())
      .toEqual(['bff', 'second-app']);
  });
});

describe('session lifetimes (measured with the clock option)', () => {
  it('lists the session with its creation, idle expiry and absolute expiry', async () => {
    const { tokens } = await loginForTokens(auth0.issuer);
    const now = Math.floor(clock.now() / 1000);
    expect(sessionOf(claimsOf(tokens.id_token).sid)).toMatchObject({
      sub: 'auth0|alice',
      clients: ['bff'],
      createdAt: now,
      idleExpiresAt: now + IDLE,
      expiresAt: now + ABSOLUTE,
    });
  });

  it('kills the ORT once the session has been idle too long', async () => {
    const { tokens } = await loginForTokens(auth0.issuer);
    clock.advance(IDLE - 1);
    expect((await refresh(auth0.issuer, tokens.refresh_token!)).status).toBe(200);
    clock.advance(IDLE);
    const response = await refresh(auth0.issuer, tokens.refresh_token!);
    expect(response.status).toBe(403);
    expect(response.body).toEqual(DEAD);
    expect(sessionOf(claimsOf(tokens.id_token).sid)).toBeUndefined();
  });

  it('restarts the idle timer on each ORT exchange', async () => {
    const { tokens } = await loginForTokens(auth0.issuer);
    const sid = claimsOf(tokens.id_token).sid;
    // Two steps of 400 s: 800 s in all, past the 600 s idle lifetime, within the 1000 s absolute one.
    for (let i = 0; i < 2; i += 1) {
      clock.advance(400);
      expect((await refresh(auth0.issuer, tokens.refresh_token!)).status).toBe(200);
      const session = sessionOf(sid)!;
      expect(session.idleExpiresAt).toBe(Math.min(Math.floor(clock.now() / 1000) + IDLE, session.expiresAt));
    }
  });

  it('never extends the absolute lifetime, however active the session', async () => {
    const { tokens } = await loginForTokens(auth0.issuer);
    const sid = claimsOf(tokens.id_token).sid;
    const expiresAt = sessionOf(sid)!.expiresAt;
    for (let elapsed = 0; elapsed + 300 < ABSOLUTE; elapsed += 300) {
      clock.advance(300);
      expect((await refresh(auth0.issuer, tokens.refresh_token!)).status).toBe(200);
      expect(sessionOf(sid)?.expiresAt).toBe(expiresAt);
    }
    expect(sessionOf(sid)!.idleExpiresAt).toBe(expiresAt);
    clock.advance(ABSOLUTE);
    expect((await refresh(auth0.issuer, tokens.refresh_token!)).body).toEqual(DEAD);
  });

  it('restarts the idle timer on SSO at /authorize', async () => {
    const first = await loginForTokens(auth0.issuer);
    const sid = claimsOf(first.tokens.id_token).sid;
    clock.advance(400);
    const { url } = authorizeUrl(auth0.issuer, BFF);
    const sso = await scriptedLogin(url, ALICE, { jar: first.jar, stopAt: BFF.redirectUris[0]! });
    expect(sso.loginFormShown).toBe(false);
    clock.advance(400);
    expect((await refresh(auth0.issuer, first.tokens.refresh_token!)).status).toBe(200);
    expect(sessionOf(sid)).toBeDefined();
  });

  it('ends SSO with the session: the next /authorize shows the login form', async () => {
    const first = await loginForTokens(auth0.issuer);
    clock.advance(IDLE + 1);
    const { url } = authorizeUrl(auth0.issuer, BFF);
    const again = await scriptedLogin(url, ALICE, { jar: first.jar, stopAt: BFF.redirectUris[0]! });
    expect(again.loginFormShown).toBe(true);
  });
});
