import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import * as z from '../lib/validation.js';
import { config } from '../lib/config.js';
import { CablecarError } from '../lib/protocol/errors.js';
import { channelAuthorization } from '../lib/middleware/channelAuthorization.js';
import { httpErrors, jsonResponse } from '../lib/middleware/httpErrors.js';
import { parseChannel } from '../lib/protocol/protocol.js';
import { messages, verifyToken } from '../lib/services.js';

const historyQuery = z.object({
  after: z._default(z.pipe(z.coerce.number(), z.int().check(z.gte(0), z.lte(Number.MAX_SAFE_INTEGER))), 0),
  limit: z.optional(z.pipe(z.coerce.number(), z.int().check(z.gte(1)))),
});

/**
 * GET /channels/{channel}/messages?after=<seq>&limit=<n> → `{channel, messages, hasMore}`, oldest
 * first, for a token whose `subscribe` patterns cover the channel (a browser filling a gap reads
 * history with its own token). A client that sees a gap in seq asks for what follows the last seq it has.
 * When retention already deleted some of them, the answer also carries `truncated: true, oldestSeq: <n>`.
 */
export const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>()
  .use(httpErrors())
  .use(channelAuthorization('subscribe', verifyToken))
  .handler(async (event) => {
    const channel = parseChannel(event.pathParameters?.channel);
    const query = historyQuery.safeParse(event.queryStringParameters ?? {});
    if (!query.success) {
      throw new CablecarError('invalid_query', '"after" must be a seq (integer >= 0) and "limit" an integer >= 1');
    }
    const maxLimit = config().HISTORY_PAGE_LIMIT;
    if ((query.data.limit ?? 0) > maxLimit) throw new CablecarError('invalid_query', `"limit" is at most ${maxLimit}`);
    const store = await messages();
    const { messages: found, hasMore, truncatedBefore } = await store.history(channel, query.data.after, query.data.limit ?? Math.min(100, maxLimit));
    // Retention pruned messages the client asked for: say so, and from where history starts.
    const truncated = truncatedBefore === undefined ? {} : { truncated: true, oldestSeq: truncatedBefore };
    return jsonResponse(200, { channel, messages: found, hasMore, ...truncated });
  });
