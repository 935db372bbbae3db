import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Request } from 'express';
import type { BffConfig } from '../config/validate.js';
import type { DPoP } from '../dpop/dpop.js';
import type { UpstreamProofs } from '../dpop/upstream.js';
import { BffError, ErrorCode } from '../errors.js';
import { causeName, type Reporter } from '../events/reporter.js';
import { toBffError } from '../http/json-error.js';
import { originForm } from '../proxy/absolute-form.js';
import { appTrust, WRAPPED_TRUST, type TrustProxy } from '../proxy/client-address.js';
import { browserResponseHeaders, upstreamRequestHeaders } from '../proxy/headers.js';
import { targetPath } from '../proxy/target-path.js';
import type { AccessTokenEntry } from '../session/record.js';
import { sessionEnded, sessionRef, type Sessions } from '../session/sessions.js';
import type { ProxyTelemetry } from '../telemetry/proxy-call.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import type { TokenManager } from '../tokens/token-manager.js';
import { WebSocketCloseCode } from './close-codes.js';
import { closeFrame } from './frames.js';
import { checkOrigin } from './origin.js';
import { acceptOnlyToClose, switchingProtocols, writeJsonError } from './raw-response.js';
import type { Closable, SessionConnections, Tracked } from './registry.js';
import type { SessionWatch } from './session-watch.js';
import { Tunnel } from './tunnel.js';
import { openUpstream, type UpstreamAnswer, type UpstreamHandshake } from './upstream-handshake.js';

type Api = BffConfig['apis'][number];

const KEY = /^[A-Za-z0-9+/]{22}==$/;

/** What a handshake refused because the BFF is closing carries: no failure of the upstream's, nor one to report. */
const CLOSING = new Error('The BFF is closing');

/** A handshake that arrives, or would be completed, once the BFF is closing: try again (on another instance). */
const shuttingDown = (): BffError => new BffError(ErrorCode.UPSTREAM_UNAVAILABLE, 'The BFF is shutting down.', { cause: CLOSING });

/** Why a handshake the BFF closed before its tunnel existed is refused: its session ended, or the BFF is closing. */
const closedBefore = (closed: { readonly code: number }): BffError => (closed.code === WebSocketCloseCode.SESSION_ENDED ? sessionEnded() : shuttingDown());

/**
 * One browser WebSocket through the BFF, from the handshake on: registered with its session from the moment the
 * session is known, so that a session that ends during the handshake is not missed.
 */
class Connection implements Closable {
  tracked: Tracked | undefined;
  handshake: UpstreamHandshake | undefined;
  tunnel: Tunnel | undefined;
  /** The session's reference, once it is known: for what an operator reads of a failure. */
  sessionRef: string | undefined;
  /** Closed by the BFF before the tunnel existed (the session ended, the BFF is closing). */
  closedWith: { code: number; reason: string } | undefined;

  close(code: number, reason: string): void {
    if (this.tunnel) return this.tunnel.close(code, reason);
    this.closedWith ??= { code, reason };
    this.handshake?.abort();
  }
}

/**
 * WebSocket handshakes on the API mounts. In order: the request is a WebSocket handshake to a safe path (400), it
 * comes from an allowed Origin (403), it has a session (401); then the session's access token (an exchange when it
 * is expiring), and the handshake goes to the upstream with `Authorization: Bearer` and without cookies. The
 * upstream's 101 goes back to the browser and the two connections are joined (see Tunnel). Every refusal by the
 * BFF is an HTTP answer in its JSON error shape, before anything is upgraded; an upstream that cannot take the
 * handshake closes the browser's socket at once with 1014 (a script sees nothing of a refused handshake).
 */
export class UpgradeHandler {
  /** Every API, the longest mount first: the one a URL is under has the handshake, with or without WebSockets. */
  private readonly apis: readonly Api[];
  private readonly forwarded: { proto: string; host: string };
  /** With DPoP: the proofs of each API's handshakes. */
  private readonly proofs = new Map<Api, UpstreamProofs>();
  /** With OpenTelemetry: each API's client spans and metrics, as for its API calls. */
  private readonly calls = new Map<Api, ProxyTelemetry>();

  constructor(
    private readonly config: BffConfig,
    private readonly sessions: Sessions,
    private readonly tokens: TokenManager,
    private readonly connections: SessionConnections,
    private readonly watch: SessionWatch,
    dpop: DPoP | undefined,
    /** The app the BFF serves (once known), whose 'trust proxy' decides the X-Forwarded-For a handshake names. */
    private readonly servedApp: (req: IncomingMessage) => unknown,
    private readonly report: Reporter,
    telemetry: Telemetry,
  ) {
    // The longest mount first, as for API calls: a mount without WebSockets nested in one with them (`/api/billing`
    // under `/api`) still has its own URLs (and refuses them), else they would reach the outer API with its token.
    this.apis = [...config.apis].sort((a, b) => b.mount.length - a.mount.length);
    this.forwarded = { proto: config.baseURL.protocol.slice(0, -1), host: config.baseURL.host };
    const sockets = this.apis.filter((api) => api.websocket);
    if (dpop) for (const api of sockets) this.proofs.set(api, dpop.forUpstream(api.upstream));
    for (const api of sockets) {
      const calls = telemetry.proxy(api);
      if (calls !== undefined) this.calls.set(api, calls);
    }
  }

