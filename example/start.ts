/**
 * `npm start`: reads the environment, starts the example, and stops it cleanly on Ctrl-C (SIGINT) or SIGTERM:
 * no new connections, the requests already accepted answered (for up to SHUTDOWN_GRACE_MS), then exit 0.
 * With no environment at all it runs the demo: a local Auth0 emulator, no tenant needed.
 */
import { ExampleConfigError, readConfig, type ExampleConfig } from './config.js';
import { consoleLogger, startExample } from './server.js';

let config: ExampleConfig;
try {
  config = readConfig();
} catch (error) {
  if (!(error instanceof ExampleConfigError)) throw error;
  console.error(error.message);
  process.exit(1);
}

const example = await startExample(config).catch((error: unknown) => {
  console.error(`The example could not start: ${(error as Error).message}`);
  process.exit(1);
});

const lines = [
  '',
  `express-ort-bff example (${config.mode === 'demo' ? 'demo mode: local Auth0 emulator' : `issuer ${config.issuer}`})`,
  `  Open       ${example.url}`,
];
if (example.url !== example.localUrl) lines.push(`  Listening  ${example.localUrl}`);
if (example.demoLogin && example.auth0) {
  lines.push(`  Log in as  ${example.demoLogin.username} / ${example.demoLogin.password}`);
  lines.push(`  Emulator   ${example.auth0.issuer}`);
}
lines.push(`  API        ${example.apiUrl} (behind ${example.url}/api)`);
lines.push(`  Sessions   ${config.redisUrl === undefined ? 'in memory (set REDIS_URL to keep them in Redis)' : 'in Redis'}`);
if (example.metricsUrl) lines.push(`  Metrics    ${example.metricsUrl} (Prometheus)`);
if (config.telemetry.otlpEndpoint) lines.push(`  Traces     ${config.telemetry.otlpEndpoint} (OTLP/HTTP)`);
if (config.logLevel === 'debug') lines.push('  Logs       debug: token exchanges, lock waits and why each session ended');
lines.push(`  Tokens     ${config.dpopKey === undefined ? 'Bearer' : 'DPoP-bound to the key in DPOP_PRIVATE_KEY'}`);
for (const notice of config.notices) lines.push(`  Note: ${notice}`);
lines.push('  Ctrl-C stops it.', '');
consoleLogger.info(lines.join('\n'));

let stopping = false;
/** How long the requests in flight may take to finish once a stop is asked for. */
const SHUTDOWN_GRACE_MS = 10_000;

const stop = (signal: NodeJS.Signals) => {
  if (stopping) {
    // A second Ctrl-C: the user does not want to wait.
    process.exit(130);
  }
  stopping = true;
  consoleLogger.info(`${signal}: stopping...`);
  example.close({ gracePeriodMs: SHUTDOWN_GRACE_MS }).then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(`Stopping failed: ${(error as Error).message}`);
      process.exit(1);
    },
  );
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
