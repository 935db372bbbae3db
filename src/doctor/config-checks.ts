/**
 * The BFF's own configuration: the example's environment read by the example's own reader, the options it
 * makes checked by the library's own validation (so the doctor can never accept what `createBff` refuses), and
 * what follows from them that is valid but unwise (plain http, a cookie without Secure, a reused secret).
 */
import { readConfig, ExampleConfigError, type Auth0Config, type Env } from '../config/example-env.js';
import type { BffOptions } from '../config/options.js';
import { validateOptions, type BffConfig } from '../config/validate.js';
import { BffConfigError } from '../errors.js';
import { findingsOf, type Finding } from './finding.js';

const { ok, warn, fail } = findingsOf('configuration');

/** The environment variable behind each option the example sets from it. */
const VARIABLE_OF_OPTION: Readonly<Record<string, string>> = {
  issuer: 'ISSUER_URL',
  domain: 'AUTH0_DOMAIN',
  clientId: 'CLIENT_ID',
  clientSecret: 'CLIENT_SECRET',
  audience: 'AUDIENCE',
  baseURL: 'BASE_URL',
  'session.secrets': 'SESSION_SECRET',
};

const FIX_OF_VARIABLE: Readonly<Record<string, string>> = {
  ISSUER_URL: 'Set ISSUER_URL to your tenant, e.g. https://TENANT.us.auth0.com/ (or AUTH0_DOMAIN=TENANT.us.auth0.com, not both).',
  AUTH0_DOMAIN: 'Set AUTH0_DOMAIN to the tenant\'s host name only, e.g. TENANT.us.auth0.com (or ISSUER_URL, not both).',
  CLIENT_ID: 'Copy the Client ID from Dashboard > Applications > Applications > your Regular Web Application > Settings.',
  CLIENT_SECRET: 'Copy the Client Secret from Dashboard > Applications > Applications > your Regular Web Application > Settings.',
  AUDIENCE: 'Set AUDIENCE to the Identifier of your API (Dashboard > Applications > APIs), e.g. https://api.example.com.',
  BASE_URL: 'Set BASE_URL to the origin your users open, e.g. https://app.example.com (plain http only for localhost).',
  SESSION_SECRET: 'Set SESSION_SECRET to a random string of 32+ characters, the same on every instance: openssl rand -base64 32',
  PORT: 'Set PORT to a port number between 0 and 65535, or leave it unset for 3000.',
  REDIS_URL: 'Set REDIS_URL to a redis:// or rediss:// URL, or leave it unset for sessions in memory.',
  UPSTREAM_API_URL: 'Set UPSTREAM_API_URL to the absolute https URL of your API, or leave it unset for the bundled example API.',
};

const SEE_README = 'See the variable table in the README ("Run the example against your Auth0 tenant").';

/**
 * Reads the example's variables with the example's own reader: one failing finding per problem, each naming its
 * variable, or the tenant configuration. Demo mode (no ISSUER_URL) has no tenant to check.
 */
export function checkEnvironment(env: Env): { findings: Finding[]; config?: Auth0Config } {
  let config;
  try {
    config = readConfig(env);
  } catch (error) {
    if (!(error instanceof ExampleConfigError)) throw error;
    return {
      findings: error.problems.map((problem) => {
        const variable = /^[A-Z0-9_]+/.exec(problem)?.[0] ?? 'environment';
        return fail(`env.${variable}`, problem, { fix: FIX_OF_VARIABLE[variable] ?? SEE_README });
      }),
    };
  }
  if (config.mode === 'demo') {
    return {
      findings: [
        fail('env.ISSUER_URL', 'ISSUER_URL (or AUTH0_DOMAIN) is not set: there is no tenant to check', {
          detail: 'Without it the example runs in demo mode, against its own local Auth0 emulator.',
          fix: `Run the doctor with the environment of your deployment: ISSUER_URL, CLIENT_ID, CLIENT_SECRET, AUDIENCE, BASE_URL, SESSION_SECRET. ${SEE_README}`,
        }),
      ],
    };
  }
  return { findings: [], config };
}

/**
 * Validates `options` as `createBff` would. `fromEnvironment`: name the environment variable in the fix rather
 * than the option.
 */
