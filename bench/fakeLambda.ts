import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

/**
 * A stand-in for the Lambda service on 127.0.0.1, speaking the Invoke API
 * (POST /2015-03-31/functions/{name}/invocations) that fanout's shard invoker calls: each invocation
 * runs in a container (a worker thread with the real handler loaded), one invocation per container
 * at a time, new containers started when all are busy, as Lambda scales out. An `Event` invocation
 * is answered 202 at once and runs in the background.
 */
export interface FakeLambda {
  endpoint: string;
  invocations: number;
  containers: number;
  /** Summed duration of every invocation, ms (what Lambda bills, times memory). */
  billedMs: number;
  errors: string[];
  /** Resolves when no invocation is running or queued. */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

export async function startFakeLambda({
  bundle,
  env: baseEnv,
  warmContainers = 1,
  maxContainers = 32,
}: {
  /** The handler's bundle (CommonJS, exports `handler`). */
  bundle: string;
  env: Record<string, string>;
  /** Containers started before the first invocation, as a busy function has them warm. */
  warmContainers?: number;
  maxContainers?: number;
}): Promise<FakeLambda> {
  // The containers invoke their shards here: LAMBDA_ENDPOINT is this fake's own address.
  let env = baseEnv;
  const idleContainers: Worker[] = [];
  const all: Worker[] = [];
  const queue: Array<{ event: unknown; done: (result: unknown) => void }> = [];
  const pending = new Map<number, (answer: { result?: unknown; error?: string; ms: number }) => void>();
  let nextId = 0;
  let running = 0;
  let idleWaiters: Array<() => void> = [];

  const fake: FakeLambda = {
    endpoint: '',
    invocations: 0,
    containers: 0,
    billedMs: 0,
    errors: [],
    idle: () => (running === 0 && queue.length === 0 ? Promise.resolve() : new Promise((resolve) => idleWaiters.push(resolve))),
    stop: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await Promise.all(all.map((worker) => worker.terminate()));
    },
  };

  async function newContainer(): Promise<Worker> {
    const worker = new Worker(join(import.meta.dirname, 'lambdaContainer.mjs'), { workerData: { env, bundle } });
    all.push(worker);
    fake.containers++;
    await new Promise<void>((resolve, reject) => {
      worker.once('error', reject);
      worker.once('message', () => resolve());
    });
    worker.on('message', (answer: { id: number; result?: unknown; error?: string; ms: number }) => {
      pending.get(answer.id)?.(answer);
      pending.delete(answer.id);
    });
    return worker;
  }

  let starting = 0;
  async function pump(): Promise<void> {
    while (queue.length > 0) {
      let container = idleContainers.pop();
      if (!container) {
        if (all.length + starting >= maxContainers) return;
        starting++;
        container = await newContainer().finally(() => starting--);
      }
      const job = queue.shift();
      if (!job) {
        idleContainers.push(container);
        return;
      }
      const id = nextId++;
      const worker = container;
      pending.set(id, (answer) => {
        fake.billedMs += answer.ms;
        if (answer.error) fake.errors.push(answer.error);
        idleContainers.push(worker);
        running--;
        job.done(answer.error ? { errorMessage: answer.error } : answer.result);
        void pump();
        if (running === 0 && queue.length === 0) {
          const waiters = idleWaiters;
          idleWaiters = [];
          waiters.forEach((resolve) => resolve());
        }
      });
      worker.postMessage({ id, event: job.event });
    }
  }

  function invoke(event: unknown): Promise<unknown> {
    fake.invocations++;
    running++;
    return new Promise((done) => {
      queue.push({ event, done });
      void pump();
    });
  }

  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', async () => {
      if (request.method !== 'POST' || !/\/2015-03-31\/functions\/[^/]+\/invocations/.test(request.url ?? '')) {
        response.statusCode = 404;
        return response.end();
      }
      const event = JSON.parse(Buffer.concat(chunks).toString() || 'null');
      if (request.headers['x-amz-invocation-type'] === 'Event') {
        void invoke(event);
        response.statusCode = 202;
        return response.end();
      }
      const result = await invoke(event);
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify(result ?? null));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  env = { ...baseEnv, LAMBDA_ENDPOINT: fake.endpoint };
  idleContainers.push(...(await Promise.all(Array.from({ length: warmContainers }, newContainer))));
  return fake;
}
