/**
 * TypeScript's `module: node16` models Node 16, which cannot require() an ES module: there, a CommonJS file loads
 * express-ort-bff with import(), and names its types with `import type ... with { 'resolution-mode': 'import' }`.
 * (The same file under `module: nodenext` or `node20` can import it statically.)
 */
import type { Bff, BffOptions, LogoutEvent } from 'express-ort-bff' with { 'resolution-mode': 'import' };
import type { LocalAuth0 } from 'express-ort-bff/local-auth0' with { 'resolution-mode': 'import' };
import express = require('express');

export async function start(options: BffOptions): Promise<{ bff: Bff; auth0: LocalAuth0 }> {
  const { createBff, BffError } = await import('express-ort-bff');
  const { startLocalAuth0 } = await import('express-ort-bff/local-auth0');
  const auth0 = await startLocalAuth0({
    clients: [{ clientId: 'bff', clientSecret: 'bff-secret', redirectUris: [`${options.baseURL}/auth/callback`] }],
    users: [{ username: 'alice', password: 'alice-pw' }],
  });
  const bff = createBff({ ...options, issuer: auth0.issuer });
  bff.events.on('logout', (event: LogoutEvent) => console.log('logout', event.reason));
  const app = express();
  app.use(bff);
  app.get('/token', async (req, res) => {
    try {
      res.json({ length: (await bff.getAccessToken(req)).length });
    } catch (error) {
      if (error instanceof BffError) res.status(error.status).json({ error: error.code });
      else throw error;
    }
  });
  return { bff, auth0 };
}
