import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscribe, unsubscribe, type ChannelSubscriptionDeps } from '../../functions/lib/channels/channelSubscriptions.js';
import type { ConnectionStore } from '../../functions/lib/stores/connectionStore.js';
import { BY_CONNECTION_INDEX, connectionKey, tombstoneKey } from '../../functions/lib/stores/dynamoTable.js';
import type { SubscriptionStore } from '../../functions/lib/stores/subscriptionStore.js';
import * as v1Rules from '../fixtures/v1/readerRules.js';
import { rejectedCablecarError } from '../support/cablecarErrors.js';
import type { TestDynamo } from '../support/databases.js';
import { startStores, subscriberIds, type TestStores } from '../support/stores.js';

/**
 * The order of one connection's subscription changes (`rev`) and the per-connection limit, on the
 * real stores (dynalite, embedded PostgreSQL). API Gateway runs every frame as its own invocation,
 * so the tests run the domain functions in the reverse of the order the client sent them, and
 * interleave their store calls under fast-check's scheduler.
 */
let stores: TestStores;
let dynamo: TestDynamo;
let connections: ConnectionStore;
let subscriptions: SubscriptionStore;
let deps: ChannelSubscriptionDeps;
const limits = { replayLimit: 100, maxSubscriptions: 100 };

beforeAll(async () => {
  stores = await startStores();
  ({ dynamo, connections, subscriptions } = stores);
  deps = { connections, subscriptions, messages: stores.messages, postToConnection: async () => 'delivered' };
});
afterAll(() => stores?.stop());

const item = async (pk: string, sk: string) =>
  (await dynamo.tableRef.client.send(new GetCommand({ TableName: dynamo.tableName, Key: { pk, sk }, ConsistentRead: true }))).Item;

const slotsTaken = async (connectionId: string) =>
  Number((await item(connectionKey(connectionId), connectionKey(connectionId)))?.subscriptionCount ?? 0);

/** Every item of the connection, through the index the disconnect cleanup uses. */
async function itemsOf(connectionId: string): Promise<string[]> {
  const page = await dynamo.tableRef.client.send(
    new QueryCommand({
      TableName: dynamo.tableName,
      IndexName: BY_CONNECTION_INDEX,
      KeyConditionExpression: 'sk = :sk',
      ExpressionAttributeValues: { ':sk': connectionKey(connectionId) },
    }),
  );
  return (page.Items ?? []).map((i) => String(i.pk)).sort();
}

describe('subscription changes take effect in the order the client sent them (rev), whatever order they run in', () => {
  it('subscribe (rev 1) then unsubscribe (rev 2), run in reverse: ends unsubscribed, the subscribe answers superseded', async () => {
    await connections.add('order-a');
    expect(await unsubscribe({ connectionId: 'order-a', channel: 'room', rev: 2 }, deps)).toEqual({
      type: 'unsubscribed',
      channel: 'room',
      rev: 2,
    });
    expect(await subscribe({ connectionId: 'order-a', channel: 'room', rev: 1 }, deps, limits)).toEqual({
      type: 'subscribed',
      channel: 'room',
      seq: 0,
      rev: 1,
      superseded: true,
    });
    expect(await subscriberIds(subscriptions, 'room')).toEqual([]);
    expect(await slotsTaken('order-a')).toBe(0);
  });

  it('unsubscribe (rev 1) then subscribe (rev 2), run in reverse: ends subscribed, the unsubscribe answers superseded', async () => {
    await connections.add('order-b');
    expect(await subscribe({ connectionId: 'order-b', channel: 'room-b', rev: 2 }, deps, limits)).toEqual({
      type: 'subscribed',
      channel: 'room-b',
      seq: 0,
      rev: 2,
    });
    expect(await unsubscribe({ connectionId: 'order-b', channel: 'room-b', rev: 1 }, deps)).toEqual({
      type: 'unsubscribed',
      channel: 'room-b',
      rev: 1,
      superseded: true,
    });
    expect(await subscriberIds(subscriptions, 'room-b')).toEqual(['order-b']);
    expect(await slotsTaken('order-b')).toBe(1);
  });

  it('in the order sent, every change applies and none is superseded', async () => {
    await connections.add('order-c');
    const replies = [
      await subscribe({ connectionId: 'order-c', channel: 'room-c', rev: 1 }, deps, limits),
      await unsubscribe({ connectionId: 'order-c', channel: 'room-c', rev: 2 }, deps),
      await subscribe({ connectionId: 'order-c', channel: 'room-c', rev: 3 }, deps, limits),
    ];
    expect(replies.map((r) => ('superseded' in r ? r.superseded : undefined))).toEqual([undefined, undefined, undefined]);
    expect(await subscriberIds(subscriptions, 'room-c')).toEqual(['order-c']);
  });

  it('a tombstone is invisible to fan-out of every version, and removed with the connection', async () => {
    await connections.add('order-d');
    await subscribe({ connectionId: 'order-d', channel: 'room-d', rev: 1 }, deps, limits);
    await unsubscribe({ connectionId: 'order-d', channel: 'room-d', rev: 2 }, deps);

    const tombstone = await item(tombstoneKey('room-d'), connectionKey('order-d'));
    expect(tombstone).toMatchObject({ rev: 2, ttl: expect.any(Number) });
    // Version 1's fan-out reads every item whose pk is CHAN#<channel>: a tombstone is not one.
    expect(v1Rules.subscriptionItem.safeParse(tombstone).success).toBe(false);
    expect(await subscriberIds(subscriptions, 'room-d')).toEqual([]);
    // It expires with the connection.
    expect(tombstone!.ttl).toBe((await item(connectionKey('order-d'), connectionKey('order-d')))!.ttl);

    expect(await itemsOf('order-d')).toEqual([connectionKey('order-d'), tombstoneKey('room-d')]);
    await connections.remove('order-d');
    expect(await itemsOf('order-d')).toEqual([]);
  });

  it('without rev, a change applies as it arrives (the behaviour before rev)', async () => {
    await connections.add('order-e');
    await unsubscribe({ connectionId: 'order-e', channel: 'room-e' }, deps);
    expect(await subscribe({ connectionId: 'order-e', channel: 'room-e' }, deps, limits)).toEqual({
      type: 'subscribed',
      channel: 'room-e',
      seq: 0,
    });
    expect(await subscriberIds(subscriptions, 'room-e')).toEqual(['order-e']);
  });

  it('any interleaving of the store calls of any sequence of changes ends in the state of the last one sent (fast-check scheduler)', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }),
        fc.scheduler(),
        async (kinds, scheduler) => {
          const connectionId = `prop-${run++}`;
          await connections.add(connectionId);
          // Every store call's answer is delivered when the scheduler decides, so the changes'
          // steps interleave in any order (each call's write happens when it is made).
          const scheduled = <T extends object>(store: T): T =>
            new Proxy(store, {
              get: (target, name) => {
                const value = (target as any)[name];
                return typeof value === 'function' && name !== 'subscriberPages'
                  ? scheduler.scheduleFunction((...args: unknown[]) => value.apply(target, args))
                  : value;
              },
            });
          const interleaved: ChannelSubscriptionDeps = { ...deps, connections: scheduled(connections), subscriptions: scheduled(subscriptions) };
          const changes = kinds.map((isSubscribe, index) => {
            const request = { connectionId, channel: 'prop-room', rev: index + 1 };
            return isSubscribe ? subscribe(request, interleaved, limits) : unsubscribe(request, interleaved);
          });
          await scheduler.waitFor(Promise.all(changes));
          const replies = await Promise.all(changes);

          const lastIsSubscribe = kinds.at(-1)!;
          expect((await subscriberIds(subscriptions, 'prop-room')).includes(connectionId)).toBe(lastIsSubscribe);
          expect(await slotsTaken(connectionId)).toBe(lastIsSubscribe ? 1 : 0);
          // The last change is never superseded; its reply states the final state.
          expect(replies.at(-1)).toMatchObject({ type: lastIsSubscribe ? 'subscribed' : 'unsubscribed', rev: kinds.length });
          expect(replies.at(-1)).not.toHaveProperty('superseded');
          await connections.remove(connectionId);
        },
      ),
      { numRuns: 60 },
    );
  }, 60_000);
});

