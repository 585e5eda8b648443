import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscribe, unsubscribe, type ChannelSubscriptionDeps } from '../../functions/lib/channels/channelSubscriptions.js';
import type { PostOutcome, PostToConnection } from '../../functions/lib/delivery/connectionGateway.js';
import type { ConnectionStore } from '../../functions/lib/stores/connectionStore.js';
import { nowSeconds } from '../../functions/lib/stores/dynamoTable.js';
import { CablecarError } from '../../functions/lib/protocol/errors.js';
import type { MessageStore } from '../../functions/lib/stores/messageStore.js';
import { messageFrame } from '../../functions/lib/protocol/protocol.js';
import type { SubscriptionStore } from '../../functions/lib/stores/subscriptionStore.js';
import type { TestDynamo } from '../support/databases.js';
import { startStores, subscriberIds, type TestStores } from '../support/stores.js';
import { rejectedCablecarError } from '../support/cablecarErrors.js';

/**
 * subscribe/unsubscribe with the real stores: connections and subscriptions on the DynamoDB API
 * (dynalite), messages on embedded PostgreSQL. The replay goes to a recording postToConnection,
 * which stands in for API Gateway (the real one is exercised by the integration tests).
 */
let stores: TestStores;
let dynamo: TestDynamo;
let connections: ConnectionStore;
let subscriptions: SubscriptionStore;
let messages: MessageStore;

beforeAll(async () => {
  stores = await startStores();
  ({ dynamo, connections, subscriptions, messages } = stores);
});
afterAll(() => stores?.stop());

function recordingPostToConnection(answer: (frame: string, index: number) => PostOutcome = () => 'delivered') {
  const posts: Array<{ connectionId: string; frame: string }> = [];
  const post: PostToConnection = async (connectionId, frame) => {
    posts.push({ connectionId, frame });
    return answer(frame, posts.length - 1);
  };
  return { post, posts };
}

const depsWith = (post: PostToConnection): ChannelSubscriptionDeps => ({ connections, subscriptions, messages, postToConnection: post });

async function publishMany(channel: string, count: number): Promise<void> {
  for (let n = 1; n <= count; n++) await messages.publish(channel, JSON.stringify({ n, channel }));
}

const subscriptionItem = async (channel: string, connectionId: string) =>
  (
    await dynamo.tableRef.client.send(
      new GetCommand({ TableName: dynamo.tableName, Key: { pk: `CHAN#${channel}`, sk: `CONN#${connectionId}` } }),
    )
  ).Item;


