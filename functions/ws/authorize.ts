import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent, Callback, Context } from 'aws-lambda';
import { logger } from '../lib/logger.js';
import { CablecarError } from '../lib/protocol/errors.js';
import { verifyToken } from '../lib/services.js';
import { authorizeConnect } from '../lib/tokens/connectAuthorization.js';

/**
 * The REQUEST authorizer of $connect (identity source `route.request.querystring.token`: browsers
 * cannot set headers on a WebSocket). A valid token allows the connect and its claims become the
 * connection's authorizer context; an invalid or expired one is refused at the upgrade with 401 and
 * $connect never runs, so nothing is stored.
 *
 * Callback style on purpose: API Gateway answers 401 for the error "Unauthorized", and
 * serverless-offline recognises it only when passed to the callback (a rejected promise becomes a
 * 500 there). nodejs22.x supports callbacks; a runtime without them needs `throw new Error('Unauthorized')`.
 */
export const handler = (
  event: APIGatewayRequestAuthorizerEvent,
  _context: Context,
  callback: Callback<APIGatewayAuthorizerResult>,
): void => {
  // Inside the promise: a configuration that does not parse (verifyToken()) fails like any other error.
  Promise.resolve()
    .then(() => authorizeConnect(event.queryStringParameters?.token, event.methodArn, verifyToken()))
    .then(
      (result) => callback(null, result),
      (error: unknown) => {
        if (error instanceof CablecarError && error.httpStatus === 401) {
          logger.info('connect refused', { code: error.code, reason: error.message });
          callback('Unauthorized');
        } else {
          // Keys that cannot be read, a configuration error: API Gateway answers 500, the client retries.
          logger.error('connect authorizer failed', { error });
          callback(error instanceof Error ? error : new Error(String(error)));
        }
      },
    );
};