export function checkOptions(options: BffOptions, fromEnvironment: boolean): { finding: Finding; config?: BffConfig } {
  try {
    const config = validateOptions(options);
    return { finding: ok('config.options', fromEnvironment ? 'createBff accepts the settings of the environment' : 'createBff accepts the options'), config };
  } catch (error) {
    if (!(error instanceof BffConfigError)) throw error;
    const variable = fromEnvironment ? VARIABLE_OF_OPTION[error.option] : undefined;
    return {
      finding: fail(`config.${error.option}`, `createBff refuses the option ${error.message}`, {
        fix: variable ? (FIX_OF_VARIABLE[variable] ?? SEE_README) : `Change the option "${error.option}" as the message says.`,
      }),
    };
  }
}

/** What the validated configuration implies: the public URL, the cookie, the scope, the session secret. */
export function checkConfiguration(config: BffConfig, context: { fromEnvironment: boolean; baseUrlGiven: boolean; clientSecret: string | undefined }): Finding[] {
  return [checkBaseUrl(config, context), checkCookie(config), checkScope(config), checkSessionSecret(config, context.clientSecret)];
}

function checkBaseUrl(config: BffConfig, context: { fromEnvironment: boolean; baseUrlGiven: boolean }): Finding {
  const origin = config.baseURL.origin;
  if (config.baseURL.protocol === 'https:') return ok('config.base-url', `Public URL ${origin}`);
  const unset = context.fromEnvironment && !context.baseUrlGiven;
  return warn('config.base-url', unset ? `BASE_URL is not set: the BFF assumes ${origin}` : `Public URL ${origin} is plain http`, {
    detail: 'Plain http is accepted on loopback only, for development: the session cookie is not Secure, and Auth0 refuses a back-channel logout URI that is not public https.',
    fix: context.fromEnvironment
      ? 'In production set BASE_URL to the https origin your users open, e.g. https://app.example.com.'
      : 'In production set baseURL to the https origin your users open.',
  });
}

function checkCookie(config: BffConfig): Finding {
  const { cookieName, secure, sameSite, domain } = config.session;
  if (config.session.external) return ok('config.cookie', 'Session cookie: set by your own express-session (session.external)');
  const flags = `${secure ? 'Secure; ' : ''}HttpOnly; SameSite=${sameSite === 'lax' ? 'Lax' : 'Strict'}${domain ? `; Domain=${domain}` : ''}`;
  const title = `Session cookie ${cookieName}: ${flags}`;
  if (config.baseURL.protocol === 'https:' && !secure) {
    return warn('config.cookie', title, {
      detail: 'The public URL is https, but the cookie is not Secure: a browser would also send it over plain http.',
      fix: 'Remove session.cookie.secure: false (it defaults to true on https).',
    });
  }
  if (config.baseURL.protocol === 'https:' && !cookieName.startsWith('__Host-') && domain === undefined) {
    return warn('config.cookie', title, {
      detail: 'Without the __Host- prefix, a sibling subdomain could set a cookie of that name for this site.',
      fix: 'Leave session.cookieName unset (default __Host-bff on https), or give it the __Host- prefix.',
    });
  }
  return ok('config.cookie', title);
}

function checkScope(config: BffConfig): Finding {
  // validateOptions refuses offline_access (Auth0 refuses it together with online_access); this names what is asked.
  return ok('config.scope', `Scope asked at login: ${config.scope}`, {
    detail: 'online_access gives the Online Refresh Token; offline_access is never asked with it.',
  });
}

function checkSessionSecret(config: BffConfig, clientSecret: string | undefined): Finding {
  const secrets = config.session.secrets;
  if (secrets.length === 0) return ok('config.session-secret', 'Session secret: none needed (session.external)');
  const lengths = secrets.map((s) => s.length).join(', ');
  if (clientSecret !== undefined && secrets.includes(clientSecret)) {
    return warn('config.session-secret', 'The session secret is the client secret', {
      detail: 'Anyone who learns one of them learns both; rotating the client secret would log everybody out.',
      fix: 'Use a separate random session secret: openssl rand -base64 32',
    });
  }
  // A long secret made of few characters ("aaaa...", "0123456789...") is a placeholder, not a random string.
  if (secrets.some((s) => new Set(s).size < 10)) {
    return warn('config.session-secret', 'A session secret looks like a placeholder: it uses fewer than 10 different characters', {
      fix: 'Use a random secret: openssl rand -base64 32',
    });
  }
  return ok('config.session-secret', `Session secret: ${secrets.length === 1 ? `${lengths} characters` : `${secrets.length} secrets of ${lengths} characters`}`);
}
