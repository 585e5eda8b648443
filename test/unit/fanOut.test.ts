import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RetryablePostError, type PostOutcome, type PostToConnection } from '../../functions/lib/delivery/connectionGateway.js';
import { connectionStore, type ConnectionStore } from '../../functions/lib/stores/connectionStore.js';
import { nowSeconds } from '../../functions/lib/stores/dynamoTable.js';
import { fanOut, type FanOutDeps } from '../../functions/lib/delivery/fanOut.js';
import { logger } from '../../functions/lib/logger.js';
import type { Message } from '../../functions/lib/protocol/protocol.js';
import { subscriptionStore, type SubscriptionStore } from '../../functions/lib/stores/subscriptionStore.js';
import { startDynamo, type TestDynamo } from '../support/databases.js';
import { subscriberIds } from '../support/stores.js';

/**
 * fanOut with the real connection and subscription stores on the DynamoDB API (dynalite). API
 * Gateway is the one part stood in for: a recording postToConnection (the real gateway is exercised
 * by the integration tests).
 */
let dynamo: TestDynamo;
let connections: ConnectionStore;
let subscriptions: SubscriptionStore;
let logLevel: string;

beforeAll(async () => {
  dynamo = await startDynamo();
  connections = connectionStore(dynamo.tableRef, { ttlSeconds: 3600 });
  subscriptions = subscriptionStore(dynamo.tableRef);
  // Failed posts are logged as warnings; here they are expected, and asserted on through the result.
  logLevel = logger.getLevelName();
  logger.setLogLevel('SILENT');
});
afterAll(async () => {
  logger.setLogLevel(logLevel as Parameters<typeof logger.setLogLevel>[0]);
  await dynamo?.stop();
});

interface Post {
  connectionId: string;
  frame: string;
}

/**
 * A recording stand-in for API Gateway's PostToConnection: every call is recorded, and `answer`
 * decides each outcome (delivered by default).
 */
function recordingPostToConnection(answer: (connectionId: string, attempt: number) => Promise<PostOutcome> | PostOutcome = () => 'delivered') {
  const posts: Post[] = [];
  const attempts = new Map<string, number>();
  const post: PostToConnection = async (connectionId, frame) => {
    posts.push({ connectionId, frame });
    const attempt = (attempts.get(connectionId) ?? 0) + 1;
    attempts.set(connectionId, attempt);
    return answer(connectionId, attempt);
  };
  return { post, posts, attempts };
}

async function connectAndSubscribe(channel: string, ids: string[]): Promise<void> {
  for (const id of ids) {
    const connection = await connections.add(id);
    await subscriptions.add(channel, id, connection.ttl);
  }
}

const messageOn = (channel: string, seq = 7): Message => ({
  id: '0b6f9a1e-3c1d-4f7e-9a55-2f1c7d0e8b42',
  channel,
  seq,
  data: { text: 'hello', list: [1, 'two', null], nested: { z: true, a: 'é☕' } },
  publishedAt: '2026-11-24T16:50:45.996Z',
});

const deps = (post: PostToConnection): FanOutDeps => ({ subscriptions, connections, postToConnection: post });

