/**
 * The example API: a resource server as Auth0 describes it. It trusts nothing but the access token: a JWT signed
 * by the issuer (RS256, keys from the issuer's JWKS), for this API's audience, not expired. It never sees a cookie;
 * the BFF attaches the token. With `dpop` on it takes only DPoP-bound tokens, each call with a proof of the key
 * (./dpop.ts): a token copied out of the BFF is of no use without that key.
 */
import { STATUS_CODES, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import { WebSocketServer, type WebSocket } from 'ws';
import { DPoPCheck, DPoPRefusal, PROOF_ALGORITHMS, type DPoPCheckOptions } from './dpop.js';

export interface ExampleApiOptions {
  /** The issuer the tokens must name in `iss`, e.g. `https://TENANT.us.auth0.com/`. */
  issuer: string;
  /** The API identifier the tokens must name in `aud`. */
  audience: string;
  /** Default `<issuer>.well-known/jwks.json` (Auth0's location). */
  jwksUri?: string;
  /** Default 0: a free port. */
  port?: number;
  /** Default `127.0.0.1`: only the BFF on this machine calls it. */
  host?: string;
  /** Milliseconds between two ticks of the live feed. Default 1,000. */
  liveIntervalMs?: number;
  /** Take only DPoP-bound tokens, with a valid proof per call (`true`, or with options such as nonces). Default off: Bearer. */
  dpop?: boolean | DPoPCheckOptions;
}

export interface ExampleApi {
  url: string;
  /** With `dpop`: its checks (to rotate the nonce, to count nonce challenges). */
  dpop?: DPoPCheck;
  close(): Promise<void>;
}

/** What the WebSocket at `/live` sends: a greeting, then a tick every `liveIntervalMs`. */
export interface ExampleLiveMessage {
  type: 'hello' | 'tick';
  sub: string;
  /** How many ticks this socket has sent. */
  n: number;
  /** ISO time the message was sent. */
  at: string;
}

/** What `GET /data` answers. */
export interface ExampleApiData {
  message: string;
  sub: string;
  scope: string;
  /** Epoch seconds: when the access token was issued (a new value means the BFF exchanged its ORT). */
  tokenIssuedAt: number | null;
  /** Epoch seconds: when the access token expires. */
  tokenExpiresAt: number | null;
  /** ISO time of this request. */
  receivedAt: string;
}

const CREDENTIALS = /^(Bearer|DPoP) ([A-Za-z0-9\-._~+/]+=*)$/i;
/** jose errors that mean "the keys could not be fetched", not "the token is bad". */
const KEY_SET_UNAVAILABLE = new Set(['ERR_JWKS_TIMEOUT', 'ERR_JOSE_GENERIC']);

/**
 * Starts the example API on loopback. `GET /data` answers JSON about the caller; a WebSocket to `/live` (through
 * the BFF: `/api/live`) sends a tick every second; anything else is 404. Both need a valid access token.
 *
 * @example
 * ```ts
 * const api = await startExampleApi({ issuer: 'https://TENANT.us.auth0.com/', audience: 'https://api.example.com' });
 * // GET `${api.url}/data` with `Authorization: Bearer <access token>`
 * await api.close();
 * ```
 */
export async function startExampleApi(options: ExampleApiOptions): Promise<ExampleApi> {
  const jwksUri = new URL(options.jwksUri ?? new URL('.well-known/jwks.json', options.issuer).href);
  const keys = createRemoteJWKSet(jwksUri, { timeoutDuration: 5_000 });
  // Made once the server listens: the proofs name its URL.
  let dpop: DPoPCheck | undefined;

  async function verify(token: string): Promise<JWTPayload> {
    const { payload } = await jwtVerify(token, keys, {
      issuer: options.issuer,
      audience: options.audience,
      algorithms: ['RS256'],
    });
    return payload;
  }

  /**
   * The caller's claims, or the error answer to give (RFC 6750 3.1; RFC 9449 7.1 with DPoP). `headers` go with
   * either: a DPoP nonce, the challenge.
   */
  async function authenticate(req: IncomingMessage): Promise<{ claims: JWTPayload; headers: Record<string, string> } | { status: number; headers: Record<string, string>; body: object }> {
    const scheme = dpop ? 'DPoP' : 'Bearer';
    // RFC 9449 8: any answer may give the client the nonce to use next.
    const headers: Record<string, string> = dpop?.currentNonce ? { 'DPoP-Nonce': dpop.currentNonce } : {};
    const match = CREDENTIALS.exec(req.headers.authorization ?? '');
    if (!match) {
      // A request without credentials gets the challenge, but no error code.
      headers['WWW-Authenticate'] = dpop ? `DPoP algs="${PROOF_ALGORITHMS.join(' ')}"` : 'Bearer';
      return { status: 401, headers, body: { error: 'unauthorized', error_description: `An access token is required (Authorization: ${scheme}).` } };
    }
    const token = match[2] as string;
    let claims: JWTPayload;
    try {
      claims = await verify(token);
    } catch (error) {
      if (error instanceof errors.JOSEError && !KEY_SET_UNAVAILABLE.has(error.code)) {
        // The BFF renews the token and retries once when it sees invalid_token.
        headers['WWW-Authenticate'] = `${scheme} error="invalid_token"`;
        return { status: 401, headers, body: { error: 'invalid_token', error_description: 'The access token is not valid for this API.' } };
      }
      return { status: 503, headers, body: { error: 'temporarily_unavailable', error_description: 'The issuer\'s signing keys could not be loaded.' } };
    }
    if (!dpop) return { claims, headers };
    try {
      // RFC 9449 7.2: a bound token sent as a Bearer token is refused like any other call without a proof.
      if (match[1]!.toLowerCase() !== 'dpop') throw new DPoPRefusal('invalid_token', 'This API takes DPoP-bound tokens only (Authorization: DPoP).');
      await dpop.verify(req, token, claims);
      return { claims, headers };
    } catch (error) {
      if (!(error instanceof DPoPRefusal)) throw error;
      headers['WWW-Authenticate'] = `DPoP error="${error.error}", error_description="${error.message}", algs="${PROOF_ALGORITHMS.join(' ')}"`;
      return { status: 401, headers, body: { error: error.error, error_description: error.message } };
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://api.invalid').pathname;
    if (path !== '/data') return send(res, 404, { error: 'not_found', error_description: `No route ${path}.` });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, { error: 'method_not_allowed', error_description: 'Use GET.' });
    }

    const auth = await authenticate(req);
    for (const [name, value] of Object.entries(auth.headers)) res.setHeader(name, value);
    if (!('claims' in auth)) return send(res, auth.status, auth.body);
    const { claims } = auth;

    const data: ExampleApiData = {
      message: 'Hello from the example API. This answer needed a valid access token, which your browser never saw.',
      sub: String(claims.sub),
      scope: typeof claims.scope === 'string' ? claims.scope : '',
      tokenIssuedAt: claims.iat ?? null,
      tokenExpiresAt: claims.exp ?? null,
      receivedAt: new Date().toISOString(),
    };
    send(res, 200, data);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => send(res, 500, { error: 'server_error', error_description: 'Unexpected failure.' }));
  });
  const live = new WebSocketServer({ noServer: true });
  const liveIntervalMs = options.liveIntervalMs ?? 1_000;
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const path = new URL(req.url ?? '/', 'http://api.invalid').pathname;
    if (path !== '/live') return refuseUpgrade(socket, 404, {}, { error: 'not_found', error_description: `No WebSocket at ${path}.` });
    authenticate(req).then((auth) => {
      if (!('claims' in auth)) return refuseUpgrade(socket, auth.status, auth.headers, auth.body);
      live.handleUpgrade(req, socket, head, (ws) => liveFeed(ws, String(auth.claims.sub), liveIntervalMs));
    }, () => refuseUpgrade(socket, 500, {}, { error: 'server_error', error_description: 'Unexpected failure.' }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  const url = `http://${host}:${port}`;
  // htu names the URL the BFF called: this server's own origin.
  dpop = options.dpop ? new DPoPCheck(url, options.dpop === true ? {} : options.dpop) : undefined;
  return {
    url,
    ...(dpop ? { dpop } : {}),
    close: () => {
      for (const ws of live.clients) ws.terminate();
      live.close();
      return closeServer(server);
    },
  };
}

/** The live feed of one socket: a greeting, then a tick every interval, until either side closes. */
function liveFeed(ws: WebSocket, sub: string, intervalMs: number): void {
  let n = 0;
  const message = (type: ExampleLiveMessage['type']): string => JSON.stringify({ type, sub, n, at: new Date().toISOString() } satisfies ExampleLiveMessage);
  ws.send(message('hello'));
  const timer = setInterval(() => {
    n++;
    ws.send(message('tick'));
  }, intervalMs);
  ws.on('close', () => clearInterval(timer));
  ws.on('error', () => ws.terminate());
}

function refuseUpgrade(socket: Duplex, status: number, headers: Record<string, string>, body: object): void {
  const text = JSON.stringify(body);
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n${extra}Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
}

function send(res: ServerResponse, status: number, body: object): void {
  if (res.headersSent) return void res.end();
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  res.end(JSON.stringify(body));
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
