import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { config } from './lib/config.js';
import { parseDispatchEvent } from './lib/protocol/dispatchEvent.js';
import { fanOut, type FanOutResult } from './lib/delivery/fanOut.js';
import { logger } from './lib/logger.js';
import { metrics } from './lib/metrics.js';
import { connections, dispatchRecords, postToConnection, subscriptions } from './lib/services.js';

/**
 * fanout: invoked by PostgreSQL's dispatch (aws_lambda.invoke on AWS, the local bridge offline) with
 * one stored message; delivers it to every subscriber of its channel. Posts that failed after their
 * retries are counted in FailedPosts: those clients fill the gap from history. Once done, it records
 * the message's fan-out as completed (dispatchRecordStore) for the sweep.
 */
export const handler = middy<unknown, FanOutResult>()
  .use(logMetrics(metrics))
  .handler(async (event) => {
    const { message } = parseDispatchEvent(event);
    const result = await fanOut(
      message,
      { subscriptions: subscriptions(), connections: connections(), postToConnection: postToConnection() },
      { concurrency: config().FANOUT_CONCURRENCY, pageSize: config().SUBSCRIBER_PAGE_SIZE },
    );
    metrics.addMetric('PostsDelivered', MetricUnit.Count, result.delivered);
    metrics.addMetric('ConnectionsGone', MetricUnit.Count, result.gone);
    metrics.addMetric('FailedPosts', MetricUnit.Count, result.failed);
    logger.info('fanned out', { channel: message.channel, seq: message.seq, ...result });
    // Completion hook: the sweep re-dispatches dispatched messages that have no such record. Written
    // last, so a fan-out that throws before it (and is retried by Lambda) is not counted as done.
    await dispatchRecords().recordCompleted(message);
    return result;
  });
