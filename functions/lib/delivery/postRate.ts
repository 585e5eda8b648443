import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The pace of one fan-out invocation's posts: a token bucket at its share of the account's
 * PostToConnection rate, which slows down when API Gateway throttles anyway (other channels'
 * fan-outs share the same account limit) and recovers as posts get through again.
 */
export interface PostRateOptions {
  /** Posts per second this invocation may send. */
  perSecond: number;
  /** Posts it may send at once after being idle (its share of the account's burst). */
  burst: number;
}

export interface PostRate {
  /** Resolves when the next post may go. */
  take(): Promise<void>;
  throttled(): void;
  succeeded(): void;
  /** The current pace, posts per second. */
  readonly perSecond: number;
}

export function createPostRate({ perSecond, burst }: PostRateOptions): PostRate {
  const ceiling = perSecond;
  const floor = Math.max(1, ceiling / 20);
  let rate = ceiling;
  let tokens = Math.max(1, burst);
  let refilledAt = performance.now();
  let lastCut = -Infinity;

  return {
    get perSecond() {
      return rate;
    },
    async take() {
      const now = performance.now();
      tokens = Math.min(Math.max(1, burst), tokens + ((now - refilledAt) / 1000) * rate);
      refilledAt = now;
      // Reserve a token now and wait until it exists, so waiting posts leave in arrival order.
      tokens -= 1;
      if (tokens < 0) await sleep((-tokens / rate) * 1000);
    },
    throttled() {
      // One cut per burst of 429s: the answers to posts already in flight say the same thing.
      const now = performance.now();
      if (now - lastCut < 100) return;
      lastCut = now;
      rate = Math.max(floor, rate * 0.7);
      tokens = Math.min(tokens, 0);
    },
    succeeded() {
      if (rate < ceiling) rate = Math.min(ceiling, rate + ceiling / 500);
    },
  };
}
