import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectionStore, type ConnectionStore } from '../../functions/lib/stores/connectionStore.js';
import { BY_CONNECTION_INDEX, ITEM_SCHEMA_VERSION, nowSeconds } from '../../functions/lib/stores/dynamoTable.js';
import { subscriptionStore, type SubscriptionStore } from '../../functions/lib/stores/subscriptionStore.js';
import { startDynamo, type TestDynamo } from '../support/databases.js';

/** connectionStore and subscriptionStore against the DynamoDB API (dynalite) with the real table definition. */
const TTL_SECONDS = 2 * 60 * 60 + 10 * 60;
let dynamo: TestDynamo;
let connections: ConnectionStore;
let subscriptions: SubscriptionStore;

beforeAll(async () => {
  dynamo = await startDynamo();
  connections = connectionStore(dynamo.tableRef, { ttlSeconds: TTL_SECONDS });
  subscriptions = subscriptionStore(dynamo.tableRef);
});
afterAll(async () => {
  await dynamo?.stop();
});

const getItem = async (pk: string, sk: string) =>
  (await dynamo.tableRef.client.send(new GetCommand({ TableName: dynamo.tableName, Key: { pk, sk }, ConsistentRead: true }))).Item;

const putItem = (item: Record<string, unknown>) => dynamo.tableRef.client.send(new PutCommand({ TableName: dynamo.tableName, Item: item }));

async function allSubscribers(channel: string, pageSize = 100): Promise<{ pages: string[][]; ids: string[] }> {
  const pages: string[][] = [];
  for await (const page of subscriptions.subscriberPages(channel, pageSize)) pages.push(page);
  return { pages, ids: pages.flat().sort() };
}

describe('connectionStore', () => {
  it('adds a connection with a ttl of connectedAt + ttlSeconds and gets it back', async () => {
    const before = nowSeconds();
    const added = await connections.add('conn-add');
    const after = nowSeconds();
    expect(added.connectionId).toBe('conn-add');
    expect(added.connectedAt).toBeGreaterThanOrEqual(before);
    expect(added.connectedAt).toBeLessThanOrEqual(after);
    expect(added.ttl).toBe(added.connectedAt + TTL_SECONDS);
    expect(await connections.get('conn-add')).toEqual(added);
  });

  it('stores the item under CONN#<id> with schema version 1', async () => {
    const added = await connections.add('conn-item');
    expect(ITEM_SCHEMA_VERSION).toBe(1);
    expect(await getItem('CONN#conn-item', 'CONN#conn-item')).toEqual({
      pk: 'CONN#conn-item',
      sk: 'CONN#conn-item',
      v: 1,
      connectionId: 'conn-item',
      connectedAt: added.connectedAt,
      ttl: added.ttl,
    });
  });

  it('answers undefined for an unknown connection', async () => {
    expect(await connections.get('never-connected')).toBeUndefined();
  });

  it('ignores an expired connection that DynamoDB has not deleted yet', async () => {
    const now = nowSeconds();
    await putItem({ pk: 'CONN#conn-expired', sk: 'CONN#conn-expired', v: 1, connectionId: 'conn-expired', connectedAt: now - 9000, ttl: now - 1 });
    expect(await getItem('CONN#conn-expired', 'CONN#conn-expired')).toBeDefined();
    expect(await connections.get('conn-expired')).toBeUndefined();
    // Expiring exactly now counts as expired; a second later is still live.
    await putItem({ pk: 'CONN#conn-edge', sk: 'CONN#conn-edge', v: 1, connectionId: 'conn-edge', connectedAt: now, ttl: now });
    expect(await connections.get('conn-edge')).toBeUndefined();
    await putItem({ pk: 'CONN#conn-live', sk: 'CONN#conn-live', v: 1, connectionId: 'conn-live', connectedAt: now, ttl: now + 60 });
    expect(await connections.get('conn-live')).toEqual({ connectionId: 'conn-live', connectedAt: now, ttl: now + 60 });
  });

  it('ignores an item without a numeric ttl', async () => {
    await putItem({ pk: 'CONN#conn-no-ttl', sk: 'CONN#conn-no-ttl', v: 1, connectionId: 'conn-no-ttl', connectedAt: nowSeconds() });
    expect(await connections.get('conn-no-ttl')).toBeUndefined();
  });

  it('remove deletes the connection and its subscriptions in every channel, through the byConnection index', async () => {
    const leaving = await connections.add('conn-leaving');
    const staying = await connections.add('conn-staying');
    for (const channel of ['rm-a', 'rm-b', 'rm-c']) {
      await subscriptions.add(channel, 'conn-leaving', leaving.ttl);
      await subscriptions.add(channel, 'conn-staying', staying.ttl);
    }
    // What the index finds for the leaving connection: its own item and one per channel.
    const indexed = await dynamo.tableRef.client.send(
      new QueryCommand({
        TableName: dynamo.tableName,
        IndexName: BY_CONNECTION_INDEX,
        KeyConditionExpression: 'sk = :sk',
        ExpressionAttributeValues: { ':sk': 'CONN#conn-leaving' },
      }),
    );
    expect((indexed.Items ?? []).map((i) => i.pk).sort()).toEqual(['CHAN#rm-a', 'CHAN#rm-b', 'CHAN#rm-c', 'CONN#conn-leaving']);

    expect(await connections.remove('conn-leaving')).toBe(4);

    expect(await connections.get('conn-leaving')).toBeUndefined();
    expect(await getItem('CONN#conn-leaving', 'CONN#conn-leaving')).toBeUndefined();
    for (const channel of ['rm-a', 'rm-b', 'rm-c']) {
      expect(await getItem(`CHAN#${channel}`, 'CONN#conn-leaving')).toBeUndefined();
      expect((await allSubscribers(channel)).ids).toEqual(['conn-staying']);
    }
    expect(await connections.get('conn-staying')).toEqual(staying);
  });

  it('remove is safe to run twice, and for a connection never seen', async () => {
    await connections.add('conn-twice');
    await subscriptions.add('twice', 'conn-twice', nowSeconds() + 60);
    expect(await connections.remove('conn-twice')).toBe(2);
    expect(await connections.remove('conn-twice')).toBe(0);
    expect(await connections.remove('never-connected')).toBe(0);
    expect((await allSubscribers('twice')).pages).toEqual([]);
  });

  it('remove deletes every one of many subscriptions (more than its 10 parallel deletes)', async () => {
    const connection = await connections.add('conn-many');
    const channels = Array.from({ length: 35 }, (_, i) => `many-${i}`);
    await Promise.all(channels.map((channel) => subscriptions.add(channel, 'conn-many', connection.ttl)));
    expect(await connections.remove('conn-many')).toBe(36);
    for (const channel of channels) expect(await getItem(`CHAN#${channel}`, 'CONN#conn-many')).toBeUndefined();
  });
});

