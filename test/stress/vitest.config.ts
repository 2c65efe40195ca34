import { defineConfig } from 'vitest/config';

/**
 * `npm run test:stress`: the reliability suite at its long sizes plus the soak run, one file at a
 * time (so latencies are not skewed by other files), writing its figures into docs/reliability.md.
 * Every size can be changed with its environment variable (docs/reliability.md, "Parameters").
 */
export default defineConfig({
  test: {
    include: ['test/reliability/**/*.test.ts', 'test/stress/**/*.stress.ts'],
    testTimeout: 3_600_000,
    hookTimeout: 600_000,
    pool: 'forks',
    fileParallelism: false,
    reporters: ['default'],
    env: {
      SESH_STRESS: process.env.SESH_STRESS ?? '1',
      SESH_RELIABILITY_REPORT: process.env.SESH_RELIABILITY_REPORT ?? '1',
    },
  },
});
