import * as oidc from 'openid-client';
import { importJWK } from 'jose';
import type { BffConfig } from '../config/validate.js';
import type { DPoP } from '../dpop/dpop.js';
import { causeName } from '../events/reporter.js';

/** The parts of a token endpoint answer the BFF keeps. */
export interface TokenAnswer {
  readonly accessToken: string;
  readonly expiresIn: number;
  readonly refreshToken: string | undefined;
  readonly idToken: string | undefined;
  readonly scope: string | undefined;
  readonly claims: Record<string, unknown> | undefined;
  /** DPoP: the thumbprint of the key the access token is bound to; undefined for a Bearer token. */
  readonly jkt?: string | undefined;
}

/**
 * Auth0 through openid-client: discovery (loaded in the background, retried until it works), the authorization
 * URL, the code exchange, ORT exchanges, revocation and the end-session URL. Every request to Auth0 goes through
 * the configured fetch, bounded by a timeout (never the HTTP client's long default).
 */
export class IdpClient {
  private configuration: oidc.Configuration | undefined;
  private loading: Promise<oidc.Configuration> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** What the configuration of a single call is made from (see `within`), kept at discovery. */
  private callParts: { server: oidc.ServerMetadata; client: oidc.ClientMetadata; auth: oidc.ClientAuth } | undefined;
  /** With DPoP: openid-client's handle, made once the issuer is discovered. */
  private tokenOptions: oidc.DPoPOptions | undefined;

  constructor(
    private readonly config: BffConfig,
    private readonly dpop?: DPoP,
  ) {}

  /** Starts discovery; on failure it retries with backoff in the background until it works or close() is called. */
  start(): void {
    void this.ready().catch(() => {});
  }

  get isReady(): boolean {
    return this.configuration !== undefined;
  }

