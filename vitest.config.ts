import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // FUSE callbacks run on the process's main libuv loop: test files need their own
    // process, not a worker thread.
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
  },
});
