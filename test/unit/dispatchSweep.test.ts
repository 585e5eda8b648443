import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepUnfinishedDispatches } from '../../functions/lib/dispatch/dispatchSweep.js';
import { parseDispatchEvent } from '../../functions/lib/protocol/dispatchEvent.js';
import { createPool } from '../../functions/lib/stores/database.js';
import { dispatchRecordStore } from '../../functions/lib/stores/dispatchRecordStore.js';
import { messageStore, type MessageStore } from '../../functions/lib/stores/messageStore.js';
import { migrate } from '../../infra/migrate.js';
import { startDynamo, startPostgres, type TestDynamo, type TestPostgres } from '../support/databases.js';

/**
 * On AWS nothing dispatched is lost: fanout records its completion (DynamoDB), the sweep dispatches
 * again what has no record (real PostgreSQL and dynalite; the re-dispatch is a recorded function).
 * The redrive command, the other net, is tested in redrive.test.ts.
 */
const fixture = async (name: string, folder = 'dispatch-record') => JSON.parse(await readFile(join(import.meta.dirname, '..', 'fixtures', folder, name), 'utf8'));

let postgres: TestPostgres;
let dynamo: TestDynamo;
let pool: pg.Pool;
let store: MessageStore;

beforeAll(async () => {
  [postgres, dynamo] = await Promise.all([startPostgres(), startDynamo()]);
  await migrate(postgres.url, { kind: 'local' });
  pool = createPool({ connectionString: postgres.url, max: 2 });
  store = messageStore(pool);
});
afterAll(async () => {
  await pool?.end();
  await Promise.all([postgres?.stop(), dynamo?.stop()]);
});

