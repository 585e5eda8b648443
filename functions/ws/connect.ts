import middy from '@middy/core';
import type { APIGatewayProxyWebsocketEventV2 } from 'aws-lambda';
import { logger } from '../lib/logger.js';
import { connections } from '../lib/services.js';

/**
 * $connect: registers the connection. Nothing may be posted to the socket here (API Gateway has not
 * opened it yet). Authorization arrives with a later issue, as an authorizer on this route.
 */
export const handler = middy<APIGatewayProxyWebsocketEventV2, { statusCode: number }>().handler(async (event) => {
  try {
    await connections().add(event.requestContext.connectionId);
    return { statusCode: 200 };
  } catch (error) {
    logger.error('could not register connection', { error });
    return { statusCode: 503 };
  }
});
