import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Test groups that CI runs once (on the recommended Node with Express 5) instead of on every Node and Express
 * combination: slow, and not about the runtime or the framework. Each is a project of its own, run after `main`.
 * A new heavy group gets a line here and a project below. `npm test` runs everything;
 * `npm test -- --project main --project wrap` leaves these out.
 */
const ONCE = ['test/fuzz/**', 'test/bench/**', 'test/redis-topologies/**', 'test/soak/**'];

/**
 * The integration tests again, with the harness serving the BFF through `http.createServer(bff.wrap(app))` instead
 * of `app.use(bff)` (test/support/harness.ts reads BFF_TEST_ENTRY): both entries must give the same answers.
 * Left out: the guard for the app's own routes under an API mount, which only `app.use(bff)` can reach, and the
 * side-by-side test of the two entries, which names its entries itself.
 */
const WRAP_ENTRY = {
  include: ['test/integration/**/*.test.ts'],
  exclude: [...configDefaults.exclude, 'test/integration/require-session.test.ts', 'test/integration/wrap-entry.test.ts'],
};

export default defineConfig({
  test: {
    globalSetup: ['test/support/redis-global-setup.ts'],
    // Each test file gets its own process: the emulator and BFF servers it starts stay its own.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // The machine is shared and has 2 cores: a bounded number of files at once keeps timings sane.
    maxWorkers: 2,
    // `main` first; then the fuzz suite; then the benchmark smoke test; then Redis Cluster and Sentinel; then the
    // soak alone, as its timings need the machine to itself.
    projects: [
      { extends: true, test: { name: 'main', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, ...ONCE] } },
      { extends: true, test: { name: 'wrap', ...WRAP_ENTRY, env: { BFF_TEST_ENTRY: 'wrap' } } },
      { extends: true, test: { name: 'fuzz', include: ['test/fuzz/**/*.test.ts'], sequence: { groupOrder: 1 } } },
      { extends: true, test: { name: 'bench', include: ['test/bench/**/*.test.ts'], sequence: { groupOrder: 2 } } },
      // `npm run test:redis-topologies`. Each file starts up to 6 redis-server processes: two files at a time.
      {
        extends: true,
        test: {
          name: 'redis-topologies',
          include: ['test/redis-topologies/**/*.test.ts'],
          globalSetup: ['test/redis-topologies/support/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          sequence: { groupOrder: 3 },
        },
      },
      { extends: true, test: { name: 'soak', include: ['test/soak/**/*.test.ts'], sequence: { groupOrder: 4 } } },
    ],
  },
});
