/**
 * The emulator's public types: what a test or a demo sees of a running emulator. They depend on nothing but each
 * other and the options' types, so that the package's declarations need neither oidc-provider nor its type definitions.
 */
import type { BackchannelLogoutInitiator } from './options.js';

/** A running emulator. */
export interface LocalAuth0 {
  /** The issuer, e.g. `http://127.0.0.1:54321/` (trailing slash, like Auth0's `https://TENANT/`). */
  issuer: string;
  /** What an Auth0 administrator, an Action or an outage could do to the tenant, and what the test can observe. */
  admin: LocalAuth0Admin;
  /** Closes the HTTP server and its connections; the emulator's state is dropped. */
  stop(): Promise<void>;
}

/** Control of a running emulator. Times are epoch seconds. */
export interface LocalAuth0Admin {
  /** Requests counted since the start or the last {@link LocalAuth0Admin.resetCounts}. */
  counts(): LocalAuth0Counts;
  /** Sets every count back to zero. */
  resetCounts(): void;
  /** The live Auth0 sessions (idle and absolute lifetimes measured with the `clock` option). */
  sessions(): LocalAuth0Session[];
  /**
   * Ends the matching sessions as an Auth0 administrator or an Action (`api.session.revoke`) would: their ORTs
   * die and SSO ends. With `backchannel: true` (default false) logout tokens are sent to the sessions'
   * applications subscribed to `initiator` (default `session-revoked`; every application with a back-channel
   * logout URI gets `rp-logout` and `idp-logout`, as on Auth0) and awaited. Resolves to the number of sessions
   * ended. Rejects with a `TypeError` for a `sid` or `sub` that is not a non-empty string, or a `backchannel` that is
   * not a boolean.
   */
  endSession(
    selector: { sid?: string; sub?: string },
    options?: { backchannel?: boolean; initiator?: BackchannelLogoutInitiator },
  ): Promise<number>;
  /**
   * Makes `/oauth/token` fail until {@link LocalAuth0Admin.reset} (or for `times` requests): `{ status: 503 }`,
   * `{ status: 429, retryAfter }` (with `Retry-After` and a `too_many_requests` body), `{ delayMs }` (the real
   * answer, late; `stop()` drops it) or any `{ status, body }` with a status from 200 to 599 (a 429 without
   * `retryAfter` must give its `body`). Throws a `TypeError` for any other mode, including a status with a delay.
   * Each request answered this way is counted by its status (`ok` for 200).
   */
  failTokenEndpoint(mode: TokenEndpointFailure, options?: { times?: number }): void;
  /** Clears the failure modes. */
  reset(): void;
  /**
   * Moves a user's `session_expiry` claim (epoch seconds; undefined: none), as an enterprise identity provider
   * whose session end changed would: the ID tokens issued from now on (at a login or an ORT exchange) carry it,
   * and it caps the user's Auth0 sessions.
   */
  setSessionExpiry(sub: string, sessionExpiry: number | undefined): void;
  /** The tokens issued and still usable (access tokens: all issued, until they expire), without their values. */
  tokens(): IssuedToken[];
  /** Every back-channel logout delivery attempted. */
  backchannelDeliveries(): BackchannelDelivery[];
  /** Signs `claims` as given with the tenant's RS256 key (header `{ alg, kid, ...header }`), e.g. to forge logout tokens. */
  sign(claims: object, header?: object): Promise<string>;
  /**
   * A bearer token for the Management API endpoints, with `scopes` (default `read:clients` and
   * `read:resource_servers`), as an administrator would copy from the Dashboard's API Explorer.
   */
  issueManagementToken(options?: { scopes?: ManagementScope[] }): string;
}

/** One session as listed by `admin.sessions()`; times are epoch seconds of the emulator's clock. */
export interface LocalAuth0Session {
  /** The Auth0 session id, the `sid` claim of its ID and logout tokens. */
  sid: string;
  /** The user logged in. */
  sub: string;
  /** The Client IDs of the applications that took part in the session. */
  clients: string[];
  /** When the user logged in. */
  createdAt: number;
  /** When the session ends without activity (each ORT exchange moves it forward). */
  idleExpiresAt: number;
  /** When the session ends whatever the activity. */
  expiresAt: number;
}

/** Counts of requests, as returned by `admin.counts()`. */
export interface LocalAuth0Counts {
  /** Token requests by `grant_type`, split by outcome (`ok` = HTTP 200). */
  token: Record<string, Record<'ok' | 'error', number>>;
  /** Revocation requests answered 200. */
  revocations: number;
  /** Back-channel logout tokens sent (answered or not). */
  backchannelSent: number;
  /** Requests to the logout endpoints (`/oidc/logout`, `/v2/logout`). */
  endSession: number;
}

/**
 * A failure mode for `/oauth/token`: a status (200 to 599), with an optional body, or a delay; never both,
 * which `failTokenEndpoint` refuses with a `TypeError`.
 */
export type TokenEndpointFailure =
  | {
      /** 503 with Auth0's `temporarily_unavailable` body. */
      status: 503;
      /** Not with a status. */
      delayMs?: never;
    }
  | {
      /** 429, as Auth0's rate limit answers. */
      status: 429;
      /** The `Retry-After` header, in seconds (with `X-RateLimit-*` headers to match). */
      retryAfter: number;
      /** The JSON body. Default: Auth0's `too_many_requests` body. */
      body?: object;
      /** Not with a status. */
      delayMs?: never;
    }
  | {
      /** Milliseconds to wait before giving the real answer. */
      delayMs: number;
      /** Not with a delay: the answer is the real one. */
      status?: never;
      /** Not with a delay. */
      retryAfter?: never;
      /** Not with a delay. */
      body?: never;
    }
  | {
      /** Any HTTP status from 200 to 599. A 429 needs `retryAfter` (above) or `body`. */
      status: number;
      /** The JSON body to answer with. Default: a `temporarily_unavailable` error. */
      body?: object;
      /** Not with a status. */
      delayMs?: never;
    };

/** An issued token, without its value, as listed by `admin.tokens()`. */
export interface IssuedToken {
  /** What sort of token it is. */
  kind: 'access_token' | 'refresh_token' | 'authorization_code';
  /** The application it was issued to. */
  clientId: string;
  /** The Auth0 session it belongs to, if any. */
  sid?: string;
  /** The user it was issued for. */
  sub: string;
  /** The API it is for (access tokens, and refresh tokens asked with an `audience`). */
  audience?: string;
  /** True for an Online Refresh Token (`online_access`), false for a classic one. */
  online?: boolean;
  /** Epoch seconds (real time: token expiry is checked by the real clock, like on Auth0). */
  expiresAt: number;
  /** Access tokens: epoch milliseconds when the emulator issued it. */
  issuedAt?: number;
  /** Never present: the admin handle does not reveal token values. */
  value?: never;
}

/** One attempted delivery, as listed by `admin.backchannelDeliveries()`. */
export interface BackchannelDelivery {
  /** The application the logout token was for. */
  clientId: string;
  /** Its Back-Channel Logout URI. */
  uri: string;
  /** The HTTP status answered by the client, or `'error'` when it could not be reached in time. */
  status: number | 'error';
  /** The Auth0 session that ended. */
  sid: string;
}

/** The scopes the emulated Management API knows. */
export type ManagementScope = 'read:clients' | 'read:client_keys' | 'read:resource_servers';
