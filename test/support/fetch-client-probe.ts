/**
 * Run by test/unit/auth0-fetch-client.test.ts in a child `node --import tsx`, where nothing has loaded npm undici
 * before the library (a test runner's process may have): a user logs in through the emulator and makes one API
 * call. Prints a line `result: <JSON>`: whose HTTP client the process's `fetch` has (`node`: Node's own; `npm
 * undici`; `app`: the one the app installed), and how many requests to the emulator (the browser's and the BFF's
 * logins and token calls) and to the upstream (the proxied call) went through npm undici's code or another's, as
 * announced on `undici:request:create`, where both announce theirs.
 *
 * PROBE_APP_DISPATCHER=1: the app installs npm undici's `Agent` as fetch's dispatcher before it imports the library.
 */
import { subscribe } from 'node:diagnostics_channel';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const dispatcherSymbol = Symbol.for('undici.globalDispatcher.1');
let appDispatcher: unknown;
if (process.env.PROBE_APP_DISPATCHER === '1') {
  const { Agent, setGlobalDispatcher } = require('undici') as typeof import('undici');
  appDispatcher = new Agent();
  setGlobalDispatcher(appDispatcher as InstanceType<typeof Agent>);
}
// Only now: the library and the harness, which imports it (a static import would come before the lines above), and
// npm undici for the checks below, after the library as the library's own import of it.
const { startHarness } = await import('./harness.js');

const npmUndici = require('undici') as typeof import('undici');
const NpmRequest = require('undici/lib/core/request.js') as new (...args: never[]) => object;
const dispatcher = (globalThis as Record<symbol, unknown>)[dispatcherSymbol];
const fetchClient = dispatcher === appDispatcher ? 'app' : dispatcher instanceof npmUndici.Agent ? 'npm undici' : 'node';

const requests: Array<{ origin: string; npm: boolean }> = [];
subscribe('undici:request:create', (message) => {
  const { request } = message as { request: { origin: unknown } };
  requests.push({ origin: new URL(String(request.origin)).origin, npm: request instanceof NpmRequest });
});

const harness = await startHarness();
const browser = harness.browser();
const login = await browser.login();
const api = await browser.api('/api/items');
const through = (origin: string) => {
  const to = requests.filter((r) => r.origin === origin);
  return { npmUndici: to.filter((r) => r.npm).length, other: to.filter((r) => !r.npm).length };
};
const result = {
  fetchClient,
  login: login.status,
  api: api.status,
  toEmulator: through(new URL(harness.auth0.issuer).origin),
  toUpstream: through(new URL(harness.upstream.url).origin),
};
await harness.close();
process.stdout.write(`result: ${JSON.stringify(result)}\n`);