describe('subscribe (replay through a recording postToConnection that stands in for API Gateway)', () => {
  it('refuses an unknown connection with not_connected (410) and stores nothing', async () => {
    const { post, posts } = recordingPostToConnection();
    const error = await rejectedCablecarError(subscribe({ connectionId: 'stranger', channel: 'room' }, depsWith(post), { replayLimit: 100, maxSubscriptions: 100 }));
    expect(error).toMatchObject({ code: 'not_connected', httpStatus: 410 });
    expect(await subscriptionItem('room', 'stranger')).toBeUndefined();
    expect(posts).toEqual([]);
  });

  it('refuses an expired connection with not_connected', async () => {
    const now = nowSeconds();
    await dynamo.tableRef.client.send(
      new PutCommand({
        TableName: dynamo.tableName,
        Item: { pk: 'CONN#expired', sk: 'CONN#expired', v: 1, connectionId: 'expired', connectedAt: now - 9000, ttl: now - 1 },
      }),
    );
    const { post } = recordingPostToConnection();
    const error = await rejectedCablecarError(subscribe({ connectionId: 'expired', channel: 'room' }, depsWith(post), { replayLimit: 100, maxSubscriptions: 100 }));
    expect(error.code).toBe('not_connected');
    expect(await subscriberIds(subscriptions, 'room')).not.toContain('expired');
  });

  it('without after: stores the subscription with the connection ttl and answers the channel last seq, replaying nothing', async () => {
    await publishMany('no-after', 3);
    const connection = await connections.add('s-no-after');
    const { post, posts } = recordingPostToConnection();

    expect(await subscribe({ connectionId: 's-no-after', channel: 'no-after' }, depsWith(post), { replayLimit: 100, maxSubscriptions: 100 })).toEqual({
      type: 'subscribed',
      channel: 'no-after',
      seq: 3,
    });
    expect(posts).toEqual([]);
    expect(await subscriberIds(subscriptions, 'no-after')).toEqual(['s-no-after']);
    expect(await subscriptionItem('no-after', 's-no-after')).toMatchObject({ v: 1, ttl: connection.ttl });

    // A channel nobody has published to yet: seq 0.
    expect(await subscribe({ connectionId: 's-no-after', channel: 'brand-new' }, depsWith(post), { replayLimit: 100, maxSubscriptions: 100 })).toEqual({
      type: 'subscribed',
      channel: 'brand-new',
      seq: 0,
    });
  });

  it('with after: replays exactly the messages after that seq, in order, as message frames, then answers the last seq', async () => {
    await publishMany('replay', 6);
    await publishMany('replay-neighbour', 6);
    await connections.add('s-replay');
    const { post, posts } = recordingPostToConnection();

    const reply = await subscribe({ connectionId: 's-replay', channel: 'replay', after: 2 }, depsWith(post), { replayLimit: 100, maxSubscriptions: 100 });

    expect(reply).toEqual({ type: 'subscribed', channel: 'replay', seq: 6 });
    const stored = (await messages.history('replay', 2, 100)).messages;
    expect(stored.map((m) => m.seq)).toEqual([3, 4, 5, 6]);
    expect(posts).toEqual(stored.map((m) => ({ connectionId: 's-replay', frame: JSON.stringify(messageFrame(m)) })));
    expect(posts.map((p) => JSON.parse(p.frame))).toEqual(
      [3, 4, 5, 6].map((seq) => ({
        type: 'message',
        channel: 'replay',
        seq,
        id: expect.any(String),
        data: { n: seq, channel: 'replay' },
        publishedAt: expect.stringMatching(/Z$/),
      })),
    );
    expect(await subscriberIds(subscriptions, 'replay')).toEqual(['s-replay']);
  });

  it('with after equal to the last seq: replays nothing and answers that seq', async () => {
    await publishMany('caught-up', 4);
    await connections.add('s-caught-up');
    const { post, posts } = recordingPostToConnection();
    expect(await subscribe({ connectionId: 's-caught-up', channel: 'caught-up', after: 4 }, depsWith(post), { replayLimit: 100, maxSubscriptions: 100 })).toEqual({
      type: 'subscribed',
      channel: 'caught-up',
      seq: 4,
    });
    expect(posts).toEqual([]);
  });

  it('with after beyond the channel (a client ahead of a restored database): answers the channel last seq', async () => {
    await publishMany('restored', 2);
    await connections.add('s-restored');
    const { post, posts } = recordingPostToConnection();
    const reply = await subscribe({ connectionId: 's-restored', channel: 'restored', after: 9 }, depsWith(post), { replayLimit: 100, maxSubscriptions: 100 });
    expect(reply).toEqual({ type: 'subscribed', channel: 'restored', seq: 2 });
    expect(posts).toEqual([]);
  });

  it('with after 0: replays the whole channel from seq 1', async () => {
    await publishMany('from-zero', 3);
    await connections.add('s-from-zero');
    const { post, posts } = recordingPostToConnection();
    const reply = await subscribe({ connectionId: 's-from-zero', channel: 'from-zero', after: 0 }, depsWith(post), { replayLimit: 100, maxSubscriptions: 100 });
    expect(reply).toEqual({ type: 'subscribed', channel: 'from-zero', seq: 3 });
    expect(posts.map((p) => JSON.parse(p.frame).seq)).toEqual([1, 2, 3]);
  });

  it.each([
    ['stops at replayLimit with more to come: answers the channel\'s newest seq, so the client reads the rest from history at once', 3, [4, 5, 6, 7]],
    ['ends exactly at replayLimit with nothing more: answers the last seq replayed', 6, [7, 8, 9, 10]],
  ])('caps the replay: %s', async (_label, after, replayed) => {
    const channel = `capped-after-${after}`;
    await publishMany(channel, 10);
    await connections.add(`s-${channel}`);
    const { post, posts } = recordingPostToConnection();
    const reply = await subscribe({ connectionId: `s-${channel}`, channel, after }, depsWith(post), { replayLimit: 4, maxSubscriptions: 100 });
    expect(reply).toEqual({ type: 'subscribed', channel, seq: 10 });
    expect(posts.map((p) => JSON.parse(p.frame).seq)).toEqual(replayed);
  });

  it('replays across its internal pages of 200, in order, without gaps or repeats', async () => {
    // 260 messages, published concurrently to keep the test quick (seq order is PostgreSQL's).
    await Promise.all(Array.from({ length: 260 }, (_, i) => messages.publish('long', JSON.stringify({ i }))));
    await connections.add('s-long');
    const { post, posts } = recordingPostToConnection();

    const all = await subscribe({ connectionId: 's-long', channel: 'long', after: 10 }, depsWith(post), { replayLimit: 1000, maxSubscriptions: 100 });
    expect(all).toEqual({ type: 'subscribed', channel: 'long', seq: 260 });
    expect(posts.map((p) => JSON.parse(p.frame).seq)).toEqual(Array.from({ length: 250 }, (_, i) => i + 11));

    const { post: capped, posts: cappedPosts } = recordingPostToConnection();
    const reply = await subscribe({ connectionId: 's-long', channel: 'long', after: 0 }, depsWith(capped), { replayLimit: 230, maxSubscriptions: 100 });
    // stopped at the limit with 30 more: the reply names the channel's newest
    expect(reply).toEqual({ type: 'subscribed', channel: 'long', seq: 260 });
    expect(cappedPosts.map((p) => JSON.parse(p.frame).seq)).toEqual(Array.from({ length: 230 }, (_, i) => i + 1));
  });

  it('stops the replay when the connection is gone: removes it and its subscriptions, and answers not_connected', async () => {
    await publishMany('replay-gone', 5);
    await connections.add('s-gone');
    await subscriptions.add('other-channel-of-s-gone', 's-gone', nowSeconds() + 60);
    const { post, posts } = recordingPostToConnection((_frame, index) => (index === 1 ? 'gone' : 'delivered'));

    const error = await rejectedCablecarError(subscribe({ connectionId: 's-gone', channel: 'replay-gone', after: 0 }, depsWith(post), { replayLimit: 100, maxSubscriptions: 100 }));
    expect(error).toMatchObject({ code: 'not_connected', httpStatus: 410 });
    expect(posts).toHaveLength(2);
    expect(await connections.get('s-gone')).toBeUndefined();
    expect(await subscriberIds(subscriptions, 'replay-gone')).toEqual([]);
    expect(await subscriberIds(subscriptions, 'other-channel-of-s-gone')).toEqual([]);
  });
});

describe('unsubscribe', () => {
  it('removes the subscription to that channel only, and answers unsubscribed (also when repeated)', async () => {
    await connections.add('s-unsub');
    const { post } = recordingPostToConnection();
    await subscribe({ connectionId: 's-unsub', channel: 'unsub-a' }, depsWith(post), { replayLimit: 10, maxSubscriptions: 100 });
    await subscribe({ connectionId: 's-unsub', channel: 'unsub-b' }, depsWith(post), { replayLimit: 10, maxSubscriptions: 100 });

    expect(await unsubscribe({ connectionId: 's-unsub', channel: 'unsub-a' }, { subscriptions, connections })).toEqual({
      type: 'unsubscribed',
      channel: 'unsub-a',
    });
    expect(await subscriberIds(subscriptions, 'unsub-a')).toEqual([]);
    expect(await subscriberIds(subscriptions, 'unsub-b')).toEqual(['s-unsub']);
    expect(await connections.get('s-unsub')).toBeDefined();

    expect(await unsubscribe({ connectionId: 's-unsub', channel: 'unsub-a' }, { subscriptions, connections })).toEqual({
      type: 'unsubscribed',
      channel: 'unsub-a',
    });
  });
});
