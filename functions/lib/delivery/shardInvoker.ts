import type { LambdaClient } from '@aws-sdk/client-lambda';
import { asyncFanoutInvocation } from '../dispatch/fanoutInvocation.js';
import { shardEvent } from '../protocol/dispatchEvent.js';
import type { Message } from '../protocol/protocol.js';
import type { SubscriberShard } from '../stores/subscriptionStore.js';

export interface ShardInvokerOptions {
  /** This function's name and the version running now (AWS_LAMBDA_FUNCTION_NAME/_VERSION). */
  functionName: string;
  functionVersion?: string;
  region: string;
  /** Only locally: serverless-offline's Lambda endpoint. */
  endpoint?: string;
}

/**
 * Starts a split fan-out's other shards as asynchronous invocations of the version that is running
 * now, not of `live`: during a release the shards of one message are then delivered by the code
 * that split it, and a version-1 fanout never receives a shard event. Each published version has
 * live's retries and on-failure queue (infra/serverless/live-alias-plugin.cjs), so a shard that
 * fails lands in the queue like a dispatch, and redrive runs it on this version again. The Lambda
 * client is loaded on the first big channel only, so it costs a small channel's cold start nothing.
 */
export function createShardInvoker({ functionName, functionVersion, region, endpoint }: ShardInvokerOptions) {
  let client: Promise<{ lambda: LambdaClient; InvokeCommand: typeof import('@aws-sdk/client-lambda').InvokeCommand }> | undefined;
  const qualifier = functionVersion && functionVersion !== '$LATEST' ? functionVersion : undefined;

  return async (message: Message, shards: SubscriberShard[]): Promise<void> => {
    client ??= import('@aws-sdk/client-lambda').then(({ LambdaClient, InvokeCommand }) => ({
      lambda: new LambdaClient({ region, endpoint, maxAttempts: 3 }),
      InvokeCommand,
    }));
    const { lambda, InvokeCommand } = await client;
    await Promise.all(
      shards.map((shard) =>
        lambda.send(new InvokeCommand(asyncFanoutInvocation(functionName, qualifier, shardEvent(message, shard)))),
      ),
    );
  };
}
