import middy from '@middy/core';
import type { APIGatewayProxyWebsocketEventV2 } from 'aws-lambda';
import { connections } from '../lib/services.js';

/** $disconnect: best effort on API Gateway; TTLs and 410 pruning catch what it misses. */
export const handler = middy<APIGatewayProxyWebsocketEventV2, { statusCode: number }>().handler(async (event) => {
  await connections().remove(event.requestContext.connectionId);
  return { statusCode: 200 };
});
