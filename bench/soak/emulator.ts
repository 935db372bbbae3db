/**
 * The soak's Auth0: the local emulator in a process of its own, so that the exchanges it signs do not compete
 * with the load generator for one event loop. Env: ISSUER_PORT, PORT (of the admin routes), CLIENT_ID, CLIENT_SECRET,
 * REDIRECT_ORIGINS (comma-separated BFF origins), USERS (comma-separated usernames), PASSWORD, AUDIENCE,
 * ACCESS_TOKEN_TTL. The admin port answers `GET /counts`, `GET /sessions` (how many are live),
 * `POST /reset-counts`, and `POST /issued`: when each access token since the last call was issued (epoch ms), by
 * user (the emulator lists tokens until they expire: they are collected well before that).
 */
import { createServer } from 'node:http';
import { startLocalAuth0 } from '../../src/local-auth0/index.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const origins = env('REDIRECT_ORIGINS').split(',');
const auth0 = await startLocalAuth0({
  port: Number(env('ISSUER_PORT')),
  clients: [{
    clientId: env('CLIENT_ID'),
    clientSecret: env('CLIENT_SECRET'),
    redirectUris: origins.map((o) => `${o}/auth/callback`),
    postLogoutRedirectUris: origins.map((o) => `${o}/`),
  }],
  users: env('USERS').split(',').map((username) => ({ username, password: env('PASSWORD') })),
  apis: [{ audience: env('AUDIENCE') }],
  accessTokenTtl: Number(env('ACCESS_TOKEN_TTL')),
  logger: { warn: (message) => console.error('warn', message) },
});

const issued = new Map<string, number[]>();
/** Every token collected so far (a token stays listed until it expires: it is collected once). */
const seen = new Set<string>();
const collect = () => {
  for (const token of auth0.admin.tokens()) {
    if (token.kind !== 'access_token' || token.issuedAt === undefined) continue;
    const id = `${token.sub} ${token.issuedAt} ${token.expiresAt}`;
    if (seen.has(id)) continue;
    seen.add(id);
    const times = issued.get(token.sub) ?? [];
    times.push(token.issuedAt);
    issued.set(token.sub, times);
  }
};
setInterval(collect, 250).unref();

const admin = createServer((req, res) => {
  const send = (body: unknown) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (req.url === '/counts') return send(auth0.admin.counts());
  if (req.url === '/sessions') return send({ live: auth0.admin.sessions().length });
  if (req.url === '/issued' && req.method === 'POST') {
    collect();
    const all = Object.fromEntries([...issued].map(([sub, times]) => [sub, times.sort((a, b) => a - b)]));
    issued.clear();
    return send(all);
  }
  if (req.url === '/reset-counts' && req.method === 'POST') {
    auth0.admin.resetCounts();
    return send({ ok: true });
  }
  res.writeHead(404).end();
});
admin.listen(Number(env('PORT')), '127.0.0.1');
process.on('SIGTERM', () => void auth0.stop().finally(() => process.exit(0)));
