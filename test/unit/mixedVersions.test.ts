import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectionStore } from '../../functions/lib/stores/connectionStore.js';
import { DISPATCH_EVENT_VERSION, parseDispatchEvent, parseFanoutEvent, shardEvent } from '../../functions/lib/protocol/dispatchEvent.js';
import { channelKey, connectionKey, nowSeconds, tombstoneKey } from '../../functions/lib/stores/dynamoTable.js';
import { fanOut } from '../../functions/lib/delivery/fanOut.js';
import { messageStore } from '../../functions/lib/stores/messageStore.js';
import { createPool } from '../../functions/lib/stores/database.js';
import { subscriptionStore } from '../../functions/lib/stores/subscriptionStore.js';
import { migrate } from '../../infra/migrate.js';
import * as v1Rules from '../fixtures/v1/readerRules.js';
import { startDynamo, startPostgres, type TestDynamo, type TestPostgres } from '../support/databases.js';
import { readFixture } from '../support/fixtures.js';

/**
 * During a release two versions serve side by side and share the table and the dispatch events.
 * test/fixtures/v1 holds what version 1 writes and the rules a version-1 reader applies; these
 * tests hold the current code to both directions of that contract.
 */
const fixture = (name: string, version = 'v1') => readFixture(version, name);

let dynamo: TestDynamo;
let postgres: TestPostgres;
beforeAll(async () => {
  [dynamo, postgres] = await Promise.all([startDynamo(), startPostgres()]);
  await migrate(postgres.url, { kind: 'local' });
});
afterAll(async () => {
  await dynamo?.stop();
  await postgres?.stop();
});

/** Stores a version-1 item as it was written, with only its expiry moved into the future. */
async function storeV1(name: string): Promise<Record<string, any>> {
  const item = { ...(await fixture(name)), ttl: nowSeconds() + 3600 };
  await dynamo.tableRef.client.send(new PutCommand({ TableName: dynamo.tableName, Item: item }));
  return item;
}

describe('the current code reads what version 1 wrote', () => {
  it('finds a version-1 connection and its subscription, and removes both', async () => {
    const connection = await storeV1('connection-item.json');
    const subscription = await storeV1('subscription-item.json');
    const connections = connectionStore(dynamo.tableRef, { ttlSeconds: 7800 });
    const subscriptions = subscriptionStore(dynamo.tableRef);

    expect(await connections.get(connection.connectionId)).toMatchObject({ connectionId: connection.connectionId });
    const pages = [];
    for await (const page of subscriptions.subscriberPages(subscription.channel, 10)) pages.push(...page);
    expect(pages).toEqual([connection.connectionId]);

    expect(await connections.remove(connection.connectionId)).toBe(2);
    expect(await connections.get(connection.connectionId)).toBeUndefined();
  });

  it('fans a message out to a connection and subscription stored by version 1 (recording postToConnection)', async () => {
    const connection = await storeV1('connection-item.json');
    const subscription = await storeV1('subscription-item.json');
    const { message } = parseDispatchEvent(await fixture('dispatch-event.json'));
    const posted: Array<[string, string]> = [];

    const result = await fanOut(
      message,
      {
        subscriptions: subscriptionStore(dynamo.tableRef),
        connections: connectionStore(dynamo.tableRef, { ttlSeconds: 7800 }),
        postToConnection: async (id, frame) => {
          posted.push([id, frame]);
          return 'delivered';
        },
      },
      { concurrency: 4, pageSize: 10 },
    );

    expect(message.channel).toBe(subscription.channel);
    expect(result).toEqual({ delivered: 1, gone: 0, failed: 0, throttled: 0 });
    expect(posted.map(([id]) => id)).toEqual([connection.connectionId]);

    // A split fan-out reads the same items: exactly one of the shards holds the version-1 subscription.
    const perShard = [];
    for (let index = 0; index < 8; index++) {
      const ids = [];
      for await (const page of subscriptionStore(dynamo.tableRef).subscriberPages(subscription.channel, 10, { index, count: 8 })) ids.push(...page);
      perShard.push(...ids);
    }
    expect(perShard).toEqual([connection.connectionId]);
    expect(JSON.parse(posted[0]![1])).toEqual({ type: 'message', ...(await fixture('dispatch-event.json')).message });
  });

  it('accepts a version-1 dispatch event, and a later version that only adds fields', async () => {
    const v1 = await fixture('dispatch-event.json');
    expect(parseDispatchEvent(v1).message.seq).toBe(42);
    const later = { ...v1, v: 2, trace: 'abc', message: { ...v1.message, priority: 'high' } };
    expect(parseDispatchEvent(later).message).toMatchObject(v1.message);
    expect(() => parseDispatchEvent({ ...v1, message: { ...v1.message, seq: 'x' } })).toThrow(/not a dispatch event/);
    const { data: _data, ...withoutData } = v1.message;
    expect(() => parseDispatchEvent({ ...v1, message: withoutData })).toThrow(/data is required/);
    expect(parseDispatchEvent({ ...v1, message: { ...v1.message, data: null } }).message.data).toBeNull();
  });

  it('reads an event whose data is nested far deeper than zod or JSON.stringify could recurse (a SQL publisher can store that)', async () => {
    const v1 = await fixture('dispatch-event.json');
    const data = JSON.parse('['.repeat(20_000) + ']'.repeat(20_000));
    expect(parseDispatchEvent({ ...v1, message: { ...v1.message, data } }).message.data).toBe(data);
  });
});

