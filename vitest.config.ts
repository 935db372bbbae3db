import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/redis-global-setup.ts'],
    // Each test file gets its own process: the emulator and BFF servers it starts stay its own.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // The machine is shared and has 2 cores: a bounded number of files at once keeps timings sane.
    maxWorkers: 2,
  },
});
