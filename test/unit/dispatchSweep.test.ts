import { DeleteCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepUnfinishedDispatches, type DispatchSweepDeps } from '../../functions/lib/dispatch/dispatchSweep.js';
import { parseDispatchEvent } from '../../functions/lib/protocol/dispatchEvent.js';
import { createPool } from '../../functions/lib/stores/database.js';
import { dispatchKey, dispatchRecordStore } from '../../functions/lib/stores/dispatchRecordStore.js';
import { messageStore, type MessageStore } from '../../functions/lib/stores/messageStore.js';
import { migrate } from '../../infra/migrate.js';
import { startDynamo, startPostgres, type TestDynamo, type TestPostgres } from '../support/databases.js';
import { readFixture } from '../support/fixtures.js';

/**
 * On AWS nothing dispatched is lost: fanout records its completion (DynamoDB), the sweep dispatches
 * again what has no record (real PostgreSQL and dynalite; the re-dispatch is a recorded function).
 * The redrive command, the other net, is tested in redrive.test.ts.
 */
const fixture = (name: string, folder = 'dispatch-record') => readFixture(folder, name);

let postgres: TestPostgres;
let dynamo: TestDynamo;
let pool: pg.Pool;
let store: MessageStore;
const pools: pg.Pool[] = [];

beforeAll(async () => {
  [postgres, dynamo] = await Promise.all([startPostgres(), startDynamo()]);
  await migrate(postgres.url, { kind: 'local' });
  pool = createPool({ connectionString: postgres.url, max: 2 });
  pools.push(pool);
  store = messageStore(pool);
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await Promise.all([postgres?.stop(), dynamo?.stop()]);
});

/** The sweep's view of the file's database narrowed to these messages (the database holds other tests' too). */
const onlyThese = (ids: readonly string[]): DispatchSweepDeps['messages'] => ({
  unconfirmedBetween: async (options) => (await store.unconfirmedBetween(options)).filter((r) => ids.includes(r.id)),
  confirmFanouts: (messageIds) => store.confirmFanouts(messageIds),
});

/** A database of its own, migrated: for a test that counts everything the sweep reads in its window. */
async function ownDatabase(name: string) {
  const url = await postgres.createDatabase(name);
  await migrate(url, { kind: 'local' });
  const own = createPool({ connectionString: url, max: 2 });
  pools.push(own);
  return { pool: own, store: messageStore(own) };
}

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

    expect(result).toEqual({ checked: 5, redispatched: 2, failed: 0, confirmed: 3 });
    expect(dispatched.map((event) => parseDispatchEvent(event).message.seq)).toEqual([2, 4]);
    expect(parseDispatchEvent(dispatched[0]).message).toMatchObject({ id: published[1]!.id, channel: 'sweep-a', data: { i: 1 } });
  });

  it('pages through the whole window: every unfinished message is found, however many come before it', async () => {
    const records = dispatchRecordStore(dynamo.tableRef);
    const published: Array<{ id: string; channel: string; seq: number }> = [];
    for (let i = 0; i < 7; i++) published.push(await store.publish(i % 2 ? 'sweep-page-b' : 'sweep-page-a', JSON.stringify({ i })));
    await pool.query(`UPDATE cablecar.messages SET published_at = now() - interval '30 minutes' WHERE channel LIKE 'sweep-page-%'`);
    for (const message of published.slice(0, 6)) await records.recordCompleted(message);

    const dispatched: unknown[] = [];
    const result = await sweepUnfinishedDispatches(
      {
        messages: onlyThese(published.map((p) => p.id)),
        dispatchRecords: records,
        dispatch: async (event) => void dispatched.push(event),
      },
      { graceSeconds: 600, windowSeconds: 3600, limit: 2 },
    );

    expect(result).toEqual({ checked: 7, redispatched: 1, failed: 0, confirmed: 6 });
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
          messages: onlyThese([message.id]),
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
        messages: onlyThese([message.id]),
        dispatchRecords: dispatchRecordStore(dynamo.tableRef),
        dispatch: async () => {
          throw new Error('TooManyRequestsException');
        },
      },
      { graceSeconds: 600, windowSeconds: 3600, limit: 100 },
    );
    expect(result).toEqual({ checked: 1, redispatched: 0, failed: 1, confirmed: 0 });
  });
});

