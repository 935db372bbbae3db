/**
 * `runDoctor`: checks a BFF's configuration and its Auth0 tenant before users hit it, and returns one finding per
 * thing checked, each with its fix. It never starts the BFF and changes nothing in the tenant: it reads the
 * discovery document, sends two grants that must fail, and reads the Management API when given a token.
 */
import { baseUrlOf, chooseClientAuthMethod, exampleBffOptions, type Auth0Config, type Env } from '../config/example-env.js';
import type { BffOptions } from '../config/options.js';
import type { BffConfig } from '../config/validate.js';
import { checkConfiguration, checkEnvironment, checkOptions } from './config-checks.js';
import { checkDPoPAlgorithm, checkDiscovery } from './discovery-checks.js';
import { SECTIONS, findingsOf, scrubSecrets, scrubberOf, summarize, type DoctorReport, type Finding } from './finding.js';
import type { DoctorHttp } from './http.js';
import { readTenant } from './management-client.js';
import { audiencesOf, checkApis, checkApplicationDPoP, checkClientUrls, checkGrantTypes, checkRefreshTokenPolicies, type SenderConstraining } from './tenant-checks.js';
import { probeClient, type ProbeResult } from './token-probes.js';

export type { DoctorReport, Finding, FindingStatus } from './finding.js';

/** What to check: the example's environment, or your own `createBff` options. */
export type DoctorInput = (
  | {
      /**
       * The environment variables of the example (ISSUER_URL or AUTH0_DOMAIN, CLIENT_ID, CLIENT_SECRET, AUDIENCE,
       * BASE_URL, SESSION_SECRET, ...) and AUTH0_MANAGEMENT_TOKEN: what `npx express-ort-bff doctor` checks.
       */
      env: Readonly<Record<string, string | undefined>>;
      /** Not with `env`. */
      options?: never;
    }
  | {
      /** The options your app gives `createBff`. */
      options: BffOptions;
      /** Not with `options`. */
      env?: never;
    }
) & {
  /** An Auth0 Management API token with read:clients and read:resource_servers. Default: AUTH0_MANAGEMENT_TOKEN of `env`. */
  managementToken?: string;
  /** Milliseconds one request to the tenant may take, at most 2,147,483,647 (about 24.8 days). Default 10,000. */
  timeout?: number;
  /** Warnings count as failures too (`ok` is false). Default false. */
  strict?: boolean;
  /** The fetch used for every request; injectable for tests. */
  fetch?: typeof fetch;
};

const SILENT = { warn() {}, error() {} };
/** The longest delay Node's timers keep: beyond it they fire at once (TimeoutOverflowWarning). */
const MAX_TIMEOUT_MS = 2_147_483_647;
/** The example's variables that hold a URL (or a host name), and so may carry a user name and password. */
const URL_VARIABLES = ['ISSUER_URL', 'AUTH0_DOMAIN', 'BASE_URL', 'AUDIENCE', 'UPSTREAM_API_URL', 'REDIS_URL', 'OTEL_EXPORTER_OTLP_ENDPOINT'];
const MANAGEMENT_TOKEN_FIX =
  'Set AUTH0_MANAGEMENT_TOKEN to a Management API token with read:clients and read:resource_servers (Dashboard > Applications > APIs > Auth0 Management API > API Explorer) to also check the API and the application settings.';

/**
 * Checks the configuration and the tenant.
 *
 * @example
 * ```ts
 * const report = await runDoctor({ env: process.env });
 * console.log(formatReport(report));
 * process.exitCode = report.ok ? 0 : 1;
 * ```
 */
