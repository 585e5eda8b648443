/**
 * `npm run redrive -- --stage <stage> [--region r] [--max n]`: dispatches again what landed in the
 * fanout's on-failure queue. Lambda writes there an invocation record for each asynchronous fan-out
 * that failed after its retries (or outlived the maximum event age); its `requestPayload` is the
 * original dispatch event. Each one is invoked again on fanout:live (asynchronously, as PostgreSQL
 * does) and deleted from the queue only once that invoke was accepted; a record that is not a
 * dispatch event is left in the queue and reported.
 */
import { parseArgs } from 'node:util';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { DeleteMessageCommand, GetQueueUrlCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { asyncFanoutInvocation } from '../../functions/lib/dispatch/fanoutInvocation.js';
import { parseDispatchEvent } from '../../functions/lib/protocol/dispatchEvent.js';
import { isValidStageName, LIVE_ALIAS, stackNameOf } from '../release/stageResources.js';

export const fanoutFailureQueueName = (stage: string) => `${stackNameOf(stage)}-fanout-failures`;

export interface RedriveClients {
  sqs: SQSClient;
  lambda: LambdaClient;
}

export interface RedriveResult {
  redriven: number;
  skipped: number;
  failed: number;
}

export const HELP = `Usage: npm run redrive -- --stage <stage> [--region <region>] [--max <n>]

Dispatches again every fan-out that failed after Lambda's retries: reads the queue
${fanoutFailureQueueName('<stage>')} (the fanout's on-failure destination), invokes
${stackNameOf('<stage>')}-fanout:${LIVE_ALIAS} asynchronously with each original event, and deletes the record once
the invoke was accepted. --max caps how many records one run takes (default: until the queue is empty).
Records that are not dispatch events are left in the queue and reported.

Exit status: 0 done, 1 some records failed or were left, 2 usage error.`;

export async function redrive(
  clients: RedriveClients,
  { stage, max = Infinity, log = () => {} }: { stage: string; max?: number; log?: (line: string) => void },
): Promise<RedriveResult> {
  const { QueueUrl } = await clients.sqs.send(new GetQueueUrlCommand({ QueueName: fanoutFailureQueueName(stage) }));
  const result: RedriveResult = { redriven: 0, skipped: 0, failed: 0 };
  // A record left in the queue becomes visible again after the visibility timeout; one run does not
  // see it twice, because the loop ends on the first empty receive.
  while (result.redriven + result.skipped + result.failed < max) {
    const { Messages = [] } = await clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl,
        MaxNumberOfMessages: Math.min(10, max - (result.redriven + result.skipped + result.failed)),
        WaitTimeSeconds: 1,
        VisibilityTimeout: 120,
      }),
    );
    if (Messages.length === 0) break;
    for (const record of Messages) {
      let event;
      try {
        event = parseDispatchEvent((JSON.parse(record.Body ?? '') as { requestPayload?: unknown }).requestPayload);
      } catch (error) {
        result.skipped++;
        log(`left in the queue: ${record.MessageId} is not a fan-out failure record (${(error as Error).message.split('\n')[0]})`);
        continue;
      }
      const what = `${event.message.channel}#${event.message.seq}`;
      try {
        await clients.lambda.send(new InvokeCommand(asyncFanoutInvocation(`${stackNameOf(stage)}-fanout`, LIVE_ALIAS, event)));
      } catch (error) {
        result.failed++;
        log(`could not dispatch ${what} again (left in the queue): ${(error as Error).message}`);
        continue;
      }
      await clients.sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: record.ReceiptHandle }));
      result.redriven++;
      log(`dispatched again: ${what} (message ${event.message.id})`);
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
    output.out(`Dispatched again: ${result.redriven}; left in the queue: ${result.skipped + result.failed}.`);
    return result.skipped + result.failed > 0 ? 1 : 0;
  } catch (error) {
    output.err(`redrive failed: ${(error as Error).name}: ${(error as Error).message}`);
    return 1;
  }
}
