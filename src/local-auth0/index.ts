/**
 * `express-ort-bff/local-auth0`: a local stand-in for an Auth0 tenant with Online Refresh Tokens enabled, for
 * tests, demos and development without a tenant. {@link startLocalAuth0} needs the optional peer dependency
 * `oidc-provider`; {@link CookieJar} and {@link scriptedLogin} work without it.
 *
 * @example
 * ```ts
 * import { startLocalAuth0, scriptedLogin } from 'express-ort-bff/local-auth0';
 *
 * const auth0 = await startLocalAuth0({
 *   clients: [{ clientId: 'bff', clientSecret: 's3cret', redirectUris: ['http://127.0.0.1:3000/auth/callback'] }],
 *   users: [{ username: 'alice', password: 'alice-pw', email: 'alice@example.com' }],
 *   apis: [{ audience: 'https://api.example.com' }],
 * });
 * const { callbackUrl } = await scriptedLogin('http://127.0.0.1:3000/auth/login', { username: 'alice', password: 'alice-pw' });
 * await auth0.stop();
 * ```
 *
 * @module express-ort-bff/local-auth0
 */
import { resolveOptions, type LocalAuth0Options } from './options.js';
import type { LocalAuth0 } from './types.js';

export type {
  BackchannelLogoutInitiator,
  LocalAuth0Api,
  LocalAuth0Client,
  LocalAuth0ClientGrant,
  LocalAuth0GrantType,
  LocalAuth0Options,
  LocalAuth0User,
} from './options.js';
export type {
  BackchannelDelivery,
  IssuedToken,
  LocalAuth0,
  LocalAuth0Admin,
  LocalAuth0Counts,
  LocalAuth0Session,
  ManagementScope,
  TokenEndpointFailure,
} from './types.js';
export { CookieJar, scriptedLogin, type ScriptedLoginOptions, type ScriptedLoginResult } from './scripted-login.js';

/** What to do when oidc-provider is missing: the one thing the emulator needs that the package does not install. */
const MISSING_PROVIDER =
  'startLocalAuth0() needs oidc-provider, an optional peer dependency of express-ort-bff. ' +
  'Install it next to express-ort-bff: npm install --save-dev oidc-provider@^9';

/**
 * Loads the emulator, which imports oidc-provider. A static import would make the whole subpath fail to load
 * without it, `CookieJar` and `scriptedLogin` included, with Node's bare "Cannot find package" error.
 */
async function loadEmulator(): Promise<typeof import('./emulator.js')> {
  try {
    return await import('./emulator.js');
  } catch (error) {
    // Only oidc-provider itself missing is the user's to install; a package missing inside it is another fault.
    const { code, message } = error as { code?: unknown; message?: unknown };
    if (code === 'ERR_MODULE_NOT_FOUND' && typeof message === 'string' && /['"]oidc-provider['"]/.test(message)) {
      throw new Error(MISSING_PROVIDER, { cause: error });
    }
    throw error;
  }
}

/**
 * Starts an emulated Auth0 tenant on `host:port` (default: a random port on 127.0.0.1). Everything lives in
 * memory, with a new RS256 signing key at each start; {@link LocalAuth0.stop} drops it all.
 *
 * @throws TypeError for an invalid option, naming it (`"clients[0].redirectUris" must list at least one URL`).
 * @throws Error saying what to install when oidc-provider is not installed.
 *
 * @example
 * ```ts
 * const auth0 = await startLocalAuth0({
 *   clients: [{
 *     clientId: 'bff', clientSecret: 's3cret',
 *     redirectUris: ['http://127.0.0.1:3000/auth/callback'],
 *     backchannelLogoutUri: 'http://127.0.0.1:3000/auth/backchannel-logout',
 *   }],
 *   users: [{ username: 'alice', password: 'alice-pw', name: 'Alice' }],
 *   apis: [{ audience: 'https://api.example.com' }],
 *   accessTokenTtl: 30,
 * });
 * const bff = createBff({ issuer: auth0.issuer, clientId: 'bff', clientSecret: 's3cret', ... });
 * // later, end the Auth0 session as an administrator would, telling the BFF at once:
 * await auth0.admin.endSession({ sub: 'auth0|alice' }, { backchannel: true });
 * await auth0.stop();
 * ```
 */
export async function startLocalAuth0(options: LocalAuth0Options): Promise<LocalAuth0> {
  const resolved = resolveOptions(options);
  const { startEmulator } = await loadEmulator();
  return startEmulator(resolved);
}
