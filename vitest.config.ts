import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Test groups that CI runs once (on the recommended Node with Express 5) instead of on every Node and Express
 * combination: slow, and not about the runtime or the framework. Each is a project of its own, run after `main`.
 * A new heavy group gets a line here and a project below. `npm test` runs everything;
 * `npm test -- --project main` leaves these out.
 */
const ONCE = ['test/fuzz/**', 'test/bench/**', 'test/redis-topologies/**', 'test/soak/**'];

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
