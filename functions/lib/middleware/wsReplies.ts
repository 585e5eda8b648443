import middy, { type MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyWebsocketEventV2 } from 'aws-lambda';
import { CablecarError } from '../protocol/errors.js';
import { logger } from '../logger.js';
import { errorFrame, parseClientFrame, type ServerFrame } from '../protocol/protocol.js';

/** What API Gateway sends back to the client as the route response (routeResponseSelectionExpression: $default). */
export interface WsRouteResult {
  statusCode: number;
  body?: string;
}

export interface WsRequest {
  connectionId: string;
  frame: Record<string, unknown>;
  /** What the $connect authorizer returned as context; API Gateway passes it with every frame. */
  authorizer: unknown;
}

/**
 * Turns every failure of a WebSocket route into an `error` frame on the same socket: the client
 * learns what was wrong and the connection stays usable. Unexpected errors are logged and answered
 * with a generic `internal_error`, never with their details.
 */
export const wsErrorFrames = (): MiddlewareObj<APIGatewayProxyWebsocketEventV2, WsRouteResult> => ({
  onError: async (request) => {
    const { error } = request;
    const frame =
      error instanceof CablecarError
        ? errorFrame(error.code, error.message, error.channel)
        : errorFrame('internal_error', 'the request failed; it was not applied');
    if (!(error instanceof CablecarError) || error.retryable) logger.error('websocket route failed', { error });
    request.response = { statusCode: 200, body: JSON.stringify(frame) };
  },
});

/** A WebSocket route: parses the client's frame, runs the route, replies with the frame it returns. */
export function wsRoute(route: (request: WsRequest) => Promise<ServerFrame>) {
  return middy<APIGatewayProxyWebsocketEventV2, WsRouteResult>()
    .use(wsErrorFrames())
    .handler(async (event) => {
      const frame = parseClientFrame(event.body);
      const authorizer = (event.requestContext as { authorizer?: unknown }).authorizer;
      const reply = await route({ connectionId: event.requestContext.connectionId, frame, authorizer });
      return { statusCode: 200, body: JSON.stringify(reply) };
    });
}