describe('the sweep (AWS)', () => {
  it('dispatches again, with their dispatch events, exactly the messages in its window that have no completion record', async () => {
    const records = dispatchRecordStore(dynamo.tableRef);
    const published = [];
    for (let i = 0; i < 5; i++) published.push(await store.publish('sweep-a', JSON.stringify({ i })));
    const tooNew = await store.publish('sweep-a', '"too new"');
    await pool.query(`UPDATE cablecar.messages SET published_at = now() - interval '20 minutes' WHERE id <> $1`, [tooNew.id]);
    const tooOld = await store.publish('sweep-old', '"too old"');
    await pool.query(`UPDATE cablecar.messages SET published_at = now() - interval '2 days' WHERE id = $1`, [tooOld.id]);
    // Fan-out completed for seqs 1, 3 and 5.
    for (const message of [published[0]!, published[2]!, published[4]!]) await records.recordCompleted(message);

    const dispatched: unknown[] = [];
    const result = await sweepUnfinishedDispatches(
      { messages: store, dispatchRecords: records, dispatch: async (event) => void dispatched.push(event) },
      { graceSeconds: 600, windowSeconds: 6 * 3600, limit: 100 },
    );

    expect(result).toEqual({ checked: 5, redispatched: 2, failed: 0 });
    expect(dispatched.map((event) => parseDispatchEvent(event).message.seq)).toEqual([2, 4]);
    expect(parseDispatchEvent(dispatched[0]).message).toMatchObject({ id: published[1]!.id, channel: 'sweep-a', data: { i: 1 } });
  });

  it('pages through the whole window: every unfinished message is found, however many come before it', async () => {
    const records = dispatchRecordStore(dynamo.tableRef);
    const published: Array<{ id: string; channel: string; seq: number }> = [];
    for (let i = 0; i < 7; i++) published.push(await store.publish(i % 2 ? 'sweep-page-b' : 'sweep-page-a', JSON.stringify({ i })));
    await pool.query(`UPDATE cablecar.messages SET published_at = now() - interval '30 minutes' WHERE channel LIKE 'sweep-page-%'`);
    for (const message of published.slice(0, 6)) await records.recordCompleted(message);
    const own = (rows: Awaited<ReturnType<MessageStore['publishedBetween']>>) => rows.filter((r) => published.some((p) => p.id === r.id));

    const dispatched: unknown[] = [];
    const result = await sweepUnfinishedDispatches(
      {
        messages: { publishedBetween: async (o) => own(await store.publishedBetween(o)) },
        dispatchRecords: records,
        dispatch: async (event) => void dispatched.push(event),
      },
      { graceSeconds: 600, windowSeconds: 3600, limit: 2 },
    );

    expect(result).toEqual({ checked: 7, redispatched: 1, failed: 0 });
    expect(dispatched.map((event) => parseDispatchEvent(event).message.id)).toEqual([published[6]!.id]);
  });

  it('reads a version-1 completion record (test/fixtures/dispatch-record/v1.json) by its key alone', async () => {
    const item = await fixture('v1.json');
    await dynamo.tableRef.client.send(new PutCommand({ TableName: dynamo.tableName, Item: { ...item, extra: 'from a newer writer' } }));
    const id = String(item.pk).slice('DISPATCH#'.length);
    expect(await dispatchRecordStore(dynamo.tableRef).completed([id, 'a2c4e0a8-0000-4000-8000-000000000000'])).toEqual(new Set([id]));
  });

  it('writes and reads the records of a split message as test/fixtures/v2 holds them', async () => {
    const records = dispatchRecordStore(dynamo.tableRef);
    const [dispatchRecord, shardRecord] = [await fixture('dispatch-record-split.json', 'v2'), await fixture('shard-record.json', 'v2')];
    const id = String(dispatchRecord.pk).slice('DISPATCH#'.length);
    const message = { id, channel: dispatchRecord.channel, seq: dispatchRecord.seq };
    await records.recordCompleted(message, { shardsStarted: 1 });
    await records.recordShardCompleted(message, { index: 1, count: 2 });
    const stored = async (key: string) => (await dynamo.tableRef.client.send(new GetCommand({ TableName: dynamo.tableName, Key: { pk: key, sk: key } }))).Item;
    const times = { completedAt: expect.any(Number), ttl: expect.any(Number) };
    expect(await stored(dispatchRecord.pk)).toEqual({ ...dispatchRecord, ...times });
    expect(await stored(shardRecord.pk)).toEqual({ ...shardRecord, ...times });
    expect(await records.completed([id])).toEqual(new Set([id]));
  });

  it('counts a split message as completed only once every other shard recorded its part, and dispatches it again until then', async () => {
    const records = dispatchRecordStore(dynamo.tableRef);
    const message = await store.publish('sweep-split', '"big"');
    await pool.query(`UPDATE cablecar.messages SET published_at = now() - interval '20 minutes' WHERE id = $1`, [message.id]);
    const sweepThis = async () => {
      const dispatched: unknown[] = [];
      await sweepUnfinishedDispatches(
        {
          messages: { publishedBetween: (o) => store.publishedBetween(o).then((rows) => rows.filter((r) => r.id === message.id)) },
          dispatchRecords: records,
          dispatch: async (event) => void dispatched.push(event),
        },
        { graceSeconds: 600, windowSeconds: 3600, limit: 100 },
      );
      return dispatched.map((event) => parseDispatchEvent(event).message.id);
    };

    // A fast shard finished before the dispatch recorded anything: not complete.
    await records.recordShardCompleted(message, { index: 2, count: 4 });
    expect(await records.completed([message.id])).toEqual(new Set());
    // The dispatch (shard 0, three others started) is done, shard 3 of 4 failed: still not complete, dispatched again.
    await records.recordCompleted(message, { shardsStarted: 3 });
    await records.recordShardCompleted(message, { index: 1, count: 4 });
    await records.recordShardCompleted(message, { index: 3, count: 8 });
    expect(await records.completed([message.id])).toEqual(new Set());
    expect(await sweepThis()).toEqual([message.id]);
    // Shard 3 of 4 done (the redriven shard, say): complete, the sweep leaves it.
    await records.recordShardCompleted(message, { index: 3, count: 4 });
    expect(await records.completed([message.id])).toEqual(new Set([message.id]));
    expect(await sweepThis()).toEqual([]);
  });

  it('counts a re-dispatch of a split message by its own split: whole (no shards) or into another count', async () => {
    const records = dispatchRecordStore(dynamo.tableRef);
    const [whole, resplit] = [await store.publish('sweep-resplit', '1'), await store.publish('sweep-resplit', '2')];
    for (const message of [whole, resplit]) await records.recordCompleted(message, { shardsStarted: 7 });
    expect(await records.completed([whole.id, resplit.id])).toEqual(new Set());
    // The channel shrank: the re-dispatch delivered it whole (started no shard).
    await records.recordCompleted(whole, { shardsStarted: 0 });
    // Another version splits into 2: its one other shard is what counts, not the 7 of 8 missing.
    await records.recordCompleted(resplit, { shardsStarted: 1 });
    await records.recordShardCompleted(resplit, { index: 1, count: 2 });
    expect(await records.completed([whole.id, resplit.id])).toEqual(new Set([whole.id, resplit.id]));
  });

  it('reads the records of more messages and shards than one BatchGetItem takes', async () => {
    const records = dispatchRecordStore(dynamo.tableRef);
    const messages = [];
    for (let i = 0; i < 15; i++) messages.push(await store.publish('sweep-many', String(i)));
    // 15 messages split into 8: 105 shard records to read, all done but the last message's shard 7.
    for (const [i, message] of messages.entries()) {
      await records.recordCompleted(message, { shardsStarted: 7 });
      for (let index = 1; index < 8; index++) if (i < 14 || index < 7) await records.recordShardCompleted(message, { index, count: 8 });
    }
    const done = await records.completed(messages.map((m) => m.id));
    expect(done).toEqual(new Set(messages.slice(0, 14).map((m) => m.id)));
  });

  it('counts a re-dispatch that fails, and leaves it for the next run', async () => {
    const message = await store.publish('sweep-fail', '1');
    await pool.query(`UPDATE cablecar.messages SET published_at = now() - interval '20 minutes' WHERE id = $1`, [message.id]);
    const result = await sweepUnfinishedDispatches(
      {
        messages: { publishedBetween: (o) => store.publishedBetween(o).then((rows) => rows.filter((r) => r.id === message.id)) },
        dispatchRecords: dispatchRecordStore(dynamo.tableRef),
        dispatch: async () => {
          throw new Error('TooManyRequestsException');
        },
      },
      { graceSeconds: 600, windowSeconds: 3600, limit: 100 },
    );
    expect(result).toEqual({ checked: 1, redispatched: 0, failed: 1 });
  });
});
