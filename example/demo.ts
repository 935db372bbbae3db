/**
 * Demo mode: the local Auth0 emulator stands in for a tenant, with one user, one application pointing at the
 * BFF, and the example API's audience. The `/demo/*` routes exist only in this mode; they let the page do what
 * an Auth0 administrator would do elsewhere (end the user's Auth0 session).
 */
import { randomBytes } from 'node:crypto';
import express, { type Router } from 'express';
import type { Bff } from '../src/index.js';
import { startLocalAuth0, type LocalAuth0 } from '../src/local-auth0/index.js';

export const DEMO_USER = Object.freeze({
  username: 'demo',
  password: 'demo-password',
  email: 'demo@example.test',
  name: 'Demo User',
});
export const DEMO_CLIENT_ID = 'example-bff';
/** Short enough to watch the BFF exchange its ORT for a new access token. */
export const DEMO_ACCESS_TOKEN_TTL = 30;

/** The running demo tenant: what the BFF needs to use it, and the demo routes. */
export interface Demo {
  auth0: LocalAuth0;
  idp: { issuer: string; clientId: string; clientSecret: string; clientAuthMethod: 'client_secret_post' };
  login: { username: string; password: string };
  /** The `/demo/*` routes for `app.use()`, given the BFF (to know who is signed in). */
  routes(bff: Bff): Router;
}

/**
 * Starts the emulator on 127.0.0.1:`preferredPort`, or a free port when that one is taken (or 0).
 * Its application accepts `baseURL` for the callback, the post-logout redirect and back-channel logout.
 */
export async function startDemo(options: {
  baseURL: string;
  audience: string;
  preferredPort: number;
  accessTokenTtl: number | undefined;
  warn: (message: string) => void;
}): Promise<Demo> {
  const clientSecret = randomBytes(24).toString('base64url');
  const accessTokenTtl = options.accessTokenTtl ?? DEMO_ACCESS_TOKEN_TTL;
  const start = (port: number) =>
    startLocalAuth0({
      port,
      clients: [{
        clientId: DEMO_CLIENT_ID,
        clientSecret,
        redirectUris: [`${options.baseURL}/auth/callback`],
        postLogoutRedirectUris: [`${options.baseURL}/`],
        backchannelLogoutUri: `${options.baseURL}/auth/backchannel-logout`,
      }],
      users: [{ ...DEMO_USER }],
      apis: [{ audience: options.audience }],
      accessTokenTtl,
      logger: { warn: options.warn },
    });
  let auth0: LocalAuth0;
  try {
    auth0 = await start(options.preferredPort);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || options.preferredPort === 0) throw error;
    auth0 = await start(0);
  }
  return {
    auth0,
    idp: { issuer: auth0.issuer, clientId: DEMO_CLIENT_ID, clientSecret, clientAuthMethod: 'client_secret_post' },
    login: { username: DEMO_USER.username, password: DEMO_USER.password },
    routes: (bff: Bff) => demoRoutes(auth0, accessTokenTtl, bff),
  };
}

/**
 * `GET /demo/info`: the demo login and token lifetime, for the page.
 * `POST /demo/end-auth0-session` (`X-CSRF: 1`, JSON `{ backchannel? }`): ends the signed-in user's Auth0 session the
 * way an administrator would. Without back-channel logout the BFF learns it at its next ORT exchange (and answers
 * 401 session_ended); with it, Auth0 tells the BFF at once.
 */
function demoRoutes(auth0: LocalAuth0, accessTokenTtl: number, bff: Bff): Router {
  const router = express.Router();
  router.get('/demo/info', (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.json({ username: DEMO_USER.username, password: DEMO_USER.password, accessTokenTtl, issuer: auth0.issuer });
  });
  router.post('/demo/end-auth0-session', express.json({ limit: '1kb' }), async (req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    const body = (req.body ?? {}) as { backchannel?: unknown };
    if (req.get('x-csrf') !== '1') {
      res.status(403).json({ error: 'csrf_required', error_description: 'Send the header X-CSRF: 1.' });
      return;
    }
    // Whose session: the BFF's own answer for this request (no token exchange involved).
    const signedIn = await bff.getUser(req);
    if (!signedIn) {
      res.status(401).json({ error: 'login_required', error_description: 'Log in first.' });
      return;
    }
    const backchannel = body.backchannel === true;
    const ended = await auth0.admin.endSession({ sub: signedIn.user.sub }, { backchannel });
    res.json({ ended, backchannel });
  });
  return router;
}
