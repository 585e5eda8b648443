/**
 * `npm run redrive -- --stage <stage> [--region r] [--max n]`: dispatches again what landed in the
 * fanout's on-failure queue. Lambda writes there an invocation record for each asynchronous fan-out
 * that failed after its retries (or outlived the maximum event age): `requestPayload` is the
 * original event, `requestContext.functionArn` the function and qualifier it was invoked on.
 *
 * - A dispatch event (PostgreSQL's, or the sweep's) was invoked on `live`: it is invoked on
 *   fanout:live again, asynchronously, as PostgreSQL does.
 * - A shard event (one part of a big channel, started by the fanout that split the message) was
 *   invoked on that fanout's own version: it is invoked again on that same version, never on
 *   `live`, which may be a version that does not know shard events (docs/releases.md, "Mixed
 *   versions"), or that splits a channel differently.
 * - A shard whose version no longer exists (someone deleted it; deploys retain versions) cannot be
 *   run as a shard anywhere: its whole message is dispatched again on `live` instead. Subscribers of
 *   the other shards get it twice and drop the duplicate by seq.
 *
 * A message dispatched again as a whole covers every other record of it met later in the same run
 * (its other shards, a second dispatch record): those are deleted without another dispatch.
 *
 * A record is deleted only once its invoke was accepted; one that is neither event, or names
 * another function, is left in the queue and reported.
 */
import { parseArgs } from 'node:util';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { DeleteMessageCommand, GetQueueUrlCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { asyncFanoutInvocation } from '../../functions/lib/dispatch/fanoutInvocation.js';
import { dispatchEvent, parseFanoutEvent } from '../../functions/lib/protocol/dispatchEvent.js';
import type { Message } from '../../functions/lib/protocol/protocol.js';
import type { SubscriberShard } from '../../functions/lib/stores/subscriptionStore.js';
import { functionNameOf, isValidStageName, LIVE_ALIAS, stackNameOf } from '../release/stageResources.js';

export const fanoutFailureQueueName = (stage: string) => `${stackNameOf(stage)}-fanout-failures`;

export interface RedriveClients {
  sqs: SQSClient;
  lambda: LambdaClient;
}

export interface RedriveResult {
  /** Records whose event was invoked again (on live, on their version, or as a whole message). */
  redriven: number;
  /** Records deleted because their whole message was already dispatched again in this run. */
  covered: number;
  skipped: number;
  failed: number;
}

/** One record of the queue, read: what failed and where to invoke it again. */
export type FailedFanout =
  | { kind: 'dispatch'; message: Message; payload: unknown }
  /** `version`: the version the shard ran on; undefined when the record does not say. */
  | { kind: 'shard'; message: Message; shard: SubscriberShard; payload: unknown; version: string | undefined };

const FUNCTION_ARN = /^arn:[\w-]+:lambda:[\w-]+:\d{12}:function:([\w-]+)(?::([^:]+))?$/;

/**
 * Reads a record Lambda wrote to the on-failure destination (its body). Throws, saying why, for a
 * record that holds no fan-out event or comes from another function than `fanoutName`.
 */
export function readFailureRecord(body: string | undefined, fanoutName: string): FailedFanout {
  let record: { requestContext?: { functionArn?: unknown }; requestPayload?: unknown };
  try {
    record = JSON.parse(body ?? '');
  } catch {
    throw new Error('its body is not JSON');
  }
  const arn = record?.requestContext?.functionArn;
  const [, functionName, qualifier] = (typeof arn === 'string' && FUNCTION_ARN.exec(arn)) || [];
  if (functionName !== undefined && functionName !== fanoutName) throw new Error(`it is a record of ${functionName}, not of ${fanoutName}`);
  const payload = record?.requestPayload;
  const event = parseFanoutEvent(payload);
  if (event.kind === 'dispatch') return { kind: 'dispatch', message: event.message, payload };
  // Only a published version is a place to run a shard again ($LATEST is whatever was deployed last).
  const version = qualifier !== undefined && /^\d+$/.test(qualifier) ? qualifier : undefined;
  return { kind: 'shard', message: event.message, shard: event.shard, payload, version };
}

/**
 * Invokes a failed fan-out again, asynchronously (the top of this file says where), and says where:
 * `wholeMessage` when what was invoked delivers the whole channel.
 */
async function invokeAgain(lambda: LambdaClient, fanoutName: string, failure: FailedFanout): Promise<{ wholeMessage: boolean; where: string }> {
  const invoke = (qualifier: string, event: unknown) => lambda.send(new InvokeCommand(asyncFanoutInvocation(fanoutName, qualifier, event)));
  if (failure.kind === 'dispatch') {
    // The original payload, not the parsed event: fields a newer version added travel unchanged.
    await invoke(LIVE_ALIAS, failure.payload);
    return { wholeMessage: true, where: `on ${LIVE_ALIAS}` };
  }
  if (failure.version !== undefined) {
    try {
      await invoke(failure.version, failure.payload);
      return { wholeMessage: false, where: `on version ${failure.version}` };
    } catch (error) {
      if ((error as Error).name !== 'ResourceNotFoundException') throw error;
    }
  }
  await invoke(LIVE_ALIAS, dispatchEvent(failure.message));
  const why = failure.version === undefined ? 'the record names no version' : `version ${failure.version} no longer exists`;
  return { wholeMessage: true, where: `as its whole message on ${LIVE_ALIAS} (${why})` };
}

export const HELP = `Usage: npm run redrive -- --stage <stage> [--region <region>] [--max <n>]

Dispatches again every fan-out that failed after Lambda's retries: reads the queue
${fanoutFailureQueueName('<stage>')} (the fanout's on-failure destination), invokes each
original event again asynchronously, and deletes the record once the invoke was accepted:
a dispatch on ${stackNameOf('<stage>')}-fanout:${LIVE_ALIAS}, a shard of a big channel on the fanout version
it failed on. A shard whose version no longer exists is dispatched again as its whole message on
${LIVE_ALIAS} (subscribers drop the duplicates by seq). --max caps how many records one run takes
(default: until the queue is empty). Records that are not fan-out events are left in the queue
and reported.

Exit status: 0 done, 1 some records failed or were left, 2 usage error.`;

export async function redrive(
  clients: RedriveClients,
  { stage, max = Infinity, log = () => {} }: { stage: string; max?: number; log?: (line: string) => void },
): Promise<RedriveResult> {
  const fanoutName = functionNameOf(stage, 'fanout');
  const { QueueUrl } = await clients.sqs.send(new GetQueueUrlCommand({ QueueName: fanoutFailureQueueName(stage) }));
  const result: RedriveResult = { redriven: 0, covered: 0, skipped: 0, failed: 0 };
  const taken = () => result.redriven + result.covered + result.skipped + result.failed;
  // Messages dispatched again as a whole in this run: their other records need nothing more.
  const dispatchedWhole = new Set<string>();
  // A record left in the queue becomes visible again after the visibility timeout; one run does not
  // see it twice, because the loop ends on the first empty receive.
  while (taken() < max) {
    const { Messages = [] } = await clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl,
        MaxNumberOfMessages: Math.min(10, max - taken()),
        WaitTimeSeconds: 1,
        VisibilityTimeout: 120,
      }),
    );
    if (Messages.length === 0) break;
    for (const record of Messages) {
      let failure: FailedFanout;
      try {
        failure = readFailureRecord(record.Body, fanoutName);
      } catch (error) {
        result.skipped++;
        log(`left in the queue: ${record.MessageId} is not a fan-out failure record (${(error as Error).message.split('\n')[0]})`);
        continue;
      }
      const { message } = failure;
      const what = `${message.channel}#${message.seq}`;
      const part = failure.kind === 'shard' ? `shard ${failure.shard.index} of ${failure.shard.count} of ${what}` : what;
      if (dispatchedWhole.has(message.id)) {
        await clients.sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: record.ReceiptHandle }));
        result.covered++;
        log(`deleted: ${part}, its whole message was already dispatched again in this run`);
        continue;
      }
      let redriven;
      try {
        redriven = await invokeAgain(clients.lambda, fanoutName, failure);
      } catch (error) {
        result.failed++;
        log(`could not dispatch ${part} again (left in the queue): ${(error as Error).message}`);
        continue;
      }
      await clients.sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: record.ReceiptHandle }));
      result.redriven++;
      if (redriven.wholeMessage) dispatchedWhole.add(message.id);
      log(`dispatched again: ${part} ${redriven.where} (message ${message.id})`);
    }
  }
  return result;
}

