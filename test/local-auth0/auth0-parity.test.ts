/**
 * Places where the emulator once answered as oidc-provider does, not as Auth0 does: the hints of /oidc/logout,
 * the initiators and claims of logout tokens, exchanges for an API the refresh token may not have, and bad
 * client credentials at /oauth/revoke.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { startLocalAuth0, type LocalAuth0, type LocalAuth0Client } from '../../src/local-auth0/index.js';
import { ALICE, API, BFF, claimsOf, loginForTokens, postForm, refresh, startLogoutReceiver } from './support.js';

const OTHER_ONLINE_API = 'https://online.example.com';
const OFFLINE_ONLY_API = 'https://offline-only.example.com';

let receiver: Awaited<ReturnType<typeof startLogoutReceiver>>;
let auth0: LocalAuth0;
/** Subscribed to `session-revoked` only, as an application can be in the Dashboard. */
let app: LocalAuth0Client;

beforeAll(async () => {
  receiver = await startLogoutReceiver();
  app = { ...BFF, backchannelLogoutUri: `${receiver.url}/backchannel-logout`, backchannelLogoutInitiators: ['session-revoked'] };
  auth0 = await startLocalAuth0({
    clients: [app],
    users: [ALICE],
    apis: [{ audience: API }, { audience: OTHER_ONLINE_API }, { audience: OFFLINE_ONLY_API, allowOnlineAccess: false }],
  });
});
afterAll(async () => {
  await auth0?.stop();
  await receiver?.close();
});
beforeEach(async () => {
  await auth0.admin.endSession({ sub: 'auth0|alice' });
  receiver.received.length = 0;
});

function logoutUrl(params: Record<string, string>): URL {
  const url = new URL('oidc/logout', auth0.issuer);
  url.search = new URLSearchParams(params).toString();
  return url;
}

describe('RP-initiated logout hints', () => {
  it('refuses a logout_hint that is not the sid of the id_token_hint, and ends neither session', async () => {
    const first = await loginForTokens(auth0.issuer);
    const second = await loginForTokens(auth0.issuer);
    const url = logoutUrl({ id_token_hint: first.tokens.id_token, logout_hint: claimsOf(second.tokens.id_token).sid as string });
    const response = await fetch(url, { redirect: 'manual', headers: { cookie: first.jar.header(url) } });
    expect(response.status).toBe(400);
    expect(await response.text()).toContain('logout_hint does not match the sid of the id_token_hint');
    expect((await refresh(auth0.issuer, first.tokens.refresh_token!)).status).toBe(200);
    expect((await refresh(auth0.issuer, second.tokens.refresh_token!)).status).toBe(200);
  });

  it('refuses a logout_hint without id_token_hint or client_id, and keeps the session', async () => {
    const { tokens } = await loginForTokens(auth0.issuer);
    const response = await fetch(logoutUrl({ logout_hint: claimsOf(tokens.id_token).sid as string }), { redirect: 'manual' });
    expect(response.status).toBe(400);
    expect(await response.text()).toContain('logout_hint needs id_token_hint or client_id');
    expect((await refresh(auth0.issuer, tokens.refresh_token!)).status).toBe(200);
  });

  it('ends the session of a logout_hint given with client_id or with its own id_token_hint, without the browser cookie', async () => {
    const first = await loginForTokens(auth0.issuer);
    const second = await loginForTokens(auth0.issuer);
    const withClientId = await fetch(logoutUrl({ logout_hint: claimsOf(first.tokens.id_token).sid as string, client_id: app.clientId }), { redirect: 'manual' });
    const withIdToken = await fetch(
      logoutUrl({ id_token_hint: second.tokens.id_token, logout_hint: claimsOf(second.tokens.id_token).sid as string }),
      { redirect: 'manual' },
    );
    expect([withClientId.status, withIdToken.status]).toEqual([200, 200]);
    expect((await refresh(auth0.issuer, first.tokens.refresh_token!)).status).toBe(403);
    expect((await refresh(auth0.issuer, second.tokens.refresh_token!)).status).toBe(403);
  });
});

describe('back-channel logout tokens', () => {
  it('go for idp-logout to every application with a back-channel URI, whatever it subscribed to', async () => {
    await loginForTokens(auth0.issuer);
    await auth0.admin.endSession({ sub: 'auth0|alice' }, { backchannel: true, initiator: 'idp-logout' });
    expect(receiver.received).toHaveLength(1);
  });

  it('still go for other initiators only to the applications subscribed to them', async () => {
    await loginForTokens(auth0.issuer);
    await auth0.admin.endSession({ sub: 'auth0|alice' }, { backchannel: true, initiator: 'password-changed' });
    expect(receiver.received).toHaveLength(0);
  });

  it('carry a trace_id of their own, as Auth0\'s do', async () => {
    await loginForTokens(auth0.issuer);
    await loginForTokens(auth0.issuer);
    await auth0.admin.endSession({ sub: 'auth0|alice' }, { backchannel: true });
    const traceIds = receiver.received.map((r) => claimsOf(r.logoutToken).trace_id);
    expect(traceIds).toEqual([expect.stringMatching(/^[0-9a-f]{32}$/), expect.stringMatching(/^[0-9a-f]{32}$/)]);
    expect(traceIds[0]).not.toBe(traceIds[1]);
  });
});

describe('an ORT exchange for an API it may not have', () => {
  it.each([
    ['an API without online access', OFFLINE_ONLY_API],
    ['an unknown API', 'https://unknown.example.com'],
  ])('is answered, for %s, as Auth0 answers: a token for the login\'s API and no invalid_target', async (_case, audience) => {
    const { tokens } = await loginForTokens(auth0.issuer);
    const response = await postForm(auth0.issuer, '/oauth/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, audience });
    expect(response.body.error).toBeUndefined();
    expect(response.status).toBe(200);
    expect(claimsOf(response.body.access_token as string).aud).toBe(API);
  });

  it('gets the token of another API that allows online access', async () => {
    const { tokens } = await loginForTokens(auth0.issuer);
    const response = await postForm(auth0.issuer, '/oauth/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, audience: OTHER_ONLINE_API });
    expect(response.status).toBe(200);
    expect(claimsOf(response.body.access_token as string).aud).toBe(OTHER_ONLINE_API);
  });

  it('still gets Auth0\'s invalid_grant when the refresh token is unknown', async () => {
    const response = await postForm(auth0.issuer, '/oauth/token', { grant_type: 'refresh_token', refresh_token: 'ORTunknown', audience: OFFLINE_ONLY_API });
    expect(response.status).toBe(403);
    expect(response.body.error).toBe('invalid_grant');
  });
});

describe('bad client credentials', () => {
  it('get the same 401 access_denied at /oauth/revoke as at /oauth/token', async () => {
    const wrong = { ...app, clientSecret: 'wrong' };
    const revoke = await postForm(auth0.issuer, '/oauth/revoke', { token: 'ORTunknown' }, wrong);
    const token = await postForm(auth0.issuer, '/oauth/token', { grant_type: 'refresh_token', refresh_token: 'ORTunknown' }, wrong);
    expect(token).toMatchObject({ status: 401, body: { error: 'access_denied', error_description: 'Unauthorized' } });
    expect(revoke).toMatchObject({ status: token.status, body: token.body });
    expect(revoke.headers.get('www-authenticate')).toBeNull();
  });
});
