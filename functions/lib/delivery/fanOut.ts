import { setTimeout as sleep } from 'node:timers/promises';
import pLimit from 'p-limit';
import type { ConnectionStore } from '../stores/connectionStore.js';
import type { PostToConnection } from './connectionGateway.js';
import { RetryablePostError } from './connectionGateway.js';
import { createPostRate, type PostRate, type PostRateOptions } from './postRate.js';
import { logger } from '../logger.js';
import type { FanoutEvent } from '../protocol/dispatchEvent.js';
import { messageFrame, type Message } from '../protocol/protocol.js';
import type { SubscriberShard, SubscriptionStore } from '../stores/subscriptionStore.js';

export interface FanOutOptions {
  concurrency: number;
  pageSize: number;
  /** Attempts per connection for 5xx and network failures, including the first. */
  maxAttempts?: number;
  /** Base delay of the exponential backoff; full jitter keeps retries from bunching. */
  backoffBaseMs?: number;
  /**
   * A throttled post (429) is retried until it gets through or this long has passed since the
   * fan-out started: throttling says "later", not "never", and a post given up on is a gap.
   */
  throttledRetryMs?: number;
  /** This invocation's share of the account's PostToConnection rate; unset: no pacing. */
  rate?: PostRateOptions;
  /** Deliver only this part of the channel (a worker of a split fan-out). */
  shard?: SubscriberShard;
}

export interface FanOutResult {
  delivered: number;
  gone: number;
  failed: number;
  /** Posts answered 429 (each retried). */
  throttled: number;
}

export interface FanOutDeps {
  subscriptions: SubscriptionStore;
  connections: ConnectionStore;
  postToConnection: PostToConnection;
}

/** Posts one frame to many connections; shared by a whole-channel fan-out and a shard's. */
function createDelivery(message: Message, deps: FanOutDeps, options: FanOutOptions) {
  const { concurrency, maxAttempts = 5, backoffBaseMs = 50, throttledRetryMs = 60_000 } = options;
  const frame = JSON.stringify(messageFrame(message));
  const limit = pLimit(concurrency);
  const pace: PostRate | undefined = options.rate && createPostRate(options.rate);
  const giveUpThrottledAt = Date.now() + throttledRetryMs;
  const result: FanOutResult = { delivered: 0, gone: 0, failed: 0, throttled: 0 };

  async function deliver(connectionId: string): Promise<void> {
    for (let attempt = 1, failures = 0; ; attempt++) {
      try {
        if (pace) await pace.take();
        const outcome = await deps.postToConnection(connectionId, frame);
        pace?.succeeded();
        if (outcome === 'gone') {
          result.gone++;
          await deps.connections.remove(connectionId);
        } else {
          result.delivered++;
        }
        return;
      } catch (error) {
        const throttled = error instanceof RetryablePostError && error.status === 429;
        if (throttled) {
          result.throttled++;
          pace?.throttled();
        } else {
          failures++;
        }
        const retry = throttled ? Date.now() < giveUpThrottledAt : error instanceof RetryablePostError && failures < maxAttempts;
        if (retry) {
          await sleep(Math.random() * Math.min(backoffBaseMs * 2 ** Math.min(attempt, 10), 2000));
          continue;
        }
        result.failed++;
        logger.warn('post to connection failed', { connectionId, channel: message.channel, seq: message.seq, error });
        return;
      }
    }
  }

  return {
    result,
    deliverAll: (ids: string[]) => Promise.all(ids.map((connectionId) => limit(() => deliver(connectionId)))),
  };
}

/**
 * Sends one message to every subscriber of its channel, or of one shard of it: pages through the
 * subscribers, posts with bounded concurrency at its share of the account's rate, prunes
 * connections that are gone and retries failed posts with backoff (throttled ones until they get
 * through). A post that still fails is counted, not thrown: the message stays in PostgreSQL and the
 * client fills the gap from history.
 */
export async function fanOut(message: Message, deps: FanOutDeps, options: FanOutOptions): Promise<FanOutResult> {
  const delivery = createDelivery(message, deps, options);
  // Two pages are queued for posting at a time: the next page is read while the last is posted, so
  // the posts never pause for DynamoDB, and memory stays bounded by two pages.
  // The first page is one round of posts: a shard starts posting as soon as that much is read.
  const pages = deps.subscriptions.subscriberPages(message.channel, options.pageSize, options.shard, Math.min(options.pageSize, options.concurrency));
  let previous: Promise<unknown> = Promise.resolve();
  let current: Promise<unknown> = Promise.resolve();
  for await (const page of pages) {
    await previous;
    previous = current;
    current = delivery.deliverAll(page);
  }
  await Promise.all([previous, current]);
  return delivery.result;
}

export interface DispatchOptions extends Omit<FanOutOptions, 'shard'> {
  /** A channel with at most this many subscriptions is delivered by this invocation alone. */
  workerShare: number;
  /** How many shards a bigger channel is split into (this invocation delivers shard 0). */
  shards: number;
}

export interface DispatchDeps extends FanOutDeps {
  /** Starts a parallel invocation for each of these shards; resolves once they are accepted. */
  startShards(message: Message, shards: SubscriberShard[]): Promise<void>;
}

export interface DispatchResult extends FanOutResult {
  /** Shards started in parallel invocations (0: the channel was delivered here alone). */
  shardsStarted: number;
}

/**
 * What one fanout invocation delivers: a dispatched message (dispatchToChannel, which may split it)
 * or one shard of a message split by another invocation (fanOut of that shard).
 */
export function deliverFanoutEvent(work: FanoutEvent, deps: DispatchDeps, options: DispatchOptions): Promise<DispatchResult> {
  if (work.kind === 'dispatch') return dispatchToChannel(work.message, deps, options);
  const { workerShare: _workerShare, shards: _shards, ...fanOutOptions } = options;
  return fanOut(work.message, deps, { ...fanOutOptions, shard: work.shard }).then((result) => ({ ...result, shardsStarted: 0 }));
}

/**
 * A dispatched message: a small channel is read in one query and delivered right here (no extra
 * invocation); a bigger one is split into `shards` parts, the others started as parallel
 * invocations and shard 0 delivered here, each at its share of the account's rate.
 */
export async function dispatchToChannel(message: Message, deps: DispatchDeps, options: DispatchOptions): Promise<DispatchResult> {
  const { workerShare, shards, ...fanOutOptions } = options;
  const first = await deps.subscriptions.subscribersUpTo(message.channel, workerShare);
  if (first.complete) {
    const delivery = createDelivery(message, deps, fanOutOptions);
    await delivery.deliverAll(first.ids);
    return { ...delivery.result, shardsStarted: 0 };
  }
  if (shards < 2) return { ...(await fanOut(message, deps, fanOutOptions)), shardsStarted: 0 };
  const others = Array.from({ length: shards - 1 }, (_, i) => ({ index: i + 1, count: shards }));
  await deps.startShards(message, others);
  const own = await fanOut(message, deps, { ...fanOutOptions, shard: { index: 0, count: shards } });
  return { ...own, shardsStarted: others.length };
}
