import { configDefaults, defineConfig } from 'vitest/config';

/** The soak and the fuzz suite run once each, after everything else and not beside it (see `projects`). */
const ONCE = ['test/soak/**', 'test/fuzz/**'];

export default defineConfig({
  test: {
    globalSetup: ['test/support/redis-global-setup.ts'],
    // Each test file gets its own process: the emulator and BFF servers it starts stay its own.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // The machine is shared and has 2 cores: a bounded number of files at once keeps timings sane.
    maxWorkers: 2,
    // `main` first; then the fuzz suite; then the soak alone, as its timings need the machine to itself. A CI
    // matrix can run `--project main` on every Node/Express combination and `--project fuzz --project soak` once.
    projects: [
      { extends: true, test: { name: 'main', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, ...ONCE] } },
      { extends: true, test: { name: 'fuzz', include: ['test/fuzz/**/*.test.ts'], sequence: { groupOrder: 1 } } },
      { extends: true, test: { name: 'soak', include: ['test/soak/**/*.test.ts'], sequence: { groupOrder: 2 } } },
    ],
  },
});
