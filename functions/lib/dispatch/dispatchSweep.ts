import pLimit from 'p-limit';
import type { DispatchRecordStore } from '../stores/dispatchRecordStore.js';
import type { MessageStore, PublishedCursor } from '../stores/messageStore.js';

export interface DispatchSweepDeps {
  messages: Pick<MessageStore, 'unconfirmedBetween' | 'confirmFanouts'>;
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

/** What one run did: messages read and checked, dispatched again, whose re-dispatch failed, confirmed complete. */
export type DispatchSweepResult = {
  checked: number;
  redispatched: number;
  failed: number;
  confirmed: number;
};

/**
 * The AWS sweep: a message published within the window whose fan-out has no completion record was
 * lost somewhere between PostgreSQL's aws_lambda.invoke and the end of fan-out (an event dropped
 * after Lambda's retries, a destination that could not be written): it is dispatched again. A
 * message whose fan-out is merely slow may be dispatched twice; clients drop the duplicate by seq.
 *
 * A message found complete is confirmed in PostgreSQL and never read again, here or in DynamoDB:
 * nearly every message is complete at its first check, so a run reads the messages that entered
 * the window since the last run plus the few still unfinished, not the whole window (6 h of
 * traffic, every 5 minutes). Only a completion record confirms: a message dispatched again stays
 * unconfirmed and is checked at every later run until its new fan-out records completion, so a
 * re-dispatch that fails or is lost too is caught the same way. A confirmation is final, so the
 * completion record's expiry (DISPATCH_RECORD_TTL_SECONDS, 2 days) never matters once it is made;
 * it is made while the message is in the window (at most 24 h), when the record is still there.
 *
 * The window is read page by page, oldest first: a single page would check the same first messages
 * at every run and never those behind them (the cursor also keeps a run from reading again what it
 * just dispatched). Oldest first, so that when a run is cut short by its time, what it skipped is
 * the newest, which later runs still see in the window; and since each run confirms what it
 * checked, the next one starts past it: a backlog (the first runs after the release that brings
 * confirmation, or after an outage) shrinks run after run instead of being read again from its
 * start.
 */
export async function sweepUnfinishedDispatches(deps: DispatchSweepDeps, options: DispatchSweepOptions): Promise<DispatchSweepResult> {
  const limit = pLimit(10);
  const total: DispatchSweepResult = { checked: 0, redispatched: 0, failed: 0, confirmed: 0 };
  let after: PublishedCursor | undefined;
  do {
    const candidates = await deps.messages.unconfirmedBetween({
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
    // After the re-dispatches, which matter more: if confirming fails, the run fails, and the next
    // one only checks these again.
    total.confirmed += await deps.messages.confirmFanouts(candidates.filter((c) => completed.has(c.id)).map((c) => c.id));
    if (candidates.length < options.limit) break;
    after = candidates.at(-1)!.cursor;
  } while (!options.outOfTime?.());
  return total;
}