describe('what the current code writes, version 1 can read', () => {
  it('stores connection and subscription items that pass the version-1 reader rules', async () => {
    const connections = connectionStore(dynamo.tableRef, { ttlSeconds: 7800 });
    // As $connect stores it now: with the token holder and its expiry, attributes version 1 ignores.
    const connection = await connections.add('current-conn-1', { sub: 'alice', tokenExpiresAt: nowSeconds() + 900 });
    expect(await connections.get('current-conn-1')).toMatchObject({ sub: 'alice', tokenExpiresAt: expect.any(Number) });
    await subscriptionStore(dynamo.tableRef).add('room-current', 'current-conn-1', connection.ttl);

    const get = async (pk: string, sk: string) =>
      (await dynamo.tableRef.client.send(new GetCommand({ TableName: dynamo.tableName, Key: { pk, sk } }))).Item;
    const connectionItem = await get(connectionKey('current-conn-1'), connectionKey('current-conn-1'));
    const subscriptionItem = await get(channelKey('room-current'), connectionKey('current-conn-1'));

    expect(v1Rules.connectionItem.safeParse(connectionItem).error).toBeUndefined();
    expect(connectionItem).toMatchObject({ v: 1, sub: 'alice' });
    expect(v1Rules.subscriptionItem.safeParse(subscriptionItem).error).toBeUndefined();
    // The rules can fail: an item without its expiry is refused.
    expect(v1Rules.subscriptionItem.safeParse({ ...subscriptionItem, ttl: undefined }).success).toBe(false);
  });

  it('with rev, the slot counter and tombstones: items still pass the version-1 rules, and no tombstone is under CHAN#', async () => {
    const connections = connectionStore(dynamo.tableRef, { ttlSeconds: 7800 });
    const subscriptions = subscriptionStore(dynamo.tableRef);
    const connection = await connections.add('current-conn-2');
    expect(await connections.reserveSubscription('current-conn-2', 100)).toBeDefined();
    await subscriptions.add('room-rev', 'current-conn-2', connection.ttl, { rev: 1, counted: true });
    await subscriptions.add('room-gone', 'current-conn-2', connection.ttl, { rev: 2 });
    await subscriptions.recordUnsubscribe('room-gone', 'current-conn-2', 3, connection.ttl);
    await subscriptions.remove('room-gone', 'current-conn-2', { rev: 3 });

    const get = async (pk: string, sk: string) =>
      (await dynamo.tableRef.client.send(new GetCommand({ TableName: dynamo.tableName, Key: { pk, sk } }))).Item;
    const connectionItem = await get(connectionKey('current-conn-2'), connectionKey('current-conn-2'));
    expect(connectionItem).toMatchObject({ subscriptionCount: 1 });
    expect(v1Rules.connectionItem.safeParse(connectionItem).error).toBeUndefined();
    const subscriptionItem = await get(channelKey('room-rev'), connectionKey('current-conn-2'));
    expect(subscriptionItem).toMatchObject({ rev: 1, counted: true });
    expect(v1Rules.subscriptionItem.safeParse(subscriptionItem).error).toBeUndefined();

    // Version 1's fan-out posts to every live item under CHAN#<channel>: the unsubscribed channel has none.
    const underChannel = await dynamo.tableRef.client.send(
      new QueryCommand({ TableName: dynamo.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': channelKey('room-gone') } }),
    );
    expect(underChannel.Items).toEqual([]);
    expect(await get(tombstoneKey('room-gone'), connectionKey('current-conn-2'))).toMatchObject({ rev: 3 });
  });

  it('dispatches events (cablecar.dispatch_event) that pass the version-1 reader rules', async () => {
    const pool = createPool({ connectionString: postgres.url });
    try {
      const published = await messageStore(pool).publish('room-current', JSON.stringify({ b: 1, a: [true, null] }));
      const client = new pg.Client({ connectionString: postgres.url });
      await client.connect();
      const { rows } = await client.query('SELECT cablecar.dispatch_event($1) AS event', [published.id]);
      await client.end();
      const event = rows[0].event;
      expect(v1Rules.dispatchEvent.safeParse(event).error).toBeUndefined();
      expect(event).toEqual({
        v: DISPATCH_EVENT_VERSION,
        message: { id: published.id, channel: 'room-current', seq: published.seq, data: { b: 1, a: [true, null] }, publishedAt: expect.any(String) },
      });
    } finally {
      await pool.end();
    }
  });
});

describe('version 2: the shard event of a split fan-out (test/fixtures/v2)', () => {
  it('is read by the current code as one shard of the message, also with fields a later version adds', async () => {
    const event = await fixture('shard-event.json', 'v2');
    expect(parseFanoutEvent(event)).toEqual({ kind: 'shard', message: event.shardOf, shard: { index: 3, count: 8 } });
    const later = { ...event, v: 3, trace: 'abc', shardOf: { ...event.shardOf, priority: 'high' } };
    expect(parseFanoutEvent(later)).toMatchObject({ kind: 'shard', shard: { index: 3, count: 8 } });
    expect(() => parseFanoutEvent({ ...event, shard: { index: 8, count: 8 } })).toThrow(/not a shard event/);
    expect(() => parseFanoutEvent({ ...event, shard: undefined })).toThrow(/not a shard event/);
  });

  it('is what the current code writes', async () => {
    const event = await fixture('shard-event.json', 'v2');
    expect(JSON.parse(JSON.stringify(shardEvent(event.shardOf, event.shard)))).toEqual(event);
  });

  it('is refused by version 1 (it carries no `message`), so a version-1 fanout never delivers a shard as a whole channel', async () => {
    const event = await fixture('shard-event.json', 'v2');
    expect(v1Rules.dispatchEvent.safeParse(event).success).toBe(false);
    expect(() => parseDispatchEvent(event)).toThrow(/not a dispatch event/);
  });

  it('leaves the version-1 dispatch event a whole-channel dispatch', async () => {
    const v1 = await fixture('dispatch-event.json');
    expect(parseFanoutEvent(v1)).toEqual({ kind: 'dispatch', message: v1.message });
  });
});
