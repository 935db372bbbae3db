/**
 * The example API: a resource server as Auth0 describes it. It trusts nothing but the access token: a JWT signed
 * by the issuer (RS256, keys from the issuer's JWKS), for this API's audience, not expired. It never sees a cookie;
 * the BFF attaches the token.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';

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
}

export interface ExampleApi {
  url: string;
  close(): Promise<void>;
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

const BEARER = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i;
/** jose errors that mean "the keys could not be fetched", not "the token is bad". */
const KEY_SET_UNAVAILABLE = new Set(['ERR_JWKS_TIMEOUT', 'ERR_JOSE_GENERIC']);

/**
 * Starts the example API on loopback. `GET /data` answers JSON about the caller; anything else is 404.
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

  async function verify(token: string): Promise<JWTPayload> {
    const { payload } = await jwtVerify(token, keys, {
      issuer: options.issuer,
      audience: options.audience,
      algorithms: ['RS256'],
    });
    return payload;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://api.invalid').pathname;
    if (path !== '/data') return send(res, 404, { error: 'not_found', error_description: `No route ${path}.` });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, { error: 'method_not_allowed', error_description: 'Use GET.' });
    }

    const match = BEARER.exec(req.headers.authorization ?? '');
    if (!match) {
      // RFC 6750 3.1: a request without credentials gets the challenge, but no error code.
      res.setHeader('WWW-Authenticate', 'Bearer');
      return send(res, 401, { error: 'unauthorized', error_description: 'An access token is required (Authorization: Bearer).' });
    }
    let claims: JWTPayload;
    try {
      claims = await verify(match[1] as string);
    } catch (error) {
      if (error instanceof errors.JOSEError && !KEY_SET_UNAVAILABLE.has(error.code)) {
        // The BFF renews the token and retries once when it sees invalid_token.
        res.setHeader('WWW-Authenticate', 'Bearer error="invalid_token"');
        return send(res, 401, { error: 'invalid_token', error_description: 'The access token is not valid for this API.' });
      }
      return send(res, 503, { error: 'temporarily_unavailable', error_description: 'The issuer\'s signing keys could not be loaded.' });
    }

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
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}`,
    close: () => closeServer(server),
  };
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