  /**
   * Takes the handshake when its URL is under an API mount (the longest that matches decides, and refuses it with
   * 400 when it has no WebSockets); false (socket untouched) otherwise.
   */
  readonly handle = (req: IncomingMessage, socket: Duplex, head: Buffer): boolean => {
    const target = req.url ?? '';
    // A target in absolute form (RFC 9112 3.2.2) is taken by its path, as API calls are.
    const url = target.charCodeAt(0) === 47 /* / */ ? target : originForm(target) ?? target;
    const api = this.apis.find((a) => url.startsWith(a.mount) && (url.length === a.mount.length || url[a.mount.length] === '/' || url[a.mount.length] === '?'));
    if (api === undefined) return false;
    req.url = url;
    // A handshake never goes through Express: unless the server made it with the app's prototype
    // (`serverOptions(app)`), it has no `req.app` to read 'trust proxy' from, so it is told the served app's.
    if ((req as { app?: unknown }).app === undefined) {
      const trust = appTrust(this.servedApp(req));
      if (trust !== undefined) (req as { [WRAPPED_TRUST]?: TrustProxy })[WRAPPED_TRUST] = trust;
    }
    // A browser that resets the connection mid-handshake must not take the process down.
    socket.on('error', () => socket.destroy());
    const connection = new Connection();
    this.open(api, req, socket, head, connection).catch((error: unknown) => {
      connection.tracked?.remove();
      connection.handshake?.abort();
      const failure = toBffError(error);
      // Reported as an API call's failure is: the event, the log line (an unexpected error by its class only), the
      // metric. Not a refusal because the BFF is closing (every deploy has some, as sockets reconnect): nobody
      // asked the upstream anything.
      if (failure.cause !== CLOSING) this.report.requestFailed(failure, { operation: 'websocket', api: api.mount, sessionRef: failure.status >= 500 ? connection.sessionRef : undefined });
      writeJsonError(socket, failure);
    });
    return true;
  };

  private async open(api: Api, req: IncomingMessage, socket: Duplex, head: Buffer, connection: Connection): Promise<void> {
    if (this.connections.closing) throw shuttingDown();
    const path = this.checkRequest(api, req);
    checkOrigin(req, this.config.websocket.allowedOrigins);
    // Only the Cookie header (or, with session.external, the app's req.session) is read.
    const session = await this.sessions.load(req as Request, api.audience);
    connection.sessionRef = sessionRef(session.id);
    connection.tracked = this.connections.track(session, api.audience, connection);
    if (connection.tracked === undefined) throw this.connections.closing ? shuttingDown() : sessionEnded();

    let entry = await this.tokens.accessToken(session, api);
    // The session may have ended while its token was renewed (or while the token at hand was served through a store
    // fault): no handshake goes out with the token of an ended session.
    if (connection.closedWith) throw closedBefore(connection.closedWith);
    let sent = 0;
    let answer = await this.upstream(api, req, path, entry, connection, sent++);
    // As for API calls: a DPoP nonce the upstream asks for is sent with the handshake repeated once.
    if (answer.kind === 'refused' && answer.nonceDemanded && entry.jkt !== undefined && !connection.closedWith) {
      answer = await this.upstream(api, req, path, entry, connection, sent++);
    }
    // As for API calls: a token the upstream rejects although it looked fresh is renewed once, and the handshake repeated.
    if (answer.kind === 'refused' && answer.invalidToken && this.tokens.mayForce(entry.token) && !connection.closedWith) {
      const rejected = entry.token;
      entry = await this.tokens.accessToken(session, api, { force: true, rejected });
      if (connection.closedWith) throw closedBefore(connection.closedWith);
      // The same token back: one a forced renewal gave a short while ago, which the upstream rejects too. Its refusal stands.
      if (entry.token !== rejected) answer = await this.upstream(api, req, path, entry, connection, sent++);
    }
    if (connection.closedWith) {
      if (answer.kind === 'upgraded') answer.socket.destroy();
      throw closedBefore(connection.closedWith);
    }
    if (socket.destroyed || socket.readableEnded) {
      // The browser left during the handshake. Its FIN counts: the 'end' a tunnel listens for has already passed.
      if (answer.kind === 'upgraded') answer.socket.destroy();
      socket.destroy();
      connection.tracked.remove();
      return;
    }
    if (answer.kind !== 'upgraded') return this.refuse(api, req, socket, answer, connection);
    this.join(api, socket, head, answer, connection, connection.tracked);
  }