  /** The discovered configuration; a caller that finds it missing triggers a new attempt. */
  ready(): Promise<oidc.Configuration> {
    if (this.configuration) return Promise.resolve(this.configuration);
    this.loading ??= this.discover().then(
      (configuration) => {
        this.configuration = configuration;
        return configuration;
      },
      (error: unknown) => {
        this.loading = undefined;
        this.scheduleRetry(error);
        throw error;
      },
    );
    return this.loading;
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  private retryDelay = 500;
  private scheduleRetry(error: unknown): void {
    if (this.closed || this.retryTimer) return;
    this.config.logger.warn('Could not load the issuer metadata; retrying', { issuer: this.config.issuer.href, cause: discoveryCause(error), inMs: this.retryDelay });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.ready().catch(() => {});
    }, this.retryDelay);
    this.retryTimer.unref();
    this.retryDelay = Math.min(this.retryDelay * 2, 30_000);
  }

  private async discover(): Promise<oidc.Configuration> {
    const { config } = this;
    const auth = config.clientAuth;
    let clientAuth: oidc.ClientAuth;
    if (auth.method === 'private_key_jwt') {
      const key = isCryptoKey(auth.key)
        ? auth.key
        : ((await importJWK(auth.key as Parameters<typeof importJWK>[0], (auth.key as { alg?: string }).alg ?? 'RS256')) as CryptoKey);
      const kid = isCryptoKey(auth.key) ? undefined : (auth.key as { kid?: string }).kid;
      clientAuth = oidc.PrivateKeyJwt(kid ? { key, kid } : key);
    } else {
      clientAuth = auth.method === 'client_secret_basic' ? oidc.ClientSecretBasic(auth.secret) : oidc.ClientSecretPost(auth.secret);
    }
    const configuration = await oidc.discovery(config.issuer, config.clientId, undefined, clientAuth, {
      execute: config.issuer.protocol === 'http:' ? [oidc.allowInsecureRequests] : [],
      timeout: config.tokens.attemptTimeoutMs / 1000,
      [oidc.customFetch]: this.boundedFetch(config.tokens.attemptTimeoutMs),
    });
    // openid-client's own timeout (an AbortSignal.timeout per request) is off from here on: fetchWithin bounds
    // every request. (Discovery, once, cannot turn it off: it takes 0 as "time out at once".)
    configuration.timeout = 0;
    this.callParts = { server: configuration.serverMetadata(), client: configuration.clientMetadata(), auth: clientAuth };
    if (this.dpop) this.tokenOptions = await this.dpop.tokenRequestOptions(configuration);
    return configuration;
  }

  /** The configured fetch, each request given up after `timeoutMs`. */
  private boundedFetch(timeoutMs: number): oidc.CustomFetch {
    return (url, options) => fetchWithin(this.config.fetch, url, options as RequestInit, timeoutMs);
  }

  /**
   * The configured fetch for one call, every request of it given up by `until` (a performance.now() time): a call
   * may make more than one, as openid-client repeats a token request that Auth0 answered with `use_dpop_nonce`
   * (RFC 9449 section 8), and the repeat gets what is left of the call's time, not a whole timeout again.
   */
  private fetchUntil(until: number): oidc.CustomFetch {
    return (url, options) => fetchWithin(this.config.fetch, url, options as RequestInit, Math.max(1, until - performance.now()));
  }

  /**
   * The discovered configuration for one call that must end within `timeoutMs` (an exchange's remaining deadline):
   * a copy with a fetch of its own, so that calls at the same time keep their own limits.
   * Not an AsyncLocalStorage around the call: on Node 20 and 22 its first use turns promise hooks on in the whole
   * process for good, and every promise and await of the app costs more from then on (BENCHMARKS.md).
   */
  private async within(timeoutMs: number): Promise<oidc.Configuration> {
    const until = performance.now() + timeoutMs;
    // Discovery under way (a BFF started while Auth0 is slow) counts against the call's time, not on top of it.
    if (this.callParts === undefined) await readyWithin(this.ready(), timeoutMs);
    const { server, client, auth } = this.callParts!;
    // The constructor copies what it is given: the parts stay as discovery left them.
    const call = new oidc.Configuration(server, this.config.clientId, client, auth);
    if (this.config.issuer.protocol === 'http:') oidc.allowInsecureRequests(call);
    call[oidc.customFetch] = this.fetchUntil(until);
    call.timeout = 0;
    return call;
  }

  async authorizationUrl(parameters: Record<string, string>): Promise<URL> {
    return oidc.buildAuthorizationUrl(await this.ready(), parameters);
  }

  async exchangeCode(currentUrl: URL, checks: { codeVerifier: string; state: string; nonce: string }): Promise<TokenAnswer> {
    const response = await oidc.authorizationCodeGrant(await this.ready(), currentUrl, {
      pkceCodeVerifier: checks.codeVerifier,
      expectedState: checks.state,
      expectedNonce: checks.nonce,
      idTokenExpected: true,
    }, undefined, this.tokenOptions);
    return this.toAnswer(response, this.config.audience ?? '(default audience)');
  }

  /** One exchange attempt, given up after `timeoutMs` (a TimeoutError). */
  async refresh(refreshToken: string, parameters: Record<string, string>, timeoutMs: number): Promise<TokenAnswer> {
    const response = await oidc.refreshTokenGrant(await this.within(timeoutMs), refreshToken, parameters, this.tokenOptions);
    return this.toAnswer(response, parameters.audience ?? this.config.audience ?? '(default audience)');
  }

  /** One client-credentials grant attempt (the application's own token for an API), given up after `timeoutMs`. */
  async clientCredentials(parameters: Record<string, string>, timeoutMs: number): Promise<TokenAnswer> {
    const response = await oidc.clientCredentialsGrant(await this.within(timeoutMs), parameters, this.tokenOptions);
    return this.toAnswer(response, parameters.audience ?? this.config.audience ?? '(default audience)');
  }

  async revoke(refreshToken: string): Promise<void> {
    await oidc.tokenRevocation(await this.ready(), refreshToken, { token_type_hint: 'refresh_token' });
  }

  /** Auth0's RP-initiated logout URL, when the issuer advertises one. */
  endSessionUrl(parameters: Record<string, string>): URL | undefined {
    const configuration = this.configuration;
    if (!configuration?.serverMetadata().end_session_endpoint) return undefined;
    return oidc.buildEndSessionUrl(configuration, parameters);
  }

  get jwksUri(): string | undefined {
    return this.configuration?.serverMetadata().jwks_uri;
  }

  get issuer(): string | undefined {
    return this.configuration?.serverMetadata().issuer;
  }

  private toAnswer(response: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers, audience: string): TokenAnswer {
    const answer = toAnswer(response);
    if (this.dpop === undefined) return answer;
    // A DPoP token request may still get a Bearer token: Auth0 binds only for APIs with DPoP turned on.
    if (response.token_type !== 'dpop') {
      this.dpop.unboundToken(audience);
      return answer;
    }
    return { ...answer, jkt: this.dpop.thumbprint };
  }
}

