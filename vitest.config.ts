import { defineConfig } from 'vitest/config';

// Three levels of tests (see docs/architecture.md): pure unit tests run in
// parallel; integration tests each start their own private etcd; e2e tests
// boot real systemd nodes and run one file at a time (two cores, shared).
export default defineConfig({
  test: {
    globalSetup: ['test/helpers/global-setup.ts'],
    // The JSON report feeds .ci/run's closing line.
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results.json' },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // projects run one after another: unit, integration, e2e
          sequence: { groupOrder: 0 },
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          sequence: { groupOrder: 1 },
          testTimeout: 60_000,
          hookTimeout: 60_000,
          maxWorkers: 2,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          sequence: { groupOrder: 2 },
          testTimeout: 180_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