describe('at most maxSubscriptions per connection', () => {
  const small = { replayLimit: 10, maxSubscriptions: 3 };

  it('refuses one more with too_many_subscriptions, storing nothing; a held channel re-subscribes; an unsubscribe frees a slot', async () => {
    await connections.add('limit-a');
    for (const channel of ['l-1', 'l-2', 'l-3']) await subscribe({ connectionId: 'limit-a', channel }, deps, small);

    const error = await rejectedCablecarError(subscribe({ connectionId: 'limit-a', channel: 'l-4' }, deps, small));
    expect(error).toMatchObject({ code: 'too_many_subscriptions', httpStatus: 400 });
    expect(error.message).toMatch(/at most 3/);
    expect(await subscriberIds(subscriptions, 'l-4')).toEqual([]);
    expect(await slotsTaken('limit-a')).toBe(3);

    // Re-subscribing to a channel it holds does not count twice (with after, or rev).
    expect(await subscribe({ connectionId: 'limit-a', channel: 'l-2', after: 0, rev: 5 }, deps, small)).toMatchObject({
      type: 'subscribed',
      channel: 'l-2',
    });
    expect(await slotsTaken('limit-a')).toBe(3);

    await unsubscribe({ connectionId: 'limit-a', channel: 'l-1' }, deps);
    expect(await slotsTaken('limit-a')).toBe(2);
    await subscribe({ connectionId: 'limit-a', channel: 'l-4' }, deps, small);
    expect(await subscriberIds(subscriptions, 'l-4')).toEqual(['limit-a']);
    expect(await slotsTaken('limit-a')).toBe(3);
  });

  it('re-subscribing below the limit takes no second slot', async () => {
    await connections.add('limit-b');
    await subscribe({ connectionId: 'limit-b', channel: 'again' }, deps, small);
    await subscribe({ connectionId: 'limit-b', channel: 'again' }, deps, small);
    await subscribe({ connectionId: 'limit-b', channel: 'again', rev: 9 }, deps, small);
    expect(await slotsTaken('limit-b')).toBe(1);
  });

  it('concurrent subscribes of one connection (each its own invocation) never exceed the limit', async () => {
    await connections.add('limit-c');
    const channels = Array.from({ length: 12 }, (_, i) => `burst-${i}`);
    const results = await Promise.allSettled(channels.map((channel) => subscribe({ connectionId: 'limit-c', channel }, deps, small)));
    const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.code);
    expect(refused).toEqual(Array(9).fill('too_many_subscriptions'));
    const held = (await Promise.all(channels.map((channel) => subscriberIds(subscriptions, channel)))).filter((ids) => ids.includes('limit-c'));
    expect(held).toHaveLength(3);
    expect(await slotsTaken('limit-c')).toBe(3);
  });

  it('an unknown connection is not_connected, not too_many_subscriptions', async () => {
    const error = await rejectedCablecarError(subscribe({ connectionId: 'limit-nobody', channel: 'x' }, deps, small));
    expect(error.code).toBe('not_connected');
  });
});