export async function runDoctor(input: DoctorInput): Promise<DoctorReport> {
  if (input === null || typeof input !== 'object' || (input.env === undefined) === (input.options === undefined)) {
    throw new TypeError('runDoctor needs either "env" (environment variables) or "options" (createBff options)');
  }
  const timeoutMs = input.timeout ?? 10_000;
  // Checked here, not left to the BFF's validation of tokens.attemptTimeout (set from it), which would name an
  // option the caller never gave; and a timer longer than Node keeps would fire at once.
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || !(timeoutMs > 0) || timeoutMs > MAX_TIMEOUT_MS) {
    throw new TypeError(`"timeout" must be a finite number of milliseconds, more than 0 and at most ${MAX_TIMEOUT_MS} (got ${String(timeoutMs)})`);
  }
  const http: DoctorHttp = { fetch: input.fetch ?? globalThis.fetch, timeoutMs };
  const findings: Finding[] = [];

  const source = input.env === undefined ? fromOptions(input.options) : fromEnvironment(input.env);
  findings.push(...source.findings);
  // As from the environment: `managementToken: process.env.AUTH0_MANAGEMENT_TOKEN` may be empty or end in a newline.
  const managementToken = input.managementToken?.trim() || source.managementToken;
  const secrets: Confidential = { secrets: [...source.secrets, input.managementToken, managementToken], userNames: source.userNames };
  // The BFF's own validation and token client, quiet, on the doctor's fetch and timeout.
  const forDoctor = (options: BffOptions): BffOptions => ({
    ...options,
    logger: SILENT,
    fetch: http.fetch,
    tokens: { ...options.tokens, attemptTimeout: timeoutMs },
  });

  let config: BffConfig | undefined;
  if (source.options) {
    const checked = checkOptions(forDoctor(source.options), source.envConfig !== undefined);
    findings.push(checked.finding);
    config = checked.config;
  }
  if (!config) {
    findings.push(
      findingsOf('discovery').skip('doctor.tenant', 'The tenant was not checked: fix the configuration above first'),
    );
    return finish(findings, secrets, {}, input.strict === true);
  }

  const discovery = await checkDiscovery(config.issuer, http);
  findings.push(...discovery.findings);
  if (source.envConfig && source.options) {
    // The example picks the client authentication method from the discovery document: so does the doctor.
    config = checkOptions(forDoctor({ ...source.options, clientAuthMethod: chooseClientAuthMethod(discovery.metadata) }), true).config!;
  }
  findings.push(
    ...checkConfiguration(config, {
      fromEnvironment: source.envConfig !== undefined,
      baseUrlGiven: source.envConfig === undefined || source.envConfig.baseURL !== undefined,
      clientSecret: config.clientAuth.method === 'private_key_jwt' ? undefined : config.clientAuth.secret,
    }),
  );

  const target = { issuer: config.issuer.href, clientId: config.clientId, audiences: audiencesOf(config), baseURL: config.baseURL.origin };
  if (!discovery.metadata) {
    findings.push(findingsOf('client').skip('client.credentials', 'Credentials not checked: the BFF\'s client cannot use the discovery document, which could not be read'));
    return finish(findings, secrets, target, input.strict === true);
  }
  if (config.dpop) findings.push(checkDPoPAlgorithm(discovery.metadata, config.dpop.key.alg));
  const probe = await probeClient(config, discovery.metadata, { discoveryFailed: discovery.findings.some((f) => f.status === 'fail') });
  findings.push(...probe.findings);
  const tenantFindings = await checkTenant(config, discovery.metadata, probe, managementToken, http);
  findings.push(...tenantFindings);
  // One finding per misconfiguration: the application's setting, when read, or the key's algorithm, says it better
  // than the refused probe.
  const said = [...findings, ...tenantFindings].some((f) => (f.id === 'client.dpop' || f.id === 'discovery.dpop-algorithm') && f.status === 'fail');
  return finish(said ? findings.filter((f) => f.id !== 'client.dpop-proof') : findings, secrets, target, input.strict === true);
}

interface Source {
  findings: Finding[];
  options?: BffOptions;
  envConfig?: Auth0Config;
  managementToken?: string;
  secrets: Array<string | undefined>;
  /** The user names of the URLs given: not secrets, but not printed either. */
  userNames: string[];
}

/** What the report must not show (see scrubberOf). */
interface Confidential {
  secrets: Array<string | undefined>;
  userNames: string[];
}

/**
 * What of the example's environment no output may show: for the command line's own faults, which come before any
 * report (and its scrubbing) exists.
 */
// Typed as DoctorInput's env, not as Env: the package's declarations must not import config/example-env, whose
// JsonWebKey a consumer's tsc without the DOM lib cannot resolve (npm run check:consumers).
export function environmentScrubber(env: Readonly<Record<string, string | undefined>>): (text: string) => string {
  const { secrets, userNames } = confidentialIn(env);
  const managementToken = env.AUTH0_MANAGEMENT_TOKEN;
  return scrubberOf([...secrets, managementToken, managementToken?.trim()], userNames);
}

/** The secrets and URL user names of the example's environment (the management token aside). */
function confidentialIn(env: Readonly<Record<string, string | undefined>>): { secrets: Array<string | undefined>; userNames: string[] } {
  const credentials = URL_VARIABLES.map((name) => credentialsIn(env[name] ?? ''));
  return {
    secrets: [
      env.CLIENT_SECRET, env.SESSION_SECRET, env.CLIENT_SECRET?.trim(), env.SESSION_SECRET?.trim(),
      ...credentials.flatMap((c) => c.secrets),
    ],
    userNames: credentials.flatMap((c) => c.userNames),
  };
}

function fromEnvironment(env: Env): Source {
  const { findings, config } = checkEnvironment(env);
  const managementToken = env.AUTH0_MANAGEMENT_TOKEN?.trim() || undefined;
  const { secrets, userNames } = confidentialIn(env);
  if (!config) return { findings, secrets, userNames, ...(managementToken ? { managementToken } : {}) };
  const idp = { issuer: config.issuer, clientId: config.clientId, clientSecret: config.clientSecret, clientAuthMethod: chooseClientAuthMethod(undefined) };
  return {
    findings,
    options: exampleBffOptions(config, idp, baseUrlOf(config)),
    envConfig: config,
    secrets,
    userNames,
    ...(managementToken ? { managementToken } : {}),
  };
}

/**
 * The user name and password a URL carries (`scheme://user:pass@host`), as written and decoded, and as the URL
 * parser sees them: also of a URL that does not parse (a password with an unencoded `@`), since a message may quote
 * such a value too. A user name without a password (`https://TOKEN@host`) is often a token: a secret.
 */
