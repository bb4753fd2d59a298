import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The tooling's fixture workbook has tests of its own, run only by the grader in the tooling tests.
    exclude: ['test/fixtures/**', 'node_modules/**'],
    // The only timer a test has: every wait ends on a line or an event, or fails here with the lab's output.
    testTimeout: 10_000,
    hookTimeout: 10_000,
    // Each file may start servers and clients of its own; files run in parallel, tests in a file in order.
    pool: 'forks',
    // Tests mostly wait on the labs they start, so more files run at once than there are cores
    // (measured on 2 cores: 173 s with the default of one worker, 109 s with four).
    maxWorkers: 4,
  },
});
