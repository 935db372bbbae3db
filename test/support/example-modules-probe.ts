/**
 * Run by test/example/example.test.ts in a child `node --import tsx`, where nothing else has loaded a module: the
 * example started as a deployment copied from it runs (an Auth0 tenant and an API of its own, so neither the
 * emulator nor the example API), then stopped. Prints `result: <JSON>`: which of the packages only the demo or the
 * example API need were loaded. Those loaded as CommonJS show in `require.cache`, whoever imported them: `ws`, and
 * `koa`, which the emulator's oidc-provider runs on; `express` shows that the check sees what was loaded.
 */
import { createRequire } from 'node:module';
import { readConfig } from '../../example/config.js';
import { startExample } from '../../example/server.js';

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const example = await startExample(readConfig({
  PORT: '0',
  // Nobody listens there: the example starts anyway, and loads the metadata once it can.
  ISSUER_URL: 'http://127.0.0.1:9/',
  CLIENT_ID: 'id',
  CLIENT_SECRET: 'secret',
  AUDIENCE: 'https://api.example.test',
  SESSION_SECRET: 'a-session-secret-of-more-than-32-characters',
  UPSTREAM_API_URL: 'http://127.0.0.1:9/',
}), { logger: silent });
const loaded = Object.keys(createRequire(import.meta.url).cache);
await example.close();
const packageLoaded = (name: string) => loaded.some((path) => path.includes(`/node_modules/${name}/`));
console.log(`result: ${JSON.stringify({ ws: packageLoaded('ws'), koa: packageLoaded('koa'), express: packageLoaded('express') })}`);
