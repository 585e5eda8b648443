import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { channelAuthorization } from '../lib/middleware/channelAuthorization.js';
import { httpErrors, jsonResponse } from '../lib/middleware/httpErrors.js';
import { parseChannel } from '../lib/protocol/protocol.js';
import { parseIdempotencyKey, parsePublishBody, publish, requireJsonContentType } from '../lib/channels/publishing.js';
import { messages, verifyToken } from '../lib/services.js';

/**
 * POST /channels/{channel}/messages `{"data": ...}` with `Authorization: Bearer <JWT>` whose `publish`
 * patterns cover the channel → 202 `{id, channel, seq}`.
 */
export const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>()
  .use(httpErrors())
  .use(channelAuthorization('publish', verifyToken))
  .handler(async (event) => {
    const channel = parseChannel(event.pathParameters?.channel);
    requireJsonContentType(event.headers?.['content-type']);
    const body = event.isBase64Encoded && event.body ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
    const { data } = parsePublishBody(body);
    const idempotencyKey = parseIdempotencyKey(event.headers?.['idempotency-key']);
    const { duplicate, ...published } = await publish({ channel, data, idempotencyKey }, await messages());
    return jsonResponse(202, published, duplicate ? { 'idempotent-replayed': 'true' } : {});
  });