  private checkRequest(api: Api, req: IncomingMessage): string {
    if (!api.websocket) throw new BffError(ErrorCode.INVALID_REQUEST, 'This API takes no WebSockets.');
    const key = req.headers['sec-websocket-key'];
    if (req.method !== 'GET' || req.headers.upgrade?.toLowerCase() !== 'websocket' || typeof key !== 'string' || !KEY.test(key) || req.headers['sec-websocket-version'] !== '13') {
      throw new BffError(ErrorCode.INVALID_REQUEST, 'This is not a WebSocket handshake (RFC 6455 4.1).');
    }
    const path = targetPath(api.upstream.pathname.replace(/\/+$/, ''), (req.url ?? '').slice(api.mount.length));
    if (path === undefined) throw new BffError(ErrorCode.INVALID_REQUEST, 'The API path is not allowed.');
    return path;
  }

  private async upstream(api: Api, req: IncomingMessage, path: string, entry: AccessTokenEntry, connection: Connection, resendCount: number): Promise<UpstreamAnswer> {
    // The browser's headers minus cookies, credentials and hop-by-hop ones (Sec-WebSocket-* and Origin pass on).
    const headers = upstreamRequestHeaders(req, entry, { ...this.forwarded, prefix: api.mount });
    headers.connection = 'Upgrade';
    headers.upgrade = 'websocket';
    // A bound token goes with a proof for the handshake's GET (htu: the upstream's http(s) URL).
    const proofs = entry.jkt === undefined ? undefined : this.proofs.get(api);
    proofs?.authorize(headers, 'GET', path, entry);
    // A client span of its own, whose context the upstream gets in place of any the browser sent.
    const call = this.calls.get(api)?.start('GET', path, headers, resendCount);
    connection.handshake = openUpstream(api.upstream, path, headers, api.timeoutMs);
    const answer = await connection.handshake.answer;
    if (answer.kind === 'upgraded') call?.end(101, undefined);
    else if (answer.kind === 'refused') call?.end(answer.status, undefined);
    else call?.end(0, connection.closedWith ? 'aborted' : causeName(upstreamFailure(answer)));
    const nonce = answer.kind === 'upgraded' ? answer.headers['dpop-nonce'] : answer.kind === 'refused' ? answer.dpopNonce : undefined;
    if (proofs !== undefined && typeof nonce === 'string') proofs.rememberNonce(nonce);
    return answer;
  }

  /** The upstream could not take the handshake: the browser gets an upgrade that closes at once with 1014 and why. */
  private refuse(api: Api, req: IncomingMessage, socket: Duplex, answer: Exclude<UpstreamAnswer, { kind: 'upgraded' }>, connection: Connection): void {
    connection.tracked?.remove();
    // An upstream that answers (with anything but 101) has answered, as an API call's 4xx or 5xx has.
    if (answer.kind === 'failed') this.report.upstreamFailed(upstreamFailure(answer), api.mount, connection.sessionRef);
    const reason = answer.kind === 'refused' ? `upstream_refused ${answer.status}` : answer.reason;
    const offered = req.headers['sec-websocket-protocol'];
    socket.write(acceptOnlyToClose(req.headers['sec-websocket-key'] as string, Array.isArray(offered) ? offered.join(',') : offered));
    socket.end(closeFrame(WebSocketCloseCode.UPSTREAM_FAILED, reason, false));
    setTimeout(() => socket.destroy(), 2_000).unref();
  }

  private join(api: Api, socket: Duplex, head: Buffer, answer: Extract<UpstreamAnswer, { kind: 'upgraded' }>, connection: Connection, tracked: Tracked): void {
    socket.write(switchingProtocols(browserResponseHeaders(answer.headers)));
    const tunnel = new Tunnel(socket, answer.socket, {
      onBrowserData: () => this.watch.activity(tracked.session),
      onClosed: () => tracked.remove(),
      onUpstreamBroke: (error) => this.report.upstreamFailed(upstreamFailure({ reason: 'upstream_unavailable', error }), api.mount, connection.sessionRef, true),
    }, this.config.websocket.pingIntervalMs, this.config.websocket.pingUpstream);
    connection.tunnel = tunnel;
    connection.handshake = undefined;
    tunnel.start(head, answer.head);
  }
}

/** What the upstream's failure to take a handshake (or to keep a tunnel) is, as an API call's would be. */
function upstreamFailure(answer: { readonly reason: 'upstream_unavailable' | 'upstream_timeout'; readonly error?: unknown }): BffError {
  return answer.reason === 'upstream_timeout'
    ? new BffError(ErrorCode.UPSTREAM_TIMEOUT, 'The API did not answer the WebSocket handshake in time.')
    : new BffError(ErrorCode.UPSTREAM_UNAVAILABLE, 'The API could not be reached.', answer.error === undefined ? undefined : { cause: answer.error });
}
