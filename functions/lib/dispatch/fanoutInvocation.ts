import type { InvokeCommandInput } from '@aws-sdk/client-lambda';

/**
 * The Invoke request that hands an event to fanout the way PostgreSQL's aws_lambda.invoke(…, 'Event')
 * does: asynchronous, so it lands in Lambda's queue with its retries and on-failure destination.
 * Used by the sweep and the redrive command (qualifier `live`) and by a split fan-out starting its
 * shards (the running version). Type-only import: callers load the Lambda client themselves (the
 * shard invoker only on the first big channel).
 */
export function asyncFanoutInvocation(functionName: string, qualifier: string | undefined, event: unknown): InvokeCommandInput {
  return { FunctionName: functionName, Qualifier: qualifier, InvocationType: 'Event', Payload: Buffer.from(JSON.stringify(event)) };
}
