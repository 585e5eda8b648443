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

/**
 * Waiting posts are let go together, every RELEASE_MS at the least, in the order they asked: one
 * timer per batch rather than one per post, so that a paced fan-out costs no more CPU per post than
 * an unpaced one (a timer and a wake-up for each of 12,500 posts a shard sends).
 */
const RELEASE_MS = 10;

export function createPostRate({ perSecond, burst }: PostRateOptions): PostRate {
  const ceiling = perSecond;
  const floor = Math.max(1, ceiling / 20);
  const capacity = Math.max(1, burst);
  let rate = ceiling;
  let tokens = capacity;
  let refilledAt = performance.now();
  let lastCut = -Infinity;
  const waiting: Array<() => void> = [];
  let timer: NodeJS.Timeout | undefined;

  const refill = () => {
    const now = performance.now();
    tokens = Math.min(capacity, tokens + ((now - refilledAt) / 1000) * rate);
    refilledAt = now;
  };

  const release = () => {
    timer = undefined;
    refill();
    while (tokens >= 1 && waiting.length > 0) {
      tokens -= 1;
      waiting.shift()!();
    }
    if (waiting.length > 0) schedule();
  };

  function schedule() {
    timer ??= setTimeout(release, Math.max(RELEASE_MS, ((1 - tokens) / rate) * 1000));
  }

  return {
    get perSecond() {
      return rate;
    },
    take() {
      refill();
      if (waiting.length === 0 && tokens >= 1) {
        tokens -= 1;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => {
        waiting.push(resolve);
        schedule();
      });
    },
    throttled() {
      // One cut per burst of 429s: the answers to posts already in flight say the same thing.
      const now = performance.now();
      if (now - lastCut < 100) return;
      lastCut = now;
      refill();
      rate = Math.max(floor, rate * 0.7);
      tokens = Math.min(tokens, 0);
    },
    succeeded() {
      if (rate < ceiling) rate = Math.min(ceiling, rate + ceiling / 500);
    },
  };
}
