/**
 * The soak's upstream API: it checks every access token the strictest way an API can, like the example API but
 * with no clock tolerance at all: RS256 through the issuer's JWKS, `iss`, `aud`, and `exp` compared with its own
 * clock to the millisecond. It answers GETs and POSTs (draining the body) and counts what it accepted and refused.
 * Env: PORT, ISSUER_URL, AUDIENCE. `GET /__soak/stats` answers the counts.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const issuer = env('ISSUER_URL');
const audience = env('AUDIENCE');
const keys = createRemoteJWKSet(new URL('.well-known/jwks.json', issuer));

const stats = { accepted: 0, acceptedByMethod: {} as Record<string, number>, expired: 0, invalid: 0, missing: 0, latestExpiredByMs: 0 };

async function verdict(req: IncomingMessage): Promise<'ok' | 'expired' | 'invalid' | 'missing'> {
  const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
  if (token === undefined) return 'missing';
  let exp: number | undefined;
  try {
    ({ payload: { exp } } = await jwtVerify(token, keys, { issuer, audience, algorithms: ['RS256'], clockTolerance: 0 }));
  } catch (error) {
    return (error as { code?: string }).code === 'ERR_JWT_EXPIRED' ? 'expired' : 'invalid';
  }
  // jose compares whole seconds; compare milliseconds, after the (asynchronous) verification.
  const late = Date.now() - (exp ?? 0) * 1000;
  if (late >= 0) {
    stats.latestExpiredByMs = Math.max(stats.latestExpiredByMs, late);
    return 'expired';
  }
  return 'ok';
}

function answer(res: ServerResponse, status: number, body: object, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...extra });
  res.end(text);
}

const server = createServer((req, res) => {
  if (req.url === '/__soak/stats') return answer(res, 200, stats);
  req.resume();
  req.once('end', () => {
    verdict(req).then((result) => {
      if (result === 'ok') {
        stats.accepted++;
        stats.acceptedByMethod[req.method ?? ''] = (stats.acceptedByMethod[req.method ?? ''] ?? 0) + 1;
        return answer(res, 200, { ok: true, method: req.method });
      }
      stats[result]++;
      answer(res, 401, { error: 'invalid_token', error_description: result }, { 'www-authenticate': `Bearer error="invalid_token", error_description="${result}"` });
    }, () => answer(res, 500, { error: 'server_error' }));
  });
});
// Idle connections from the BFF close after a second, as the soak's heap measures assume (see run-soak.ts).
server.keepAliveTimeout = 1_000;
server.listen(Number(env('PORT')), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