describe('fanOut with a recording postToConnection (stands in for API Gateway)', () => {
  it('posts the exact message frame once to every live subscriber of the channel, over several pages', async () => {
    const live = ['d1', 'd2', 'd3', 'd4', 'd5'];
    await connectAndSubscribe('deliver', live);
    await connectAndSubscribe('deliver-elsewhere', ['other-channel']);
    const now = nowSeconds();
    await dynamo.tableRef.client.send(
      new PutCommand({
        TableName: dynamo.tableName,
        Item: { pk: 'CHAN#deliver', sk: 'CONN#expired', v: 1, channel: 'deliver', connectionId: 'expired', subscribedAt: now - 9000, ttl: now - 1 },
      }),
    );

    const { post, posts } = recordingPostToConnection();
    const result = await fanOut(messageOn('deliver'), deps(post), { concurrency: 3, pageSize: 2 });

    expect(result).toEqual({ delivered: 5, gone: 0, failed: 0, throttled: 0 });
    expect(posts.map((p) => p.connectionId).sort()).toEqual(live);
    const expected =
      '{"type":"message","channel":"deliver","seq":7,"id":"0b6f9a1e-3c1d-4f7e-9a55-2f1c7d0e8b42",' +
      '"data":{"text":"hello","list":[1,"two",null],"nested":{"z":true,"a":"é☕"}},"publishedAt":"2026-11-24T16:50:45.996Z"}';
    for (const p of posts) expect(p.frame).toBe(expected);
  });

  it('posts nothing for a channel without subscribers', async () => {
    const { post, posts } = recordingPostToConnection();
    expect(await fanOut(messageOn('deserted'), deps(post), { concurrency: 5, pageSize: 10 })).toEqual({ delivered: 0, gone: 0, failed: 0, throttled: 0 });
    expect(posts).toEqual([]);
  });

  it('removes a connection that answers gone, with all its subscriptions, and still delivers to the others', async () => {
    await connectAndSubscribe('gone', ['g1', 'g2', 'g3', 'g4']);
    await subscriptions.add('gone-elsewhere', 'g2', nowSeconds() + 60);
    await subscriptions.add('gone-elsewhere', 'g3', nowSeconds() + 60);

    const { post, posts } = recordingPostToConnection((id) => (id === 'g2' ? 'gone' : 'delivered'));
    const result = await fanOut(messageOn('gone'), deps(post), { concurrency: 2, pageSize: 3 });

    expect(result).toEqual({ delivered: 3, gone: 1, failed: 0, throttled: 0 });
    expect(posts.map((p) => p.connectionId).sort()).toEqual(['g1', 'g2', 'g3', 'g4']);
    expect(await connections.get('g2')).toBeUndefined();
    expect(await subscriberIds(subscriptions, 'gone')).toEqual(['g1', 'g3', 'g4']);
    expect(await subscriberIds(subscriptions, 'gone-elsewhere')).toEqual(['g3']);
    expect(await connections.get('g1')).toBeDefined();
  });

  it('retries a throttled post with backoff until it is delivered (3rd attempt)', async () => {
    await connectAndSubscribe('retry', ['r-flaky', 'r-fine']);
    const { post, attempts } = recordingPostToConnection((id, attempt) => {
      if (id === 'r-flaky' && attempt < 3) throw new RetryablePostError(attempt === 1 ? 429 : 503);
      return 'delivered';
    });
    const result = await fanOut(messageOn('retry'), deps(post), { concurrency: 2, pageSize: 10, maxAttempts: 5, backoffBaseMs: 1 });

    expect(result).toEqual({ delivered: 2, gone: 0, failed: 0, throttled: 1 });
    expect(attempts.get('r-flaky')).toBe(3);
    expect(attempts.get('r-fine')).toBe(1);
  });

  it('counts a post as failed after maxAttempts 5xx failures, keeps the connection, and delivers to the others', async () => {
    await connectAndSubscribe('exhaust', ['x-broken', 'x-ok']);
    const { post, attempts } = recordingPostToConnection((id) => {
      if (id === 'x-broken') throw new RetryablePostError(503);
      return 'delivered';
    });
    const result = await fanOut(messageOn('exhaust'), deps(post), { concurrency: 2, pageSize: 10, maxAttempts: 3, backoffBaseMs: 1 });

    expect(result).toEqual({ delivered: 1, gone: 0, failed: 1, throttled: 0 });
    expect(attempts.get('x-broken')).toBe(3);
    // A failing gateway is not "gone": the subscriber stays and fills the gap from history.
    expect(await subscriberIds(subscriptions, 'exhaust')).toEqual(['x-broken', 'x-ok']);
  });

  it('keeps retrying a throttled post past maxAttempts (throttling means later, not never), then gives up after throttledRetryMs', async () => {
    await connectAndSubscribe('throttled', ['t-slow', 't-never']);
    const { post, attempts } = recordingPostToConnection((id, attempt) => {
      if (id === 't-never' || attempt < 8) throw new RetryablePostError(429);
      return 'delivered';
    });
    const result = await fanOut(messageOn('throttled'), deps(post), {
      concurrency: 2,
      pageSize: 10,
      maxAttempts: 3,
      backoffBaseMs: 1,
      throttledRetryMs: 300,
    });
    expect(attempts.get('t-slow')).toBe(8);
    expect(result.delivered).toBe(1);
    expect(result.failed).toBe(1);
    expect(result.throttled).toBe(7 + attempts.get('t-never')!);
    expect(attempts.get('t-never')).toBeGreaterThan(3);
  });

  it('does not retry an error that is not retryable', async () => {
    await connectAndSubscribe('no-retry', ['n-bad', 'n-ok']);
    const { post, attempts } = recordingPostToConnection((id) => {
      if (id === 'n-bad') throw new Error('403 Forbidden');
      return 'delivered';
    });
    const result = await fanOut(messageOn('no-retry'), deps(post), { concurrency: 2, pageSize: 10, maxAttempts: 5, backoffBaseMs: 1 });
    expect(result).toEqual({ delivered: 1, gone: 0, failed: 1, throttled: 0 });
    expect(attempts.get('n-bad')).toBe(1);
  });

  it('never has more posts in flight than the concurrency bound', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `c${String(i).padStart(2, '0')}`);
    await connectAndSubscribe('bounded', ids);
    let inFlight = 0;
    let maxInFlight = 0;
    const { post, posts } = recordingPostToConnection(async () => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 5));
      inFlight--;
      return 'delivered' as const;
    });
    const result = await fanOut(messageOn('bounded'), deps(post), { concurrency: 3, pageSize: 8 });

    expect(result).toEqual({ delivered: 20, gone: 0, failed: 0, throttled: 0 });
    expect(posts.map((p) => p.connectionId).sort()).toEqual(ids);
    expect(maxInFlight).toBe(3);
  });

  it('keeps retries inside the concurrency bound too', async () => {
    const ids = Array.from({ length: 6 }, (_, i) => `rb${i}`);
    await connectAndSubscribe('bounded-retry', ids);
    let inFlight = 0;
    let maxInFlight = 0;
    const { post, attempts } = recordingPostToConnection(async (_id, attempt) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 2));
      inFlight--;
      if (attempt < 2) throw new RetryablePostError(429);
      return 'delivered' as const;
    });
    const result = await fanOut(messageOn('bounded-retry'), deps(post), { concurrency: 2, pageSize: 10, backoffBaseMs: 1 });
    expect(result).toEqual({ delivered: 6, gone: 0, failed: 0, throttled: 6 });
    expect([...attempts.values()]).toEqual([2, 2, 2, 2, 2, 2]);
    expect(maxInFlight).toBeLessThanOrEqual(2);
  });
});
