// One simulated Lambda container (a worker thread): it loads the fanout bundle once, with the
// environment the fake Lambda service gives it, and runs one invocation at a time, as Lambda does.
import { createRequire } from 'node:module';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';

// The services around the containers (the stub gateway, dynalite, this fake Lambda) stand for AWS's
// fleets, which a function never competes with for CPU: they go first here. Linux sets niceness per
// thread, so this lowers this container's thread alone.
setPriority(10);
Object.assign(process.env, workerData.env);
const { handler } = createRequire(import.meta.url)(workerData.bundle);

const context = {
  functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
  functionVersion: '$LATEST',
  awsRequestId: 'bench',
  getRemainingTimeInMillis: () => 300_000,
};

parentPort.on('message', async ({ id, event }) => {
  const started = performance.now();
  try {
    const result = await handler(event, context);
    parentPort.postMessage({ id, result, ms: performance.now() - started });
  } catch (error) {
    parentPort.postMessage({ id, error: String(error?.stack ?? error), ms: performance.now() - started });
  }
});
parentPort.postMessage({ ready: true });
