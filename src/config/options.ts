import type { webcrypto } from 'node:crypto';

import type { RedisClientType, RedisCluster, RedisSentinelType } from 'redis';
import type { Logger, LogLevel } from '../events/logger.js';
import type { TelemetryOptions } from '../telemetry/providers.js';
import type { DPoPOptions } from '../dpop/dpop-options.js';

/**
 * A node-redis v6 client, whatever its modules, scripts, RESP version and type mapping: `createClient()`,
 * `createCluster()` or `createSentinel()`. Connected by the app; the BFF never closes it.
 * The cluster is typed by its class: `RedisClusterType<any, ...>` refuses a `createCluster()` result held in a
 * variable (its `_handleAsk` parameter types do not line up with `any` modules).
 */
export type RedisClient =
  | RedisClientType<any, any, any, any, any>
  | RedisCluster<any, any, any, any, any>
  | RedisSentinelType<any, any, any, any, any>;

/**
 * Which access token the proxy attaches for an API:
 * - `user`: the logged-in user's; without a session the call gets 401 (the default);
 * - `user-or-none`: the user's when there is a session, none otherwise (public endpoints that personalise);
 * - `client`: the BFF application's own, from the client-credentials grant for the API's audience (anyone who can
 *   reach the BFF calls the API with it, logged in or not: grant the application no more than visitors may do);
 * - `user-or-client`: the user's when there is a session, the application's otherwise;
 * - `none`: no token at all (a plain proxy, with the same path checks and header hygiene).
 */
export type TokenPolicy = 'user' | 'user-or-none' | 'client' | 'user-or-client' | 'none';

/**
 * A private JSON Web Key (RFC 7517): `clientAssertionKey` for `private_key_jwt` (with the `kid` Auth0 knows it by),
 * and DPoP's `key`. The parameters are those of the key type (RSA: `n`, `e`, `d`, `p`, `q`, `dp`, `dq`, `qi`; EC and
 * OKP: `crv`, `x`, `y`, `d`); Node's, jose's and the DOM's JWK types all fit.
 */
export interface PrivateJwk {
  /** Key type: `RSA`, `EC` or `OKP` (Ed25519). */
  kty?: string;
  /** The key's id, sent as the assertion's `kid`. */
  kid?: string;
  /** The signing algorithm. Default `RS256`. */
  alg?: string;
  /** EC: the curve. */
  crv?: string;
  /** The private exponent (RSA) or private key (EC). */
  d?: string;
  /** RSA: the modulus. */
  n?: string;
  /** RSA: the public exponent. */
  e?: string;
  /** RSA: the first prime factor. */
  p?: string;
  /** RSA: the second prime factor. */
  q?: string;
  /** RSA: the first factor CRT exponent. */
  dp?: string;
  /** RSA: the second factor CRT exponent. */
  dq?: string;
  /** RSA: the first CRT coefficient. */
  qi?: string;
  /** EC: the x coordinate. */
  x?: string;
  /** EC: the y coordinate. */
  y?: string;
}

/** One backend API behind the proxy: `<mount>/<rest>?q` goes to `<upstream>/<rest>?q`. */
export interface ApiOptions {
  /** Mount path on the BFF, e.g. `/api`. */
  mount: string;
  /** Base URL of the upstream API, e.g. `http://127.0.0.1:4000/v1`. */
  upstream: string;
  /** Auth0 API identifier for this API's access tokens. Default: the BFF's `audience`. */
  audience?: string;
  /**
   * Scopes to ask for: when exchanging the ORT for this API's token (may only narrow what login granted), and in
   * the client-credentials grant (permissions the application was granted for the API).
   */
  scope?: string;
  /** Which token the upstream gets: `user` (default), `user-or-none`, `client`, `user-or-client` or `none`. See {@link TokenPolicy}. */
  token?: TokenPolicy;
  /** Milliseconds to wait for the upstream's response headers, then 504. Default 30,000. */
  timeout?: number;
  /**
   * Milliseconds the upstream may stay silent between two chunks of a response body before the response is broken
   * off; 0 for no limit. Default 300,000 (or `timeout`, when that is longer). Event streams have their own limit:
   * `eventStreamTimeout`.
   */
  bodyTimeout?: number;
  /**
   * The same for event streams (requests that accept `text/event-stream`, as `EventSource` sends): 0, the default,
   * for no limit. A stream still ends when the browser leaves or the session ends.
   */
  eventStreamTimeout?: number;
  /**
   * Whether WebSocket handshakes under this mount are forwarded (see `bff.handleUpgrade`). Default true for the
   * `user` token policy; APIs with another policy take none (true is refused for them).
   */
  websocket?: boolean;
  /**
   * The anti-forgery header on calls to this API: `always` (default) on every call; `unsafe-methods` lets GET,
   * HEAD and OPTIONS through without it, for an API whose reads change nothing and that a browser reaches without
   * custom headers: a native `EventSource`, a download link, an `<img>`. Other methods are still checked.
   */
  csrf?: 'always' | 'unsafe-methods';
  /**
   * Connections to the upstream at most (HTTP/1.1: one call at a time on each), per BFF process. Default 128. Each
   * open event stream or long download holds one for as long as it lasts: an API that serves many of them needs
   * more, or a mount of its own, so that its other calls do not wait for a connection (then 504 at `timeout`).
   */
  connections?: number;
}

