import middy, { type MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyWebsocketEventV2 } from 'aws-lambda';
import { CablecarError } from '../protocol/errors.js';
import { logger } from '../logger.js';
import { countServerError } from '../metrics.js';
import { errorFrame, frameId, parseClientFrame, replyIdOf, type Reply, type ServerFrame } from '../protocol/protocol.js';

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
 * What an error reply can tie to the frame it answers: its `id` when valid, its `channel` when it
 * names one. Read again from the raw body, leniently, because the error may be that the frame
 * itself is unreadable (then there is nothing to echo).
 */
function echoOfFailedFrame(body: string | undefined | null): { id?: string; channel?: string } {
  let frame: unknown;
  try {
    frame = parseClientFrame(body);
  } catch {
    return {};
  }
  const { id, channel } = frame as Record<string, unknown>;
  return {
    ...(frameId.safeParse(id).success ? { id: id as string } : {}),
    ...(typeof channel === 'string' ? { channel } : {}),
  };
}

/**
 * Turns every failure of a WebSocket route into an `error` frame on the same socket: the client
 * learns what was wrong and the connection stays usable. Unexpected errors are logged and answered
 * with a generic `internal_error`, never with their details. The error echoes the frame's `id` and
 * names its `channel`, so a client with several frames in flight knows which one failed.
 * The reply is a 200 either way, so Lambda's Errors metric never sees a failure: the server's own
 * faults (internal_error, unavailable) are counted as ServerErrors for this function version, the
 * metric a release rolls back on, as HTTP 5xx are (httpErrors.ts); the client's are not.
 */
export const wsErrorFrames = (): MiddlewareObj<APIGatewayProxyWebsocketEventV2, WsRouteResult> => ({
  onError: async (request) => {
    const { error } = request;
    const { id, channel } = echoOfFailedFrame(request.event.body);
    const frame =
      error instanceof CablecarError
        ? errorFrame(error.code, error.message, error.channel ?? channel)
        : errorFrame('internal_error', 'the request failed; it was not applied', channel);
    if (!(error instanceof CablecarError) || error.retryable) {
      logger.error('websocket route failed', { error });
      countServerError();
    }
    request.response = { statusCode: 200, body: JSON.stringify(withId(frame, id)) };
  },
});

const withId = (frame: ServerFrame, id: string | undefined): Reply => (id === undefined ? frame : { ...frame, id });

/**
 * A WebSocket route: parses the client's frame, runs the route, replies with the frame it returns,
 * carrying the client frame's `id` when it had one.
 */
export function wsRoute(route: (request: WsRequest) => Promise<ServerFrame>) {
  return middy<APIGatewayProxyWebsocketEventV2, WsRouteResult>()
    .use(wsErrorFrames())
    .handler(async (event) => {
      const frame = parseClientFrame(event.body);
      const id = replyIdOf(frame);
      const authorizer = (event.requestContext as { authorizer?: unknown }).authorizer;
      const reply = await route({ connectionId: event.requestContext.connectionId, frame, authorizer });
      return { statusCode: 200, body: JSON.stringify(withId(reply, id)) };
    });
}
