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

/** A 503 tells the caller when to retry; a 401 which authentication scheme to use (RFC 6750). */
function responseHeaders(status: number, error: CablecarError | undefined): Record<string, string> {
  if (status === 503) return { 'retry-after': '1' };
  if (status === 401) {
    const invalid = error?.code === 'token_expired' ? ', error="invalid_token", error_description="the token has expired"' : '';
    return { 'www-authenticate': `Bearer realm="cablecar"${invalid}` };
  }
  return {};
}

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
      responseHeaders(status, known),
    );
  },
});
