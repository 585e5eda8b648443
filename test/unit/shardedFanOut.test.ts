import { randomBytes, randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostToConnection } from '../../functions/lib/delivery/connectionGateway.js';
import { dispatchToChannel, fanOut, type DispatchDeps } from '../../functions/lib/delivery/fanOut.js';
import { logger } from '../../functions/lib/logger.js';
import { parseFanoutEvent, shardEvent } from '../../functions/lib/protocol/dispatchEvent.js';
import type { Message } from '../../functions/lib/protocol/protocol.js';
import { connectionStore, type ConnectionStore } from '../../functions/lib/stores/connectionStore.js';
import { connectionKey, nowSeconds } from '../../functions/lib/stores/dynamoTable.js';
import { MAX_SUBSCRIBER_SHARDS, shardBounds, subscriptionStore, type SubscriptionStore } from '../../functions/lib/stores/subscriptionStore.js';
import { startDynamo, type TestDynamo } from '../support/databases.js';
import { startStubGateway } from '../support/stubGateway.js';

/**
 * Split fan-out on the real stores (dynalite): shards cover a channel exactly once, a small channel
 * is delivered without starting shards, a big one is delivered by its shards together, and posts
 * throttled by a stub gateway's token bucket (real delivery engine) are all delivered in the end.
 */
let dynamo: TestDynamo;
let connections: ConnectionStore;
let subscriptions: SubscriptionStore;

beforeAll(async () => {
  dynamo = await startDynamo();
  connections = connectionStore(dynamo.tableRef, { ttlSeconds: 3600 });
  subscriptions = subscriptionStore(dynamo.tableRef);
  logger.setLogLevel('SILENT');
});
afterAll(async () => dynamo?.stop());

const messageOn = (channel: string): Message => ({ id: randomUUID(), channel, seq: 3, data: { n: 1 }, publishedAt: '2026-11-25T10:00:00.000Z' });
const base64Id = () => randomBytes(12).toString('base64');

async function subscribeAll(channel: string, ids: string[]): Promise<void> {
  const ttl = nowSeconds() + 3600;
  for (let i = 0; i < ids.length; i += 25) {
    await Promise.all(ids.slice(i, i + 25).map((id) => subscriptions.add(channel, id, ttl)));
  }
}

/** DynamoDB orders string keys by their UTF-8 bytes. */
const byteCompare = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

describe('subscriber shards', () => {
  it('put every possible connection id in exactly one shard, for every shard count (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_SUBSCRIBER_SHARDS }), fc.string({ minLength: 1, maxLength: 24, unit: 'binary' }), (count, id) => {
        const key = connectionKey(id);
        const holders = Array.from({ length: count }, (_, index) => shardBounds({ index, count })).filter(
          ({ lower, upper }) => (lower === undefined || byteCompare(key, lower) >= 0) && (upper === undefined || byteCompare(key, upper) < 0),
        );
        return holders.length === 1;
      }),
      { numRuns: 500 },
    );
    expect(() => shardBounds({ index: 8, count: 8 })).toThrow(RangeError);
    expect(() => shardBounds({ index: 0, count: MAX_SUBSCRIBER_SHARDS + 1 })).toThrow(RangeError);
  });

  it('read back from DynamoDB, together hold each subscriber once, including ids equal to a boundary', async () => {
    const count = 8;
    const boundaryIds = Array.from({ length: count - 1 }, (_, index) => shardBounds({ index, count }).upper!.slice('CONN#'.length));
    const odd = ['~tilde', 'é-accent', '\u{10FFFF}x', '\u0001', '-dash'];
    const ids = [...Array.from({ length: 120 }, base64Id), ...Array.from({ length: 40 }, () => randomUUID()), ...boundaryIds, ...odd];
    await subscribeAll('sharded-read', ids);

    const seen: string[] = [];
    const perShard: number[] = [];
    for (let index = 0; index < count; index++) {
      let n = 0;
      for await (const page of subscriptions.subscriberPages('sharded-read', 7, { index, count })) {
        seen.push(...page);
        n += page.length;
      }
      perShard.push(n);
    }
    expect(seen.sort()).toEqual([...ids].sort());
    // base64 ids spread over every shard
    expect(perShard.every((n) => n > 0)).toBe(true);
  });
});

