/**
 * The example's configuration, read from the environment. The example and the doctor CLI are the two places in
 * the project that read environment variables; the contract itself (which variables, what they mean) is
 * src/config/example-env.ts, shared by both. The library only takes options.
 */
import { readConfig as readEnvironment, type Env, type ExampleConfig } from '../src/config/example-env.js';

export {
  DEFAULT_PORT,
  DEMO_AUDIENCE,
  ExampleConfigError,
  type Auth0Config,
  type DemoConfig,
  type ExampleConfig,
} from '../src/config/example-env.js';

/**
 * Reads the example's settings from `env` (default: `process.env`).
 * @throws ExampleConfigError listing every invalid or missing variable.
 *
 * @example
 * ```ts
 * const config = readConfig({ PORT: '8080' }); // demo mode on port 8080
 * ```
 */
export function readConfig(env: Env = process.env): ExampleConfig {
  return readEnvironment(env);
}
