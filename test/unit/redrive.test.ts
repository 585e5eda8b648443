import { InvokeCommand, LambdaClient, ResourceNotFoundException, TooManyRequestsException } from '@aws-sdk/client-lambda';
import { DeleteMessageCommand, GetQueueUrlCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { runRedrive } from '../../infra/redrive/redrive.js';
import * as v1Rules from '../fixtures/v1/readerRules.js';
import { readFixture } from '../support/fixtures.js';

/**
 * `npm run redrive` dispatches again what Lambda put in fanout's on-failure queue: dispatch events
 * on `live`, shard events on the version they failed on, the whole message on `live` when that
 * version is gone. The SQS and Lambda APIs are mocked (aws-sdk-client-mock); the records are what
 * Lambda writes to an on-failure destination (test/fixtures/dispatch-record).
 */
const fixture = (name: string) => readFixture('dispatch-record', name);

const sqs = mockClient(SQSClient);
const lambda = mockClient(LambdaClient);
beforeEach(() => {
  sqs.reset();
  lambda.reset();
});

type QueuedRecord = { MessageId: string; ReceiptHandle: string; Body: string };
const queued = (id: string, record: unknown): QueuedRecord => ({ MessageId: id, ReceiptHandle: `r-${id}`, Body: JSON.stringify(record) });
/** The same failure, as if the invocation had named this function and qualifier. */
const invokedOn = (record: any, functionArn: string) => ({ ...record, requestContext: { ...record.requestContext, functionArn } });

async function run(queue: QueuedRecord[], ...argv: string[]) {
  const pending = [...queue];
  sqs.on(GetQueueUrlCommand).callsFake(({ QueueName }) => ({ QueueUrl: `https://sqs.local/123/${QueueName}` }));
  sqs.on(ReceiveMessageCommand).callsFake(({ MaxNumberOfMessages }) => ({ Messages: pending.splice(0, MaxNumberOfMessages) }));
  sqs.on(DeleteMessageCommand).resolves({});
  const out: string[] = [];
  const err: string[] = [];
  const code = await runRedrive(argv, { out: (l) => out.push(l), err: (l) => err.push(l) }, () => ({
    sqs: new SQSClient({ region: 'us-east-1' }),
    lambda: new LambdaClient({ region: 'us-east-1' }),
  }));
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const invokes = () =>
  lambda.commandCalls(InvokeCommand).map((call) => {
    const { Payload, ...input } = call.args[0].input;
    return { ...input, event: JSON.parse(Buffer.from(Payload as Uint8Array).toString()) };
  });
const deleted = () => sqs.commandCalls(DeleteMessageCommand).map((call) => call.args[0].input.ReceiptHandle);

describe('npm run redrive (SQS and Lambda APIs mocked)', () => {
  it('invokes fanout:live asynchronously with each original dispatch event, then deletes its record', async () => {
    const record = await fixture('fanout-failure-record.json');
    lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
    // Twelve records of twelve messages: more than one receive's worth.
    const queue = Array.from({ length: 12 }, (_, i) => {
      const message = { ...record.requestPayload.message, id: `0b6f2a4e-6a43-4f55-9d55-0a5e1f0c9b${String(i).padStart(2, '0')}`, seq: i + 1 };
      return queued(`m${i}`, { ...record, requestPayload: { ...record.requestPayload, message } });
    });

    const result = await run(queue, '--stage', 'prod');

    expect(result.code).toBe(0);
    expect(sqs.commandCalls(GetQueueUrlCommand)[0]!.args[0].input).toEqual({ QueueName: 'cablecar-prod-fanout-failures' });
    expect(invokes()).toHaveLength(12);
    expect(invokes()[0]).toEqual({
      FunctionName: 'cablecar-prod-fanout',
      Qualifier: 'live',
      InvocationType: 'Event',
      event: JSON.parse(queue[0]!.Body).requestPayload,
    });
    expect(deleted()).toEqual(queue.map((m) => m.ReceiptHandle));
    expect(result.out).toContain('Dispatched again: 12; left in the queue: 0.');
  });

  it('passes on fields of the event that a newer version added', async () => {
    const record = await fixture('fanout-failure-record.json');
    lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
    const newer = { ...record.requestPayload, v: 3, trace: 'abc' };
    await run([queued('newer', { ...record, requestPayload: newer })], '--stage', 'prod');
    expect(invokes()[0]!.event).toEqual(newer);
  });

  it('invokes a failed shard again on the version it failed on, never on live', async () => {
    const record = await fixture('shard-failure-record.json');
    lambda.on(InvokeCommand).resolves({ StatusCode: 202 });

    const result = await run([queued('shard', record)], '--stage', 'prod');

    expect(result.code).toBe(0);
    expect(invokes()).toEqual([{ FunctionName: 'cablecar-prod-fanout', Qualifier: '13', InvocationType: 'Event', event: record.requestPayload }]);
    expect(deleted()).toEqual(['r-shard']);
    expect(result.out).toContain('dispatched again: shard 3 of 8 of room-big#7 on version 13');
  });

  it('dispatches the whole message on live when the version of a failed shard is gone, once for all its shards', async () => {
    const record = await fixture('shard-failure-record.json');
    const otherShard = { ...record, requestPayload: { ...record.requestPayload, shard: { index: 5, count: 8 } } };
    lambda
      .on(InvokeCommand)
      .resolves({ StatusCode: 202 })
      .on(InvokeCommand, { Qualifier: '13' })
      .rejects(new ResourceNotFoundException({ message: 'Function not found: arn:aws:lambda:us-east-1:123456789012:function:cablecar-prod-fanout:13', $metadata: {} }));

    const result = await run([queued('shard-3', record), queued('shard-5', otherShard)], '--stage', 'prod');

    expect(result.code).toBe(0);
    const [onVersion, onLive, ...more] = invokes();
    expect(more).toEqual([]);
    expect(onVersion).toMatchObject({ Qualifier: '13', event: record.requestPayload });
    // A dispatch event of the message, which `live` of any version reads (version 1's rules).
    expect(onLive).toEqual({
      FunctionName: 'cablecar-prod-fanout',
      Qualifier: 'live',
      InvocationType: 'Event',
      event: { v: 1, message: record.requestPayload.shardOf },
    });
    expect(v1Rules.dispatchEvent.safeParse(onLive!.event).error).toBeUndefined();
    expect(deleted()).toEqual(['r-shard-3', 'r-shard-5']);
    expect(result.out).toContain('dispatched again: shard 3 of 8 of room-big#7 as its whole message on live (version 13 no longer exists)');
    expect(result.out).toContain('deleted: shard 5 of 8 of room-big#7, its whole message was already dispatched again in this run');
    expect(result.out).toContain('Dispatched again: 1 (and 1 records deleted, covered by their whole message); left in the queue: 0.');
  });

  it('dispatches the whole message on live for a shard record that names no version', async () => {
    const record = await fixture('shard-failure-record.json');
    lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
    const unqualified = invokedOn(record, 'arn:aws:lambda:us-east-1:123456789012:function:cablecar-prod-fanout:$LATEST');
    await run([queued('latest', unqualified)], '--stage', 'prod');
    expect(invokes()).toEqual([expect.objectContaining({ Qualifier: 'live', event: { v: 1, message: record.requestPayload.shardOf } })]);
  });

  it('leaves a shard in the queue when its version refuses for another reason (throttled): no whole-channel dispatch', async () => {
    const record = await fixture('shard-failure-record.json');
    lambda.on(InvokeCommand).rejects(new TooManyRequestsException({ message: 'Rate exceeded', $metadata: {} }));
    const result = await run([queued('shard', record)], '--stage', 'prod');
    expect(result.code).toBe(1);
    expect(invokes().map((invoke) => invoke.Qualifier)).toEqual(['13']);
    expect(deleted()).toEqual([]);
    expect(result.out).toContain('could not dispatch shard 3 of 8 of room-big#7 again (left in the queue): Rate exceeded');
  });

  it('leaves in the queue what is not a fan-out event, what another function wrote, and what could not be invoked, and exits 1', async () => {
    const record = await fixture('fanout-failure-record.json');
    const shard = await fixture('shard-failure-record.json');
    lambda.on(InvokeCommand).rejectsOnce(Object.assign(new Error('Rate exceeded'), { name: 'TooManyRequestsException' })).resolves({ StatusCode: 202 });
    const otherFunction = invokedOn(shard, 'arn:aws:lambda:us-east-1:123456789012:function:cablecar-dev-fanout:13');
    const result = await run(
      [
        { MessageId: 'bad', ReceiptHandle: 'r-bad', Body: '{"requestPayload":{"v":1}}' },
        { MessageId: 'not-json', ReceiptHandle: 'r-not-json', Body: 'RetriesExhausted' },
        queued('other-function', otherFunction),
        queued('throttled', record),
        queued('ok', record),
      ],
      '--stage',
      'prod',
    );
    expect(result.code).toBe(1);
    expect(deleted()).toEqual(['r-ok']);
    expect(result.out).toContain('left in the queue: bad is not a fan-out failure record');
    expect(result.out).toContain('left in the queue: not-json is not a fan-out failure record (its body is not JSON)');
    expect(result.out).toContain('left in the queue: other-function is not a fan-out failure record (it is a record of cablecar-dev-fanout, not of cablecar-prod-fanout)');
    expect(result.out).toContain('could not dispatch room-1#7 again (left in the queue): Rate exceeded');
    expect(result.out).toContain('Dispatched again: 1; left in the queue: 4.');
  });

  it('--max caps one run; a missing --stage is a usage error that calls no AWS API', async () => {
    const record = await fixture('fanout-failure-record.json');
    lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
    const queue = Array.from({ length: 5 }, (_, i) => queued(`m${i}`, record));
    expect((await run(queue, '--stage', 'prod', '--max', '3')).code).toBe(0);
    // The same message five times: dispatched once, the other two records taken are covered by it.
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(1);
    expect(deleted()).toEqual(['r-m0', 'r-m1', 'r-m2']);
    lambda.reset();
    sqs.reset();
    expect((await run([], '--max', '3')).code).toBe(2);
    expect(sqs.calls()).toHaveLength(0);
  });
});
