import { describe, expect, it } from 'vitest';
import { createPostRate } from '../../functions/lib/delivery/postRate.js';

/** Takes `count` tokens at once and records when each was let go, in ms since the start. */
async function releaseTimes(pace: ReturnType<typeof createPostRate>, count: number) {
  const started = performance.now();
  const order: number[] = [];
  const times: number[] = [];
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      pace.take().then(() => {
        order.push(i);
        times.push(performance.now() - started);
      }),
    ),
  );
  return { order, times };
}

describe('createPostRate (a fan-out invocation pacing its posts)', () => {
  it('lets the burst go at once, then never more than burst + rate × elapsed, in the order asked', async () => {
    const perSecond = 400;
    const burst = 10;
    const { order, times } = await releaseTimes(createPostRate({ perSecond, burst }), 70);
    expect(order).toEqual(Array.from({ length: 70 }, (_, i) => i));
    expect(times.filter((t) => t < 5).length).toBe(burst);
    // The n-th release (0-based) needs n + 1 tokens: it can't come before (n + 1 - burst) / rate.
    times.forEach((t, n) => expect(t).toBeGreaterThanOrEqual(((n + 1 - burst) / perSecond) * 1000 - 1));
    // 60 paced at 400/s: 150 ms at the least; batched release must not stall far beyond.
    expect(times.at(-1)).toBeGreaterThanOrEqual(149);
  });

  it('slows down when throttled and recovers as posts succeed', async () => {
    const pace = createPostRate({ perSecond: 1000, burst: 1 });
    pace.throttled();
    expect(pace.perSecond).toBeCloseTo(700);
    pace.throttled(); // within 100 ms of the first cut: the same burst of 429s, no second cut
    expect(pace.perSecond).toBeCloseTo(700);
    // After a cut the bucket is empty: 14 posts at 700/s take 20 ms at the least.
    const { times } = await releaseTimes(pace, 14);
    expect(times.at(-1)).toBeGreaterThanOrEqual(19);
    for (let i = 0; i < 1000; i++) pace.succeeded();
    expect(pace.perSecond).toBe(1000);
  });
});