describe('subscriptionStore', () => {
  it('stores a subscription under CHAN#<channel> / CONN#<id> with v 1 and the given ttl', async () => {
    const ttl = nowSeconds() + 3600;
    await subscriptions.add('items', 'conn-1', ttl);
    expect(await getItem('CHAN#items', 'CONN#conn-1')).toEqual({
      pk: 'CHAN#items',
      sk: 'CONN#conn-1',
      v: 1,
      channel: 'items',
      connectionId: 'conn-1',
      subscribedAt: expect.any(Number),
      ttl,
    });
  });

  it('adding again refreshes the one subscription rather than adding another', async () => {
    const now = nowSeconds();
    await subscriptions.add('refresh', 'conn-1', now + 60);
    await subscriptions.add('refresh', 'conn-1', now + 120);
    const { ids } = await allSubscribers('refresh');
    expect(ids).toEqual(['conn-1']);
    expect((await getItem('CHAN#refresh', 'CONN#conn-1'))!.ttl).toBe(now + 120);
  });

  it('pages the subscribers: 5 with pageSize 2 are 3 pages, each id once', async () => {
    const ids = ['p1', 'p2', 'p3', 'p4', 'p5'];
    for (const id of ids) await subscriptions.add('paging', id, nowSeconds() + 60);
    const { pages, ids: seen } = await allSubscribers('paging', 2);
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    expect(seen).toEqual(ids);
    expect(new Set(pages.flat()).size).toBe(5);

    // 4 with pageSize 2: DynamoDB may answer a last, empty page; it is not yielded.
    await subscriptions.remove('paging', 'p5');
    expect((await allSubscribers('paging', 2)).pages.map((p) => p.length)).toEqual([2, 2]);
  });

  it('reads a smaller first page when asked (fan-out starts posting sooner), then pages of pageSize', async () => {
    const ids = ['f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'f7'];
    for (const id of ids) await subscriptions.add('first-page', id, nowSeconds() + 60);
    const pages: string[][] = [];
    for await (const page of subscriptions.subscriberPages('first-page', 3, undefined, 1)) pages.push(page);
    expect(pages.map((p) => p.length)).toEqual([1, 3, 3]);
    expect(pages.flat().sort()).toEqual(ids);
  });

  it('leaves expired subscriptions out of the pages', async () => {
    const now = nowSeconds();
    for (const id of ['e1', 'e3', 'e5']) await subscriptions.add('expiry', id, now + 60);
    for (const id of ['e2', 'e4']) {
      await putItem({ pk: 'CHAN#expiry', sk: `CONN#${id}`, v: 1, channel: 'expiry', connectionId: id, subscribedAt: now - 9000, ttl: now - 5 });
    }
    expect((await allSubscribers('expiry')).ids).toEqual(['e1', 'e3', 'e5']);
    // Also when paging: expired items take a place in a page but are never yielded.
    const { pages, ids } = await allSubscribers('expiry', 2);
    expect(ids).toEqual(['e1', 'e3', 'e5']);
    expect(pages.every((p) => p.length > 0)).toBe(true);
  });

  it('has no pages for a channel without subscribers, and keeps channels apart', async () => {
    await subscriptions.add('apart-1', 'conn-x', nowSeconds() + 60);
    await subscriptions.add('apart-2', 'conn-y', nowSeconds() + 60);
    expect((await allSubscribers('nobody-here')).pages).toEqual([]);
    expect((await allSubscribers('apart-1')).ids).toEqual(['conn-x']);
    expect((await allSubscribers('apart-2')).ids).toEqual(['conn-y']);
  });

  it('remove deletes one subscription and is safe to repeat', async () => {
    await subscriptions.add('unsub', 'conn-a', nowSeconds() + 60);
    await subscriptions.add('unsub', 'conn-b', nowSeconds() + 60);
    await subscriptions.remove('unsub', 'conn-a');
    await subscriptions.remove('unsub', 'conn-a');
    expect((await allSubscribers('unsub')).ids).toEqual(['conn-b']);
  });
});
