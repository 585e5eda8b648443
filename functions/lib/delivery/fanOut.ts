import pLimit from 'p-limit';
import type { ConnectionStore } from '../stores/connectionStore.js';
import type { PostToConnection } from './connectionGateway.js';
import { RetryablePostError } from './connectionGateway.js';
import { logger } from '../logger.js';
import { messageFrame, type Message } from '../protocol/protocol.js';
import type { SubscriptionStore } from '../stores/subscriptionStore.js';

export interface FanOutOptions {
  concurrency: number;
  pageSize: number;
  /** Attempts per connection for throttled or failed posts, including the first. */
  maxAttempts?: number;
  /** Base delay of the exponential backoff; full jitter keeps retries from bunching. */
  backoffBaseMs?: number;
}

export interface FanOutResult {
  delivered: number;
  gone: number;
  failed: number;
}

export interface FanOutDeps {
  subscriptions: SubscriptionStore;
  connections: ConnectionStore;
  postToConnection: PostToConnection;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Sends one message to every subscriber of its channel: pages through subscribers, posts with
 * bounded concurrency, prunes connections that are gone and retries throttled posts with backoff.
 * A post that still fails is counted, not thrown: the message stays in PostgreSQL and the client
 * fills the gap from history.
 */
export async function fanOut(message: Message, deps: FanOutDeps, options: FanOutOptions): Promise<FanOutResult> {
  const { concurrency, pageSize, maxAttempts = 5, backoffBaseMs = 50 } = options;
  const frame = JSON.stringify(messageFrame(message));
  const limit = pLimit(concurrency);
  const result: FanOutResult = { delivered: 0, gone: 0, failed: 0 };

  async function deliver(connectionId: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const outcome = await deps.postToConnection(connectionId, frame);
        if (outcome === 'gone') {
          result.gone++;
          await deps.connections.remove(connectionId);
        } else {
          result.delivered++;
        }
        return;
      } catch (error) {
        if (error instanceof RetryablePostError && attempt < maxAttempts) {
          await sleep(Math.random() * backoffBaseMs * 2 ** attempt);
          continue;
        }
        result.failed++;
        logger.warn('post to connection failed', { connectionId, channel: message.channel, seq: message.seq, error });
        return;
      }
    }
  }

  for await (const page of deps.subscriptions.subscriberPages(message.channel, pageSize)) {
    await Promise.all(page.map((connectionId) => limit(() => deliver(connectionId))));
  }
  return result;
}
