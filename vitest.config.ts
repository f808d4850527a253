import { defineConfig } from 'vitest/config';

// One root config, a project per package. Each test file that needs Redis
// starts its own throw-away server, so files run in parallel; a shared
// REDIS_URL is flushed by every file, so they then run one at a time.
const sharedRedis = Boolean(process.env.REDIS_URL);

export default defineConfig({
  test: {
    fileParallelism: !sharedRedis,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    reporters: process.env.CI ? ['default', ['json', { outputFile: '.vitest-results.json' }]] : ['default'],
    projects: [
      ...[
        'packages/core',
        'packages/redis',
        'packages/testkit',
        'packages/telemetry',
        'packages/warehouse',
        'services/ingest',
        'services/aggregator',
        'services/archiver',
        'services/backfill',
        'services/simulator',
        'services/dashboard',
        'services/cli',
      ].map((root) => ({
        extends: true,
        test: { name: root.split('/')[1], root, include: ['test/**/*.test.ts'] },
      })),
      {
        extends: true,
        test: {
          name: 'e2e',
          root: 'test',
          include: ['e2e/**/*.test.ts', 'fault/**/*.test.ts', 'infra/**/*.test.ts'],
        },
      },
    ],
  },
});
