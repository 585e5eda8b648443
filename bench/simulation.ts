import { randomBytes, randomUUID } from 'node:crypto';
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import pLimit from 'p-limit';
import { parseConfig } from '../functions/lib/config.js';
import { createTable } from '../functions/lib/stores/dynamoTable.js';
import { startEmbeddedDynamodb } from '../infra/local/embeddedDynamodb.js';
import { freePort } from '../infra/local/stack.js';
import { startFakeLambda } from './fakeLambda.js';
import { startStubGatewayChild } from './stubGatewayChild.js';
import { buildFanoutBundle } from './bundles.js';

/**
 * The fan-out simulation: subscribers stored in dynalite, a stub gateway in another process that
 * answers after 30 ms and throttles with a token bucket like the account limit (10,000/s, bucket of
 * 5,000), and the real fanout handler in simulated Lambda containers (worker threads) behind a fake
 * Lambda Invoke API, so the shards are real parallel invocations of the real code.
 */
export interface SimulationFigures {
  subscribers: number;
  shards: number;
  containers: number;
  lastDeliveryS: number;
  postsPerSecond: number;
  throttled: number;
  lost: number;
  duplicated: number;
  billedGbSeconds: number;
  /** CPU of the containers and dynalite (this process, all threads) per delivery. */
  cpuMicrosPerDelivery: number;
}

const TABLE = 'cablecar-bench';

// dynalite and the stubs take any credentials; never let the SDK look further (instance metadata).
process.env.AWS_ACCESS_KEY_ID = 'local';
process.env.AWS_SECRET_ACCESS_KEY = 'local';
process.env.AWS_EC2_METADATA_DISABLED = 'true';
export const SIMULATED_MEMORY_GB = 1; // serverless.yml: fanout memorySize

export async function benchSimulation({
  sizes,
  latencyMs = 30,
  rate = 10_000,
  burst = 5_000,
  log,
}: {
  sizes: number[];
  latencyMs?: number;
  rate?: number;
  burst?: number;
  log: (line: string) => void;
}): Promise<SimulationFigures[]> {
  const dynamo = await startEmbeddedDynamodb({ port: await freePort(), tableName: TABLE });
  const stub = await startStubGatewayChild({ latencyMs, rate, burst });
  const env = {
    TABLE_NAME: TABLE,
    DYNAMODB_ENDPOINT: dynamo.url,
    WEBSOCKET_API_ENDPOINT: stub.endpoint,
    DATABASE_URL: 'postgres://unused.invalid/fanout-uses-no-database',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_REGION: 'us-east-1',
    AWS_LAMBDA_FUNCTION_NAME: 'cablecar-bench-fanout',
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_LOG_LEVEL: 'ERROR',
    POST_RATE_LIMIT: String(rate),
    POST_BURST_LIMIT: String(burst),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  } as Record<string, string>;
  // The stage's defaults for everything else (FANOUT_SHARDS, FANOUT_CONCURRENCY, ...), as deployed.
  const shards = parseConfig(env).FANOUT_SHARDS;
  const bundle = await buildFanoutBundle();
  const fake = await startFakeLambda({ bundle, env, warmContainers: shards }).catch(async (error) => {
    await stub.stop();
    await dynamo.stop();
    throw error;
  });
  const invoker = new LambdaClient({ endpoint: fake.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, maxAttempts: 1 });
  const table = createTable({ tableName: TABLE, endpoint: dynamo.url, region: 'us-east-1' });
  const figures: SimulationFigures[] = [];
  try {
    for (const subscribers of sizes) {
      const channel = `sim-${subscribers}`;
      log(`simulation: storing ${subscribers} subscriptions in dynalite ...`);
      const ttl = Math.floor(Date.now() / 1000) + 3600;
      const limit = pLimit(8);
      const batches: Promise<unknown>[] = [];
      for (let i = 0; i < subscribers; i += 25) {
        const items = Array.from({ length: Math.min(25, subscribers - i) }, () => {
          // API Gateway's connection ids: 16 base64 characters
          const id = randomBytes(12).toString('base64').slice(0, 15) + '=';
          return { PutRequest: { Item: { pk: `CHAN#${channel}`, sk: `CONN#${id}`, v: 1, channel, connectionId: id, subscribedAt: ttl - 3600, ttl } } };
        });
        batches.push(limit(() => table.client.send(new BatchWriteCommand({ RequestItems: { [TABLE]: items } }))));
      }
      await Promise.all(batches);

      await stub.reset();
      const invocationsBefore = fake.invocations;
      const billedBefore = fake.billedMs;
      const event = { v: 1, message: { id: randomUUID(), channel, seq: 1, data: { text: 'hello' }, publishedAt: new Date().toISOString() } };
      log(`simulation: fanning out to ${subscribers} subscribers ...`);
      const started = Date.now();
      const cpu = process.cpuUsage();
      // As RDS does: an asynchronous invocation of fanout with the dispatch event.
      await invoker.send(new InvokeCommand({ FunctionName: 'cablecar-bench-fanout', InvocationType: 'Event', Payload: Buffer.from(JSON.stringify(event)) }));
      const progress = setInterval(async () => {
        const { counts } = await stub.counts();
        log(`simulation:   ${counts.accepted}/${subscribers} delivered, ${counts.throttled} throttled`);
      }, 2000);
      await fake.idle();
      clearInterval(progress);
      const used = process.cpuUsage(cpu);
      const { counts, distinct, lastAt } = await stub.counts();
      if (fake.errors.length > 0) log(`simulation: invocation errors:\n${fake.errors.splice(0).join('\n')}`);
      const lastDeliveryS = ((lastAt ?? Date.now()) - started) / 1000;
      figures.push({
        subscribers,
        shards: fake.invocations - invocationsBefore,
        containers: fake.containers,
        lastDeliveryS,
        postsPerSecond: counts.accepted / lastDeliveryS,
        throttled: counts.throttled,
        lost: subscribers - distinct,
        duplicated: counts.accepted - distinct,
        billedGbSeconds: ((fake.billedMs - billedBefore) / 1000) * SIMULATED_MEMORY_GB,
        cpuMicrosPerDelivery: (used.user + used.system) / Math.max(1, counts.accepted),
      });
    }
  } finally {
    invoker.destroy();
    await fake.stop();
    await stub.stop();
    await dynamo.stop();
  }
  return figures;
}
