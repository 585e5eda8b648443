import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // One file at a time: integration files each start a real stack (each building into its own
    // .esbuild-local/<port> folder) and the deploy checks run esbuild too; two cores gain little
    // from running them side by side.
    fileParallelism: false,
    projects: [
      {
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], environment: 'node', hookTimeout: 60_000 },
      },
      {
        // The client package's own tests: fake timers, a scripted WebSocket, in-memory history.
        test: { name: 'client', include: ['client/test/**/*.test.ts'], environment: 'node' },
      },
      {
        // Checks on what `sls package` generates for AWS: no stack, no credentials. The hook packages the stage twice (with and without network params).
        test: { name: 'deploy', include: ['test/deploy/**/*.test.ts'], environment: 'node', testTimeout: 180_000, hookTimeout: 360_000 },
      },
      {
        // Each integration file starts its own real local stack (PostgreSQL, DynamoDB API, serverless-offline, bridge).
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