/** Discovery, or a TimeoutError (a transient failure, as a request that ran out of time) after `timeoutMs`. */
async function readyWithin(ready: Promise<oidc.Configuration>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new DOMException('The issuer metadata did not load in time.', 'TimeoutError')), timeoutMs);
  });
  try {
    await Promise.race([ready, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** Answers without a body (a Response with one cannot be built for them). */
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

/**
 * One request to Auth0, bounded by `timeoutMs` from the request to the last byte of the answer, which is read
 * here (Auth0's answers are small JSON documents). The bound holds even for a configured fetch that ignores its
 * signal. The timer is cleared as soon as the answer is in: unlike AbortSignal.timeout, nothing of the request
 * (a timer, a signal, the DOMException made when it fires) outlives it by the whole timeout.
 */
export async function fetchWithin(fetchImpl: typeof fetch, url: string, init: RequestInit, timeoutMs: number): Promise<Response> {
  const controller = new AbortController();
  const timedOut = new Promise<never>((_resolve, reject) => {
    controller.signal.addEventListener('abort', () => reject(controller.signal.reason as Error), { once: true });
  });
  timedOut.catch(() => {});
  const timer = setTimeout(() => controller.abort(new DOMException('Auth0 did not answer in time.', 'TimeoutError')), Math.max(1, Math.ceil(timeoutMs)));
  try {
    const signal = init.signal ? AbortSignal.any([init.signal, controller.signal]) : controller.signal;
    const response = await Promise.race([fetchImpl(url, { ...init, signal }), timedOut]);
    const body = NULL_BODY_STATUS.has(response.status) ? null : await Promise.race([response.arrayBuffer(), timedOut]);
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  } finally {
    clearTimeout(timer);
  }
}

function toAnswer(response: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers): TokenAnswer {
  return {
    accessToken: response.access_token,
    // The lifetime as issued; the helper expiresIn() counts down from when the answer arrived.
    // Auth0 always sends it; without it, a minute rather than a token taken to never expire.
    expiresIn: typeof response.expires_in === 'number' ? response.expires_in : 60,
    refreshToken: response.refresh_token,
    idToken: response.id_token,
    scope: response.scope,
    claims: response.claims() as Record<string, unknown> | undefined,
  };
}

function isCryptoKey(key: unknown): key is CryptoKey {
  return typeof CryptoKey !== 'undefined' && key instanceof CryptoKey;
}

/**
 * Why discovery failed, by a code only (the document's text could carry anything): a connection's failure is a
 * `TypeError` whose cause has the system's code (`ECONNREFUSED`, `ENOTFOUND`), openid-client's refusal of the
 * document its own (`OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED` for another issuer's, ...).
 */
function discoveryCause(error: unknown): string {
  const nested = (error as { cause?: unknown } | undefined)?.cause;
  return error instanceof TypeError && nested instanceof Error ? causeName(nested) : causeName(error);
}
