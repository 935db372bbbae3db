/**
 * At run time, from the packed package: an Express app with the BFF logs a user in through the local Auth0
 * emulator, and answers /auth/user. The launchers hand in the modules, loaded with `import` or `require()`.
 */
import { once } from 'node:events';
import { createRequire } from 'node:module';

const expressVersion = createRequire(import.meta.url)('express/package.json').version;

export async function logIn({ via, express, createBff, startLocalAuth0, scriptedLogin, CookieJar }) {
  const app = express();
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const origin = `http://127.0.0.1:${server.address().port}`;
  const auth0 = await startLocalAuth0({
    clients: [{ clientId: 'bff', clientSecret: 'consumer-secret', redirectUris: [`${origin}/auth/callback`] }],
    users: [{ username: 'alice', password: 'alice-pw', name: 'Alice' }],
    apis: [{ audience: 'https://api.example.test' }],
  });
  const warnings = [];
  const bff = createBff({
    issuer: auth0.issuer,
    clientId: 'bff',
    clientSecret: 'consumer-secret',
    audience: 'https://api.example.test',
    baseURL: origin,
    session: { secrets: ['a-consumer-session-secret-of-40-characters'] },
    logger: { warn: (message) => warnings.push(message), error: (message) => warnings.push(message) },
  });
  app.use(bff);
  app.get('/', (_req, res) => res.send('the app'));
  try {
    const jar = new CookieJar();
    const { callbackUrl } = await scriptedLogin(`${origin}/auth/login`, { username: 'alice', password: 'alice-pw' }, { jar, stopAt: `${origin}/auth/callback` });
    const callback = await fetch(callbackUrl, { headers: { cookie: jar.header(callbackUrl) }, redirect: 'manual' });
    jar.setFrom(callbackUrl, callback);
    if (callback.status !== 302) throw new Error(`the callback answered ${callback.status}`);
    const user = await fetch(`${origin}/auth/user`, { headers: { cookie: jar.header(origin) } });
    const body = await user.json();
    if (user.status !== 200 || body.user?.sub !== 'auth0|alice') throw new Error(`/auth/user answered ${user.status} ${JSON.stringify(body)}`);
    if ((await (await fetch(`${origin}/`)).text()) !== 'the app') throw new Error('the app did not get the requests the BFF does not answer');
    if (!warnings.every((message) => /in memory/.test(message))) throw new Error(`unexpected log lines: ${warnings.join(' | ')}`);
    // The package leaves the process's fetch on Node's own HTTP client, not npm undici's (src/idp/fetch-dispatcher.ts).
    if (globalThis[Symbol.for('undici.globalDispatcher.1')] instanceof createRequire(import.meta.url)('undici').Agent) {
      throw new Error("loading the package moved the process's fetch onto npm undici's HTTP client");
    }
    console.log(`ok (${via}, Node ${process.versions.node}, Express ${expressVersion}): logged in as ${body.user.sub} through the emulator`);
  } finally {
    server.closeAllConnections();
    server.close();
    await bff.close();
    await auth0.stop();
  }
}