function credentialsIn(variable: string): { secrets: string[]; userNames: string[] } {
  const value = variable.trim();
  const authority = value.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\//, '').split(/[/?#]/, 1)[0] ?? '';
  const at = authority.lastIndexOf('@');
  const userinfo = at < 0 ? '' : authority.slice(0, at);
  const colon = userinfo.indexOf(':');
  const url = URL.canParse(value) ? new URL(value) : undefined;
  const decoded = (part: string) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return part;
    }
  };
  const both = (parts: string[]) => parts.flatMap((part) => [part, decoded(part)]).filter(Boolean);
  if (colon < 0 && !url?.password) return { secrets: both([userinfo, url?.username ?? '']), userNames: [] };
  return {
    secrets: both([colon < 0 ? '' : userinfo.slice(colon + 1), url?.password ?? '']),
    userNames: both([colon < 0 ? userinfo : userinfo.slice(0, colon), url?.username ?? '']),
  };
}

function fromOptions(options: BffOptions): Source {
  const session = (options?.session ?? {}) as { secrets?: unknown; encryptionKeys?: unknown };
  const list = (value: unknown) => (typeof value === 'string' ? [value] : Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []);
  // The options' URLs may carry credentials as the environment's can; they are scrubbed alike.
  const apis = (Array.isArray(options?.apis) ? options.apis : []) as Array<{ audience?: unknown; upstream?: unknown }>;
  const urls = list([options?.issuer, options?.domain, options?.audience, options?.baseURL, ...apis.flatMap((api) => [api?.audience, api?.upstream])]);
  const credentials = urls.map(credentialsIn);
  return {
    findings: [],
    options,
    secrets: [options?.clientSecret, ...list(session.secrets), ...list(session.encryptionKeys), ...credentials.flatMap((c) => c.secrets)],
    userNames: credentials.flatMap((c) => c.userNames),
  };
}

/** The Management API's view of the API and the application, or the grant types as the probes saw them. */
async function checkTenant(
  config: BffConfig,
  metadata: Record<string, unknown>,
  probe: ProbeResult,
  managementToken: string | undefined,
  http: DoctorHttp,
): Promise<Finding[]> {
  const { skip, fail } = findingsOf('tenant');
  if (managementToken === undefined) {
    const grants = checkGrantTypes(undefined, probe.grants);
    return [
      ...(grants ? [grants] : []),
      skip('management.access', 'API and application settings not checked: no Management API token', { fix: MANAGEMENT_TOKEN_FIX }),
    ];
  }
  const audiences = audiencesOf(config);
  const jwksUri = typeof metadata.jwks_uri === 'string' ? metadata.jwks_uri : undefined;
  const data = await readTenant(config.issuer, managementToken, config.clientId, audiences, http, jwksUri);
  // What the Management API did not give is listed as not checked, check by check, never left out.
  const apisUnread = data.unread ?? 'the Management API did not give the API settings';
  const clientUnread = data.unread ?? (data.client === null ? 'the tenant has no such application' : 'the Management API did not give the application settings');
  const client = data.client ?? undefined;
  const hasKey = config.dpop !== undefined;
  const dpop: SenderConstraining = !hasKey ? 'off' : client?.require_proof_of_possession === true ? 'required' : 'on';
  const findings = [data.access, ...checkApis(audiences, data.resourceServers, apisUnread, dpop)];
  if (data.client === null) {
    findings.push(
      fail('client.exists', `The tenant has no application with the client id ${config.clientId}`, {
        fix: 'Set CLIENT_ID to the Client ID of your Regular Web Application (Dashboard > Applications > Applications).',
      }),
    );
  }
  findings.push(
    checkGrantTypes(data.client, probe.grants) ?? skip('client.grant-types', `Grant types not checked: ${clientUnread}, and the token endpoint told nothing`),
    ...checkApplicationDPoP(hasKey, client, clientUnread),
    ...checkRefreshTokenPolicies(config, client, clientUnread),
    ...checkClientUrls(config, client, typeof metadata.end_session_endpoint === 'string', clientUnread),
  );
  return findings;
}

function finish(findings: Finding[], confidential: Confidential, target: DoctorReport['target'], strict: boolean): DoctorReport {
  const order = Object.keys(SECTIONS);
  // A stable sort: the checks' own order within each section.
  const sorted = [...findings].sort((a, b) => order.indexOf(a.section) - order.indexOf(b.section));
  const clean = scrubSecrets(sorted, confidential.secrets, confidential.userNames);
  // The target is printed too, and holds the values given as they are (an AUDIENCE with a password).
  const scrub = scrubberOf(confidential.secrets, confidential.userNames);
  const cleanTarget = {
    ...(target.issuer === undefined ? {} : { issuer: scrub(target.issuer) }),
    ...(target.clientId === undefined ? {} : { clientId: scrub(target.clientId) }),
    ...(target.audiences === undefined ? {} : { audiences: target.audiences.map(scrub) }),
    ...(target.baseURL === undefined ? {} : { baseURL: scrub(target.baseURL) }),
  };
  return { ...summarize(clean, strict), target: cleanTarget, findings: clean };
}