export async function runRedrive(
  argv: readonly string[],
  output: { out(line: string): void; err(line: string): void },
  createClients: (region?: string) => RedriveClients = (region) => {
    const options = region ? { region } : {};
    return { sqs: new SQSClient(options), lambda: new LambdaClient(options) };
  },
): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      options: { stage: { type: 'string' }, region: { type: 'string' }, max: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (error) {
    output.err(`${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    output.out(HELP);
    return 0;
  }
  if (!values.stage || !isValidStageName(values.stage)) {
    output.err(`--stage is required (a valid stage name)\n\n${HELP}`);
    return 2;
  }
  const max = values.max === undefined ? Infinity : Number(values.max);
  if (!(Number.isInteger(max) || max === Infinity) || max < 1) {
    output.err(`--max must be a whole number >= 1, not "${values.max}"\n\n${HELP}`);
    return 2;
  }
  try {
    const result = await redrive(createClients(values.region), { stage: values.stage, max, log: output.out });
    const covered = result.covered > 0 ? ` (and ${result.covered} records deleted, covered by their whole message)` : '';
    output.out(`Dispatched again: ${result.redriven}${covered}; left in the queue: ${result.skipped + result.failed}.`);
    return result.skipped + result.failed > 0 ? 1 : 0;
  } catch (error) {
    output.err(`redrive failed: ${(error as Error).name}: ${(error as Error).message}`);
    return 1;
  }
}
