/**
 * At run time, from the packed package installed without oidc-provider: both entries load, CookieJar and
 * scriptedLogin work, startLocalAuth0() says what to install, and the BFF serves an Express app.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';

const expressVersion = createRequire(import.meta.url)('express/package.json').version;

async function listen(server) {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${server.address().port}`;
}

export async function checkWithoutOidcProvider({ via, express, createBff, startLocalAuth0, scriptedLogin, CookieJar }) {
  // An authorization server stand-in: sets a cookie and sends the browser to the callback with a code.
  const idp = createServer((req, res) => {
    if (req.url.startsWith('/authorize')) res.writeHead(302, { location: '/callback?code=c0de&state=s', 'set-cookie': 'idp=1; Path=/' }).end();
    else res.writeHead(404).end();
  });
  const idpOrigin = await listen(idp);
  const app = express();
  const server = createServer(app);
  const origin = await listen(server);
  const logged = [];
  const bff = createBff({
    issuer: idpOrigin,
    clientId: 'bff',
    clientSecret: 'consumer-secret',
    baseURL: origin,
    session: { secrets: ['a-consumer-session-secret-of-40-characters'] },
    logger: { warn: (message) => logged.push(message), error: (message) => logged.push(message) },
  });
  app.use(bff);
  app.get('/', (_req, res) => res.send('the app'));
  try {
    const jar = new CookieJar();
    const { callbackUrl } = await scriptedLogin(`${idpOrigin}/authorize`, { username: 'alice', password: 'alice-pw' }, { jar });
    if (new URL(callbackUrl).searchParams.get('code') !== 'c0de' || jar.get(idpOrigin, 'idp') !== '1') {
      throw new Error(`scriptedLogin ended at ${callbackUrl} with cookies "${jar.header(idpOrigin)}"`);
    }

    const started = await startLocalAuth0({ clients: [{ clientId: 'bff', redirectUris: [`${origin}/auth/callback`] }], users: [] }).then(
      () => 'started',
      (error) => error,
    );
    if (!(started instanceof Error) || !started.message.includes('npm install --save-dev oidc-provider')) {
      throw new Error(`startLocalAuth0() without oidc-provider: ${started?.message ?? started}`);
    }

    const user = await fetch(`${origin}/auth/user`);
    const body = await user.json();
    if (user.status !== 401 || body.error !== 'login_required') throw new Error(`/auth/user answered ${user.status} ${JSON.stringify(body)}`);
    if ((await (await fetch(`${origin}/`)).text()) !== 'the app') throw new Error('the app did not get the requests the BFF does not answer');
    console.log(`ok (${via}, Node ${process.versions.node}, Express ${expressVersion}, no oidc-provider): ${started.message}`);
  } finally {
    server.closeAllConnections();
    server.close();
    idp.close();
    await bff.close();
  }
}
