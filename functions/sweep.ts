import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import middy from '@middy/core';
import { config, sweepSettings } from './lib/config.js';
import { asyncFanoutInvocation } from './lib/dispatch/fanoutInvocation.js';
import { sweepUnfinishedDispatches, type DispatchSweepResult } from './lib/dispatch/dispatchSweep.js';
import { logger } from './lib/logger.js';
import { dispatchRecords, messages } from './lib/services.js';

/** Time left for the page in progress when the sweep stops starting new ones. */
const STOP_MARGIN_MS = 20_000;

let lambda: LambdaClient | undefined;

/**
 * sweep: run by an EventBridge schedule (serverless.yml). Dispatches again, as PostgreSQL does (an
 * asynchronous invoke of fanout:live with the same event), the messages whose fan-out never recorded
 * its completion, and confirms in PostgreSQL those it found complete, so that no later run reads
 * them again (functions/lib/dispatch/dispatchSweep.ts). Locally the dispatch bridge does this job
 * itself (it marks a message dispatched only once fan-out answered, and sweeps what is left).
 */
export const handler = middy<unknown, DispatchSweepResult>().handler(async (_event, context) => {
  const { FANOUT_FUNCTION_NAME, SWEEP_GRACE_SECONDS, SWEEP_WINDOW_SECONDS, SWEEP_BATCH_LIMIT } = sweepSettings();
  const client = (lambda ??= new LambdaClient({ region: config().AWS_REGION }));
  const result = await sweepUnfinishedDispatches(
    {
      messages: await messages(),
      dispatchRecords: dispatchRecords(),
      dispatch: async (event) => void (await client.send(new InvokeCommand(asyncFanoutInvocation(FANOUT_FUNCTION_NAME, 'live', event)))),
    },
    {
      graceSeconds: SWEEP_GRACE_SECONDS,
      windowSeconds: SWEEP_WINDOW_SECONDS,
      limit: SWEEP_BATCH_LIMIT,
      outOfTime: () => context.getRemainingTimeInMillis() < STOP_MARGIN_MS,
    },
  );
  // A failed re-dispatch is tried again at the next run (the message is still unfinished then).
  if (result.failed > 0) logger.warn('sweep could not dispatch some messages again', result);
  else logger.info('sweep done', result);
  return result;
});
