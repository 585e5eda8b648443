import pLimit from 'p-limit';
import type { DispatchRecordStore } from '../stores/dispatchRecordStore.js';
import type { MessageStore } from '../stores/messageStore.js';

export interface DispatchSweepDeps {
  messages: Pick<MessageStore, 'publishedBetween'>;
  dispatchRecords: Pick<DispatchRecordStore, 'completed'>;
  /** Hands one dispatch event to fan-out again (on AWS: an async invoke of fanout:live). */
  dispatch: (event: unknown) => Promise<void>;
}

export interface DispatchSweepOptions {
  graceSeconds: number;
  windowSeconds: number;
  limit: number;
}

/**
 * The AWS sweep: a message published within the window whose fan-out has no completion record was
 * lost somewhere between PostgreSQL's aws_lambda.invoke and the end of fan-out (an event dropped
 * after Lambda's retries, a destination that could not be written): it is dispatched again. A
 * message whose fan-out is merely slow may be dispatched twice; clients drop the duplicate by seq.
 */
export async function sweepUnfinishedDispatches(deps: DispatchSweepDeps, options: DispatchSweepOptions) {
  const candidates = await deps.messages.publishedBetween({
    olderThanSeconds: options.graceSeconds,
    withinSeconds: options.windowSeconds,
    limit: options.limit,
  });
  const completed = await deps.dispatchRecords.completed(candidates.map((c) => c.id));
  const unfinished = candidates.filter((c) => !completed.has(c.id));
  const limit = pLimit(10);
  const results = await Promise.allSettled(unfinished.map((c) => limit(() => deps.dispatch(c.event))));
  const failed = results.filter((r) => r.status === 'rejected').length;
  return { checked: candidates.length, redispatched: unfinished.length - failed, failed };
}
