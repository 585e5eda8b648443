import middy from '@middy/core';
import type { APIGatewayProxyWebsocketEventV2 } from 'aws-lambda';
import { logger } from '../lib/logger.js';
import { countServerError } from '../lib/metrics.js';
import { connections } from '../lib/services.js';
import { claimsFromAuthorizerContext } from '../lib/tokens/authorizerContext.js';

/**
 * $connect, after its authorizer (functions/ws/authorize.ts) allowed the token: registers the
 * connection with its holder. Nothing may be posted to the socket here (API Gateway has not opened
 * it yet). A connect that arrives without the authorizer's claims (the route deployed without its
 * authorizer) is refused rather than let in unauthenticated.
 */
export const handler = middy<APIGatewayProxyWebsocketEventV2, { statusCode: number }>().handler(async (event) => {
  const claims = claimsFromAuthorizerContext((event.requestContext as { authorizer?: unknown }).authorizer);
  if (!claims) {
    logger.error('$connect without authorizer claims: refused (is the authorizer configured on $connect?)');
    return { statusCode: 401 };
  }
  try {
    await connections().add(event.requestContext.connectionId, { sub: claims.sub, tokenExpiresAt: claims.exp });
    return { statusCode: 200 };
  } catch (error) {
    // A 503 answer is a success to Lambda: counted, so the rollback alarm sees a version that fails here.
    logger.error('could not register connection', { error });
    countServerError();
    return { statusCode: 503 };
  }
});