/**
 * What a run reads scales with what is unconfirmed, not with the traffic: each of these tests has a
 * database of its own, so `checked` counts every message the sweep read from PostgreSQL (and asked
 * DynamoDB about) in its window.
 */
describe('the sweep confirms what it found complete (AWS)', () => {
  const records = () => dispatchRecordStore(dynamo.tableRef);
  /** One run over the whole window; the seqs it dispatched again. */
  async function sweep(
    messages: MessageStore,
    { dispatch = async () => {}, limit = 100, outOfTime }: { dispatch?: (event: unknown) => Promise<void>; limit?: number; outOfTime?: () => boolean } = {},
  ) {
    const dispatched: number[] = [];
    const result = await sweepUnfinishedDispatches(
      {
        messages,
        dispatchRecords: records(),
        dispatch: async (event) => {
          dispatched.push(parseDispatchEvent(event).message.seq);
          await dispatch(event);
        },
      },
      { graceSeconds: 600, windowSeconds: 6 * 3600, limit, ...(outOfTime ? { outOfTime } : {}) },
    );
    return { ...result, dispatched };
  }
  const confirmedSeqs = async (db: pg.Pool) =>
    (await db.query<{ seq: string }>('SELECT seq FROM cablecar.messages WHERE fanout_confirmed_at IS NOT NULL ORDER BY seq')).rows.map((r) => Number(r.seq));
  const forgetRecord = (id: string) => dynamo.tableRef.client.send(new DeleteCommand({ TableName: dynamo.tableName, Key: { pk: dispatchKey(id), sk: dispatchKey(id) } }));

  it('never reads a confirmed message again: the next run checks only the unfinished one, and leaves the confirmed alone even once their records are gone', async () => {
    const { pool: db, store: messages } = await ownDatabase('sweep_confirms');
    const [first, second] = [await messages.publish('c', '1'), await messages.publish('c', '2')];
    await messages.publish('c', '3');
    await db.query(`UPDATE cablecar.messages SET published_at = now() - interval '20 minutes'`);
    for (const message of [first, second]) await records().recordCompleted(message);

    expect(await sweep(messages)).toEqual({ checked: 3, redispatched: 1, failed: 0, confirmed: 2, dispatched: [3] });
    expect(await confirmedSeqs(db)).toEqual([1, 2]);
    // Their records expire after DISPATCH_RECORD_TTL_SECONDS: a sweep that still read these
    // messages would now take them for lost and dispatch them again.
    await Promise.all([forgetRecord(first.id), forgetRecord(second.id)]);
    expect(await sweep(messages)).toEqual({ checked: 1, redispatched: 1, failed: 0, confirmed: 0, dispatched: [3] });
  });

  it('checks an unfinished message at every run, a failed re-dispatch included, until its fan-out records completion; then confirms it', async () => {
    const { pool: db, store: messages } = await ownDatabase('sweep_unfinished');
    const lost = await messages.publish('u', '"lost"');
    await db.query(`UPDATE cablecar.messages SET published_at = now() - interval '20 minutes'`);
    const refused = async () => {
      throw new Error('TooManyRequestsException');
    };

    expect(await sweep(messages, { dispatch: refused })).toEqual({ checked: 1, redispatched: 0, failed: 1, confirmed: 0, dispatched: [1] });
    // Dispatched again, but that fan-out is lost too (no record): still checked at the next run.
    expect(await sweep(messages)).toEqual({ checked: 1, redispatched: 1, failed: 0, confirmed: 0, dispatched: [1] });
    expect(await sweep(messages)).toEqual({ checked: 1, redispatched: 1, failed: 0, confirmed: 0, dispatched: [1] });
    expect(await confirmedSeqs(db)).toEqual([]);
    // The last re-dispatch's fan-out completes: the next run confirms it, and then nothing is left to read.
    await records().recordCompleted(lost);
    expect(await sweep(messages)).toEqual({ checked: 1, redispatched: 0, failed: 0, confirmed: 1, dispatched: [] });
    expect(await confirmedSeqs(db)).toEqual([1]);
    expect(await sweep(messages)).toEqual({ checked: 0, redispatched: 0, failed: 0, confirmed: 0, dispatched: [] });
  });

  it('works through a backlog bigger than one run can check, oldest first: each run starts where the last one stopped', async () => {
    const { pool: db, store: messages } = await ownDatabase('sweep_backlog');
    for (let i = 1; i <= 5; i++) await records().recordCompleted(await messages.publish('b', String(i)));
    await db.query(`UPDATE cablecar.messages SET published_at = now() - interval '1 hour' + seq * interval '1 second'`);
    // Time for one page of 2 per run.
    const onePage = { limit: 2, outOfTime: () => true };

    expect(await sweep(messages, onePage)).toMatchObject({ checked: 2, confirmed: 2 });
    expect(await confirmedSeqs(db)).toEqual([1, 2]);
    expect(await sweep(messages, onePage)).toMatchObject({ checked: 2, confirmed: 2 });
    expect(await confirmedSeqs(db)).toEqual([1, 2, 3, 4]);
    expect(await sweep(messages, onePage)).toMatchObject({ checked: 1, confirmed: 1 });
    expect(await sweep(messages, onePage)).toMatchObject({ checked: 0, confirmed: 0 });
  });

  it('keeps the first confirmation: confirming again (a second sweep at the same time) changes nothing', async () => {
    const { pool: db, store: messages } = await ownDatabase('sweep_twice');
    const message = await messages.publish('t', '1');
    expect(await messages.confirmFanouts([message.id])).toBe(1);
    const at = async () => (await db.query('SELECT fanout_confirmed_at FROM cablecar.messages')).rows[0].fanout_confirmed_at;
    const first = await at();
    expect(first).toBeInstanceOf(Date);
    expect(await messages.confirmFanouts([message.id, message.id])).toBe(0);
    expect(await at()).toEqual(first);
    expect(await messages.confirmFanouts([])).toBe(0);
  });

  it('reads a page as one range of the unconfirmed messages\' index, in its order: no scan of the table, no sort, about `limit` rows', async () => {
    const { pool: db, store: messages } = await ownDatabase('sweep_plan');
    for (let i = 0; i < 300; i++) await messages.publish(`p${i % 3}`, String(i));
    await db.query(`UPDATE cablecar.messages SET published_at = now() - interval '1 hour' + seq * interval '1 second'`);
    await db.query(`UPDATE cablecar.messages SET fanout_confirmed_at = now() WHERE seq % 10 <> 0`);
    await db.query('VACUUM ANALYZE cablecar.messages');
    // The store's own statements, captured on their way to PostgreSQL, then explained with their parameters.
    const sent: Array<{ text: string; values: unknown[] }> = [];
    const recording = new Proxy(db, {
      get: (target, name) =>
        name === 'query' ? (text: string, values: unknown[]) => (sent.push({ text, values }), target.query(text, values)) : Reflect.get(target, name),
    });
    const pages = messageStore(recording);
    const first = await pages.unconfirmedBetween({ olderThanSeconds: 600, withinSeconds: 6 * 3600, limit: 4 });
    await pages.unconfirmedBetween({ olderThanSeconds: 600, withinSeconds: 6 * 3600, limit: 4, after: first.at(-1)!.cursor });
    expect(sent).toHaveLength(2);

    type PlanNode = { 'Node Type': string; 'Index Name'?: string; 'Index Cond'?: string; 'Actual Rows': number; Plans?: PlanNode[] };
    const nodes = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(nodes)];
    for (const [page, { text, values }] of sent.entries()) {
      const plan = nodes((await db.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values)).rows[0]['QUERY PLAN'][0].Plan);
      expect(plan.map((node) => node['Node Type']), text).not.toContain('Seq Scan');
      expect(plan.map((node) => node['Node Type']), text).not.toContain('Sort');
      const scan = plan.find((node) => node['Index Name'] === 'messages_fanout_unconfirmed');
      // The window's bounds, and on later pages the cursor, bound the scan itself rather than filter it.
      expect(scan?.['Index Cond'], text).toMatch(page === 0 ? /published_at >= \(now\(\)/ : /ROW\(published_at, channel, seq\) > ROW\(/);
      expect(scan!['Actual Rows']).toBe(4);
    }
  });
});
