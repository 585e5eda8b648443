import pLimit from 'p-limit';
import type { DispatchRecordStore } from '../stores/dispatchRecordStore.js';
import type { MessageStore, PublishedCursor } from '../stores/messageStore.js';

export interface DispatchSweepDeps {
  messages: Pick<MessageStore, 'publishedBetween'>;
  dispatchRecords: Pick<DispatchRecordStore, 'completed'>;
  /** Hands one dispatch event to fan-out again (on AWS: an async invoke of fanout:live). */
  dispatch: (event: unknown) => Promise<void>;
}

export interface DispatchSweepOptions {
  graceSeconds: number;
  windowSeconds: number;
  /** Messages read and checked per page. */
  limit: number;
  /** Stop starting pages once this returns true (the invocation's time is running out). */
  outOfTime?: () => boolean;
}

/**
 * The AWS sweep: a message published within the window whose fan-out has no completion record was
 * lost somewhere between PostgreSQL's aws_lambda.invoke and the end of fan-out (an event dropped
 * after Lambda's retries, a destination that could not be written): it is dispatched again. A
 * message whose fan-out is merely slow may be dispatched twice; clients drop the duplicate by seq.
 *
 * The whole window is read, page after page, oldest first: a single page would check the same
 * first messages at every run and never those behind them. Oldest first, so that when a run is
 * cut short by its time, what it skipped is the newest, which later runs still see in the window.
 */
export async function sweepUnfinishedDispatches(deps: DispatchSweepDeps, options: DispatchSweepOptions) {
  const limit = pLimit(10);
  const total = { checked: 0, redispatched: 0, failed: 0 };
  let after: PublishedCursor | undefined;
  do {
    const candidates = await deps.messages.publishedBetween({
      olderThanSeconds: options.graceSeconds,
      withinSeconds: options.windowSeconds,
      limit: options.limit,
      after,
    });
    const completed = await deps.dispatchRecords.completed(candidates.map((c) => c.id));
    const unfinished = candidates.filter((c) => !completed.has(c.id));
    const results = await Promise.allSettled(unfinished.map((c) => limit(() => deps.dispatch(c.event))));
    const failed = results.filter((r) => r.status === 'rejected').length;
    total.checked += candidates.length;
    total.redispatched += unfinished.length - failed;
    total.failed += failed;
    if (candidates.length < options.limit) break;
    after = candidates.at(-1)!.cursor;
  } while (!options.outOfTime?.());
  return total;
}