/**
 * Options of {@link createBff}. Validated once: a bad one throws a `BffConfigError` naming it.
 *
 * @example
 * ```ts
 * const options: BffOptions = {
 *   domain: 'TENANT.us.auth0.com',
 *   clientId: process.env.AUTH0_CLIENT_ID!,
 *   clientSecret: process.env.AUTH0_CLIENT_SECRET!,
 *   audience: 'https://api.example.com',
 *   baseURL: 'https://app.example.com',
 *   session: { secrets: [process.env.SESSION_SECRET!], encryptionKeys: [process.env.TOKEN_KEY!] },
 *   redis,
 *   apis: [{ mount: '/api', upstream: 'https://api.internal.example.com' }],
 * };
 * ```
 */
export interface BffOptions {
  /** Auth0 issuer URL, e.g. `https://TENANT.us.auth0.com/`. Plain http only for loopback hosts. */
  issuer?: string;
  /** Shorthand for `issuer`: `TENANT.us.auth0.com`. */
  domain?: string;
  /** The Auth0 application's Client ID (a Regular Web Application). */
  clientId: string;
  /** The application's Client Secret; required for `client_secret_post` and `client_secret_basic`. */
  clientSecret?: string;
  /** How the BFF authenticates to Auth0. Default `client_secret_post` with a secret. */
  clientAuthMethod?: 'client_secret_post' | 'client_secret_basic' | 'private_key_jwt';
  /** The private key (a `CryptoKey` or a private JWK object) for `private_key_jwt`. */
  clientAssertionKey?: webcrypto.CryptoKey | PrivateJwk;
  /** The Auth0 API identifier whose access tokens the proxy attaches. */
  audience?: string;
  /** The BFF's public URL, e.g. `https://app.example.com`. The callback is `<baseURL><routes.callback>`. */
  baseURL: string;
  /** Extra scopes; `openid` and `online_access` are always requested; `offline_access` is refused. Default `profile email`. */
  scope?: string | string[];
  /**
   * Route paths; `false` turns a route off. `sessions` (off by default; `true` is `/auth/sessions`) lets the SPA list
   * the user's sessions and end the others.
   */
  routes?: Partial<Record<'login' | 'callback' | 'user' | 'logout' | 'backchannelLogout' | 'healthz', string | false>> & {
    /** The routes that list and end the user's own sessions: off unless set; `true` is `/auth/sessions`. */
    sessions?: string | boolean;
  };
  /** A connected node-redis client (`createClient()`, `createCluster()` or `createSentinel()`): sessions in Redis through connect-redis, and Redis-backed coordination across processes. Omit for memory (one process only). */
  redis?: RedisClient;
  /** Prefix of every Redis key the BFF writes. Default `bff:`. */
  redisPrefix?: string;
  /** Milliseconds one Redis command may take before the request gets 503 session_store_unavailable. Default 2,000. */
  redisCommandTimeout?: number;
  /** The session: cookie, lifetimes, and where it lives. */
  session?: {
    /** Secrets that sign the session cookie; the first signs, all verify (rotation). Required unless `external`. */
    secrets?: string | string[];
    /** Cookie name. Default `__Host-bff` on https, `bff` on http. */
    cookieName?: string;
    /** Attributes of the session cookie. It is always HttpOnly, with `Path=/`. */
    cookie?: {
      /** Default `lax`. */
      sameSite?: 'lax' | 'strict';
      /** Default: `true` when `baseURL` is https. */
      secure?: boolean;
      /** The cookie's Domain. Default none (host-only; required for the `__Host-` prefix). */
      domain?: string;
    };
    /** Seconds without activity after which the session ends. Default 3 days (Auth0's default). */
    idleTimeout?: number;
    /** Seconds after login after which the session ends, whatever the activity. Default 7 days. */
    absoluteTimeout?: number;
    /**
     * `true` when the app already runs express-session before the BFF's router (its own store and cookie).
     * The BFF then uses `req.session`/`req.sessionID` and keeps its token records in `redis` (or memory).
     */
    external?: boolean;
    /** 32-byte keys (base64 or hex, or any passphrase of 32+ chars) that encrypt tokens at rest: the first encrypts, all decrypt. */
    encryptionKeys?: string | string[];
  };
  /** The APIs behind the proxy. */
  apis?: ApiOptions[];
  /**
   * WebSockets through the API mounts (`bff.handleUpgrade` / `bff.attach`). Browsers cannot add headers to a
   * handshake, so instead of the anti-forgery header it must come from an allowed `Origin`.
   */
  websocket?: {
    /** Origins (`https://app.example.com`) a handshake may come from. Default: only `baseURL`'s origin. */
    allowedOrigins?: string[];
    /**
     * Milliseconds a browser's socket may stay quiet (no message either way) before the BFF pings it; one that
     * answers nothing over another quiet interval vanished (asleep, off the network, without a FIN) and is closed,
     * upstream included (1001 `browser_gone`). Browsers answer pings by themselves. A socket the upstream keeps
     * sending to is left to TCP. The upstream's side is pinged the same way (see `pingUpstream`). Default 30000; at
     * least 100; 0: never, either side (a vanished browser's socket then stays open until its session's idle timeout).
     */
    pingInterval?: number;
    /**
     * Whether the upstream's side of a quiet socket is pinged too, every `pingInterval`: an upstream that answers
     * nothing over another quiet interval vanished (its host or network path gone, without a FIN) and is cut; the
     * browser gets 1014 `upstream_unavailable`. Default true. `false` for an upstream that answers pings only while
     * its application reads, and that reads nothing (a server that only pushes, on a library such as gorilla/websocket
     * without a read loop): it would be cut every few intervals.
     */
    pingUpstream?: boolean;
  };
  /** Anti-forgery header every proxied request must carry. Default `X-CSRF: 1`. */
  csrf?: {
    /** The header's name. Default `X-CSRF`. */
    header?: string;
    /** The value it must have. Default `1`. */
    value?: string;
  };
  /** Paths `returnTo` may name (prefixes; `/` allows every same-origin path). Default `['/']`. */
  allowedReturnTo?: string[];
  /** ID token claims `/auth/user` returns (besides `sub`). Default: all except protocol claims. */
  userClaims?: string[];
  /** What `/auth/logout` does after the BFF's own logout. */
  logout?: {
    /** Redirect to Auth0's /oidc/logout after the local logout. Default true. */
    idpLogout?: boolean;
    /** Where the browser lands after logout (a path). Default `/`. */
    returnTo?: string;
    /**
     * Send `id_token_hint` to the end-session endpoint, for identity providers that need it. Default false: Auth0
     * accepts `client_id` + `logout_hint` (the session id), so no ID token travels through the browser.
     */
    idTokenHint?: boolean;
  };
  /** When access tokens are renewed, and how long an exchange may take. */
  tokens?: {
    /**
     * Seconds before expiry at which a token is renewed, given its lifetime: time for a proxied call to reach the
     * API, and to renew early. Default min(60, 10% of the lifetime). Expiry is counted from when the token request
     * went out, minus a second for `exp`'s whole-second rounding.
     */
    refreshMargin?: (lifetimeSeconds: number) => number;
    /** Seconds an API's clock may run ahead of the BFF's: tokens are renewed that much earlier as well. Default 1. */
    clockSkew?: number;
    /** Milliseconds an API call may wait for an ORT exchange, retries included. Default 5,000. */
    exchangeDeadline?: number;
    /** Milliseconds one exchange attempt may take. Default 2,500. */
    attemptTimeout?: number;
  };
  /**
   * Sender-constrained tokens (DPoP, RFC 9449): token requests carry a proof made with this key, Auth0 binds the
   * access tokens to it, and every proxied call carries `Authorization: DPoP` and a fresh proof. Default: off
   * (Bearer tokens).
   */
  dpop?: DPoPOptions;
  /** Login parameters the browser may pass through `/auth/login?...`. Default prompt, screen_hint, organization, login_hint. */
  loginParameters?: string[];
  /** Accepted logout_token signing algorithms. Default RS256, RS384, RS512, PS256, ES256. */
  backchannelAlgorithms?: string[];
  /**
   * Where log lines go: `console`, pino, winston, bunyan or any `{ warn, error, info?, debug? }`. Default: stderr.
   * pino and bunyan are called `(details, message)`, the others `(message, details)`: details stay structured.
   */
  logger?: Logger;
  /**
   * The least severe level passed to the logger: `error`, `warn`, `info` or `debug` (what the BFF is doing: token
   * exchanges, single-flight joins and lock waits, why each session ended). Default: everything for a logger
   * with levels of its own (pino, winston, bunyan: its level decides), `info` for others (console).
   */
  logLevel?: LogLevel;
  /**
   * OpenTelemetry traces and metrics. Default: the global providers an OpenTelemetry SDK registers (start it
   * before `createBff()`); without an SDK nothing is recorded and nothing costs. `false` turns it off.
   */
  telemetry?: false | TelemetryOptions;
  /** Milliseconds since the epoch; injectable for tests. */
  clock?: () => number;
  /** fetch used for every request to Auth0; injectable for tests. */
  fetch?: typeof fetch;
}
