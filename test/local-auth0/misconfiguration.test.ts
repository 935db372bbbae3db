import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { startLocalAuth0, type LocalAuth0, type LocalAuth0Client } from '../../src/local-auth0/index.js';
import { ALICE, API, BFF, claimsOf, loginForTokens, postForm, refresh, startLogoutReceiver } from './support.js';

/** The emulator set up wrong on purpose, the way a tenant can be: it then behaves as Auth0 would. */
const EPHEMERAL_API = 'https://ephemeral.example.com';

let receiver: Awaited<ReturnType<typeof startLogoutReceiver>>;
let auth0: LocalAuth0;
let noRefreshGrant: LocalAuth0Client;
let narrowInitiators: LocalAuth0Client;

beforeAll(async () => {
  receiver = await startLogoutReceiver();
  noRefreshGrant = { ...BFF, clientId: 'no-refresh', grantTypes: ['authorization_code'] };
  narrowInitiators = {
    ...BFF,
    clientId: 'narrow',
    backchannelLogoutUri: `${receiver.url}/narrow/backchannel-logout`,
    backchannelLogoutInitiators: ['session-expired'],
  };
  auth0 = await startLocalAuth0({
    clients: [BFF, noRefreshGrant, narrowInitiators],
    users: [ALICE],
    apis: [{ audience: API }, { audience: EPHEMERAL_API, allowOnlineAccessWithEphemeralSessions: true }],
  });
});
afterAll(async () => {
  await auth0?.stop();
  await receiver?.close();
});
beforeEach(() => {
  receiver.received.length = 0;
});

describe('an application without the refresh_token grant', () => {
  it('gets no ORT at login, and a refresh is refused with 403 unauthorized_client', async () => {
    const { tokens } = await loginForTokens(auth0.issuer, { client: noRefreshGrant });
    expect(tokens.access_token).toEqual(expect.any(String));
    expect(tokens.refresh_token).toBeUndefined();

    const response = await refresh(auth0.issuer, 'ORTmade-up', noRefreshGrant);
    expect(response.status).toBe(403);
    expect(response.body).toEqual({ error: 'unauthorized_client', error_description: "Grant type 'refresh_token' not allowed for the client." });
  });
});

describe('an API with allow_online_access_with_ephemeral_sessions', () => {
  it('issues an ORT that is refused with invalid_grant at its first exchange (Auth0\'s known limit)', async () => {
    const { tokens } = await loginForTokens(auth0.issuer, { params: { audience: EPHEMERAL_API } });
    expect(tokens.refresh_token).toMatch(/^ORT/);
    const response = await refresh(auth0.issuer, tokens.refresh_token!);
    expect(response.status).toBe(403);
    expect(response.body).toEqual({ error: 'invalid_grant', error_description: 'Unknown or invalid refresh token.' });
  });

  it('leaves the ORTs of other APIs working', async () => {
    const { tokens } = await loginForTokens(auth0.issuer);
    expect((await refresh(auth0.issuer, tokens.refresh_token!)).status).toBe(200);
  });
});

describe('back-channel logout initiators', () => {
  it('sends a logout token only for the session ends the application subscribed to', async () => {
    const revoked = await loginForTokens(auth0.issuer, { client: narrowInitiators });
    expect(await auth0.admin.endSession({ sid: claimsOf(revoked.tokens.id_token).sid as string }, { backchannel: true })).toBe(1);
    expect(receiver.received).toEqual([]);

    const expired = await loginForTokens(auth0.issuer, { client: narrowInitiators });
    const sid = claimsOf(expired.tokens.id_token).sid as string;
    expect(await auth0.admin.endSession({ sid }, { backchannel: true, initiator: 'session-expired' })).toBe(1);
    expect(receiver.received).toHaveLength(1);
    expect(claimsOf(receiver.received[0]!.logoutToken).sid).toBe(sid);
  });

  it('counts an ORT revocation as session-revoked', async () => {
    const { tokens } = await loginForTokens(auth0.issuer, { client: narrowInitiators });
    const response = await postForm(auth0.issuer, '/oauth/revoke', { token: tokens.refresh_token!, token_type_hint: 'refresh_token' }, narrowInitiators);
    expect(response.status).toBe(200);
    expect(auth0.admin.sessions().map((session) => session.sid)).not.toContain(claimsOf(tokens.id_token).sid);
    expect(receiver.received).toEqual([]);
  });

  it('always sends one for an RP-initiated logout, as Auth0 does', async () => {
    const { tokens } = await loginForTokens(auth0.issuer, { client: narrowInitiators });
    const url = new URL('oidc/logout', auth0.issuer);
    url.search = new URLSearchParams({ client_id: narrowInitiators.clientId, logout_hint: claimsOf(tokens.id_token).sid as string }).toString();
    expect((await fetch(url, { redirect: 'manual' })).status).toBe(200);
    expect(receiver.received).toHaveLength(1);
  });

  it('refuses an initiator Auth0 does not have', async () => {
    await expect(auth0.admin.endSession({ sub: 'nobody' }, { backchannel: true, initiator: 'user-bored' as never })).rejects.toThrow(/"options.initiator" must be one of/);
  });
});

describe('the options of a misconfiguration', () => {
  it.each([
    [{ grantTypes: [] }, /"clients\[0\].grantTypes" must be a non-empty array/],
    [{ grantTypes: ['password'] }, /"clients\[0\].grantTypes"/],
    [{ backchannelLogoutInitiators: ['everything'] }, /"clients\[0\].backchannelLogoutInitiators" must be "all" or an array of rp-logout/],
  ])('refuses the client option %j', async (option, message) => {
    await expect(startLocalAuth0({ clients: [{ ...BFF, ...(option as object) }], users: [] })).rejects.toThrow(message);
  });

  it('refuses a non-boolean ephemeral sessions flag and an empty management token', async () => {
    await expect(startLocalAuth0({ clients: [BFF], users: [], apis: [{ audience: API, allowOnlineAccessWithEphemeralSessions: 'yes' as never }] }))
      .rejects.toThrow(/"apis\[0\].allowOnlineAccessWithEphemeralSessions" must be a boolean/);
    await expect(startLocalAuth0({ clients: [BFF], users: [], managementApiToken: '' })).rejects.toThrow(/"managementApiToken" must be a non-empty string/);
  });
});
