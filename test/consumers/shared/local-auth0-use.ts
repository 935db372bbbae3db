/**
 * A realistic use of `express-ort-bff/local-auth0` in a test, type-checked by every consumer combination against
 * the packed package with `skipLibCheck: false` (and without oidc-provider or its types in the Express 4 project).
 */
import {
  CookieJar,
  scriptedLogin,
  startLocalAuth0,
  type IssuedToken,
  type LocalAuth0,
  type LocalAuth0Options,
  type LocalAuth0Session,
  type TokenEndpointFailure,
} from 'express-ort-bff/local-auth0';

export async function logInThroughTheBff(bffOrigin: string): Promise<{ formShown: boolean; onlineTokens: number }> {
  const options: LocalAuth0Options = {
    clients: [{
      clientId: 'bff',
      clientSecret: 'bff-secret',
      redirectUris: [`${bffOrigin}/auth/callback`],
      backchannelLogoutUri: `${bffOrigin}/auth/backchannel-logout`,
    }],
    users: [{ username: 'alice', password: 'alice-pw', name: 'Alice', 'https://example.com/roles': ['admin'] }],
    apis: [{ audience: 'https://api.example.com', scopes: ['read:reports'] }],
    accessTokenTtl: 30,
  };
  const auth0: LocalAuth0 = await startLocalAuth0(options);
  try {
    const jar = new CookieJar();
    const { callbackUrl, loginFormShown } = await scriptedLogin(
      `${bffOrigin}/auth/login`,
      { username: 'alice', password: 'alice-pw' },
      { jar, stopAt: `${bffOrigin}/auth/callback` },
    );
    jar.setFrom(callbackUrl, await fetch(callbackUrl, { headers: { cookie: jar.header(callbackUrl) }, redirect: 'manual' }));

    const failure: TokenEndpointFailure = { status: 429, retryAfter: 2 };
    auth0.admin.failTokenEndpoint(failure, { times: 1 });
    const tokens: IssuedToken[] = auth0.admin.tokens();
    const [session]: LocalAuth0Session[] = auth0.admin.sessions();
    if (session) await auth0.admin.endSession({ sid: session.sid }, { backchannel: true });
    return { formShown: loginFormShown, onlineTokens: tokens.filter((token) => token.online).length };
  } finally {
    await auth0.stop();
  }
}
