import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { config } from './lib/config.js';
import { parseFanoutEvent } from './lib/protocol/dispatchEvent.js';
import { deliverFanoutEvent, type DispatchResult } from './lib/delivery/fanOut.js';
import { logger } from './lib/logger.js';
import { metrics } from './lib/metrics.js';
import { connections, dispatchRecords, postToConnection, startShards, subscriptions } from './lib/services.js';

/**
 * fanout: invoked by PostgreSQL's dispatch (aws_lambda.invoke on AWS, the local bridge offline) with
 * one stored message, it delivers the message to every subscriber of its channel; a big channel is
 * split into shards, the others started as parallel invocations of this same version, each invoked
 * with a shard event. Posts that failed after their retries are counted in FailedPosts: those
 * clients fill the gap from history. Once its part is done (a dispatch: the channel or shard 0, the
 * others started; a shard: that shard), it records so (dispatchRecordStore) for the sweep.
 */
export const handler = middy<unknown, DispatchResult>()
  .use(logMetrics(metrics))
  .handler(async (event) => {
    const work = parseFanoutEvent(event);
    const settings = config();
    const result = await deliverFanoutEvent(
      work,
      { subscriptions: subscriptions(), connections: connections(), postToConnection: postToConnection(), startShards: startShards() },
      {
        concurrency: settings.FANOUT_CONCURRENCY,
        pageSize: settings.SUBSCRIBER_PAGE_SIZE,
        // Every invocation paces itself at its share, so the shards of a split channel (and up to
        // FANOUT_SHARDS small channels at once) stay within the account's rate together.
        rate: { perSecond: settings.POST_RATE_LIMIT / settings.FANOUT_SHARDS, burst: settings.POST_BURST_LIMIT / settings.FANOUT_SHARDS },
        workerShare: settings.FANOUT_WORKER_SHARE,
        shards: settings.FANOUT_SHARDS,
      },
    );
    metrics.addMetric('PostsDelivered', MetricUnit.Count, result.delivered);
    metrics.addMetric('ConnectionsGone', MetricUnit.Count, result.gone);
    metrics.addMetric('FailedPosts', MetricUnit.Count, result.failed);
    metrics.addMetric('ThrottledPosts', MetricUnit.Count, result.throttled);
    const { channel, seq } = work.message;
    logger.info('fanned out', { channel, seq, ...(work.kind === 'shard' && { shard: work.shard }), ...result });
    // Completion hook: the sweep re-dispatches messages whose fan-out is not recorded as complete.
    // Written last, so a fan-out that throws before it (and is retried by Lambda) is not counted as
    // done. A split message is complete once its dispatch (shard 0, which says how many shards there
    // are) and each other shard recorded their part: a shard fails on its own, after the dispatch
    // was recorded.
    if (work.kind === 'shard') await dispatchRecords().recordShardCompleted(work.message, work.shard);
    else await dispatchRecords().recordCompleted(work.message, { shardsStarted: result.shardsStarted });
    return result;
  });
