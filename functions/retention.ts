import middy from '@middy/core';
import { retentionSettings } from './lib/config.js';
import { logger } from './lib/logger.js';
import { messages } from './lib/services.js';

/**
 * retention: run by an EventBridge schedule (serverless.yml), prunes every channel's history to
 * MESSAGE_RETENTION_SECONDS / MESSAGE_RETENTION_COUNT (or the channel's own override). Clients
 * that ask for pruned messages are told (`truncated`, `oldestSeq`) by history and subscribe.
 */
export const handler = middy<unknown, { deleted: number }>().handler(async () => {
  const limits = retentionSettings();
  const deleted = await (await messages()).prune(limits);
  logger.info('pruned history', { deleted, ...limits });
  return { deleted };
});