describe('dispatchToChannel', () => {
  function recordingDeps(channelPosts: Map<string, number>) {
    const started: Array<{ index: number; count: number }> = [];
    const running: Promise<unknown>[] = [];
    const deps: DispatchDeps = {
      subscriptions,
      connections,
      postToConnection: async (id) => {
        channelPosts.set(id, (channelPosts.get(id) ?? 0) + 1);
        await new Promise((resolve) => setTimeout(resolve, 1));
        return 'delivered';
      },
      // Stands in for the asynchronous Lambda invocation: the shard event goes through the same
      // parser the handler uses, and the shard runs concurrently with the invoker's own.
      async startShards(message, shards) {
        for (const shard of shards) {
          started.push(shard);
          const work = parseFanoutEvent(JSON.parse(JSON.stringify(shardEvent(message, shard))));
          if (work.kind !== 'shard') throw new Error('expected a shard event');
          running.push(fanOut(work.message, deps, { concurrency: 5, pageSize: 10, shard: work.shard }));
        }
      },
    };
    return { deps, started, running };
  }

  it.each([
    ['a channel of at most workerShare subscribers', 'small-channel', 30, 4],
    ['a bigger channel, page after page, when FANOUT_SHARDS is 1', 'unsplit-channel', 80, 1],
  ])('delivers %s itself, starting no shard', async (_label, channel, subscribers, shards) => {
    const ids = Array.from({ length: subscribers }, base64Id);
    await subscribeAll(channel, ids);
    const posts = new Map<string, number>();
    const { deps, started } = recordingDeps(posts);
    const result = await dispatchToChannel(messageOn(channel), deps, { concurrency: 5, pageSize: 10, workerShare: 30, shards });
    expect(result).toMatchObject({ delivered: subscribers, shardsStarted: 0 });
    expect(started).toEqual([]);
    expect([...posts.keys()].sort()).toEqual([...ids].sort());
    expect([...posts.values()].every((n) => n === 1)).toBe(true);
  });

  it('splits a bigger channel: starts shards 1..n-1, delivers shard 0, and together every subscriber gets it exactly once', async () => {
    const ids = Array.from({ length: 200 }, base64Id);
    await subscribeAll('big-channel', ids);
    const posts = new Map<string, number>();
    const { deps, started, running } = recordingDeps(posts);
    const own = await dispatchToChannel(messageOn('big-channel'), deps, { concurrency: 5, pageSize: 10, workerShare: 50, shards: 4 });
    const others = await Promise.all(running);

    expect(started).toEqual([1, 2, 3].map((index) => ({ index, count: 4 })));
    expect(own.shardsStarted).toBe(3);
    const delivered = own.delivered + others.reduce((sum: number, r) => sum + (r as { delivered: number }).delivered, 0);
    expect(delivered).toBe(200);
    expect([...posts.keys()].sort()).toEqual([...ids].sort());
    expect([...posts.values()].every((n) => n === 1)).toBe(true);
  });
});

describe('pacing and 429s against a stub gateway with a token bucket (real delivery engine)', () => {
  it('loses no post when throttled: every subscriber gets the frame exactly once, after retries', async () => {
    const stub = await startStubGateway({ rate: 300, burst: 20 });
    try {
      const ids = Array.from({ length: 150 }, base64Id);
      await subscribeAll('throttled-channel', ids);
      const postToConnection = createPostToConnection({ endpoint: stub.endpoint, maxSockets: 20, credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
      const result = await fanOut(messageOn('throttled-channel'), { subscriptions, connections, postToConnection }, { concurrency: 20, pageSize: 50, backoffBaseMs: 20 });

      expect(stub.counts.throttled).toBeGreaterThan(0);
      expect(result).toMatchObject({ delivered: 150, failed: 0, gone: 0 });
      expect(result.throttled).toBe(stub.counts.throttled);
      expect([...stub.delivered.keys()].sort()).toEqual([...ids].sort());
      expect([...stub.delivered.values()].every((n) => n === 1)).toBe(true);
    } finally {
      await stub.close();
    }
  });

  it('paces itself at its share of the rate', async () => {
    const stub = await startStubGateway({ rate: 400, burst: 40 });
    try {
      const ids = Array.from({ length: 120 }, base64Id);
      await subscribeAll('paced-channel', ids);
      const postToConnection = createPostToConnection({ endpoint: stub.endpoint, maxSockets: 20, credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
      const started = performance.now();
      const result = await fanOut(messageOn('paced-channel'), { subscriptions, connections, postToConnection }, {
        concurrency: 20,
        pageSize: 50,
        rate: { perSecond: 300, burst: 30 },
      });
      expect(result).toMatchObject({ delivered: 120, failed: 0 });
      // (120 - 30 burst) / 300 per second: at least 0.3 s, whatever the machine's speed
      expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    } finally {
      await stub.close();
    }
  });
});
