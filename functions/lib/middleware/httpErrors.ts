import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { CablecarError } from '../protocol/errors.js';
import { logger } from '../logger.js';
import { countServerError } from '../metrics.js';

export const jsonResponse = (
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyStructuredResultV2 => ({
  statusCode,
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

/**
 * Every HTTP failure becomes a JSON body `{"error":{"code","message","retryable"}}` with its status;
 * a 503 tells the caller when to retry. Unexpected errors are logged and answered without details.
 * Each 5xx is counted for this function version: a release rolls back on the new version's count.
 */
export const httpErrors = (): MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2> => ({
  onError: async (request) => {
    const { error } = request;
    const known = error instanceof CablecarError ? error : undefined;
    if (!known || known.retryable) logger.error('http route failed', { error });
    const status = known?.httpStatus ?? 500;
    if (status >= 500) countServerError();
    request.response = jsonResponse(
      status,
      {
        error: {
          code: known?.code ?? 'internal_error',
          message: known?.message ?? 'the request failed; nothing was stored',
          retryable: status >= 500,
        },
      },
      status === 503 ? { 'retry-after': '1' } : {},
    );
  },
});
