import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { parseChannel } from '../protocol/protocol.js';
import { requireChannelAccess, type ChannelAction } from '../tokens/tokenClaims.js';
import { unauthorized, type VerifyToken } from '../tokens/tokenVerifier.js';

/** The token of an `Authorization: Bearer <JWT>` header (HTTP API hands headers over in lower case). */
export function bearerToken(headers: Record<string, string | undefined> | undefined): string {
  const value = headers?.authorization;
  if (!value) throw unauthorized('no token; send "Authorization: Bearer <JWT>"');
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(value);
  if (!match) throw unauthorized('the Authorization header must be "Bearer <JWT>"');
  return match[1]!;
}

/**
 * Lets a request on `/channels/{channel}/...` through only with a token whose `action` patterns
 * cover the channel: no or an invalid token → 401 `unauthorized`, an expired one → 401
 * `token_expired`, a valid one that does not cover the channel → 403 `forbidden`. Runs before the
 * handler reads the body, so nothing of a refused request is looked at or stored; httpErrors turns
 * the refusal into the JSON error body (4xx: never counted as a server error).
 */
export const channelAuthorization = (
  action: ChannelAction,
  verifyToken: () => VerifyToken,
): MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2> => ({
  before: async ({ event }) => {
    const claims = await verifyToken()(bearerToken(event.headers));
    requireChannelAccess(claims, action, parseChannel(event.pathParameters?.channel));
  },
});
