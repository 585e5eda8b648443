import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { parseHistoryQuery, readHistory } from '../lib/channels/history.js';
import { config } from '../lib/config.js';
import { channelAuthorization } from '../lib/middleware/channelAuthorization.js';
import { httpErrors, jsonResponse } from '../lib/middleware/httpErrors.js';
import { parseChannel } from '../lib/protocol/protocol.js';
import { messages, verifyToken } from '../lib/services.js';

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
    const query = parseHistoryQuery(event.queryStringParameters, config().HISTORY_PAGE_LIMIT);
    return jsonResponse(200, await readHistory(channel, query, await messages()));
  });
