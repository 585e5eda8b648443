import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { NodeHttpHandler } from '@smithy/node-http-handler';

/** What happened to one post: delivered, or the socket is gone for good. Other failures throw. */
export type PostOutcome = 'delivered' | 'gone';

export type PostToConnection = (connectionId: string, frame: string) => Promise<PostOutcome>;

/** A failure worth retrying: throttled (429) or the gateway's own 5xx. */
export class RetryablePostError extends Error {
  override readonly name = 'RetryablePostError';
  constructor(
    readonly status: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(`PostToConnection failed with ${status ?? 'a network error'}`, options);
  }
}

/**
 * The API Gateway management API over keep-alive sockets: fan-out posts thousands of frames to one
 * host, and a TLS handshake per post would dominate. The SDK's own retries are off because fan-out
 * retries with its own backoff and must see each outcome.
 */
export function createPostToConnection({ endpoint, region, maxSockets }: { endpoint: string; region?: string; maxSockets: number }): PostToConnection {
  const client = new ApiGatewayManagementApiClient({
    endpoint,
    region,
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets }),
    }),
  });

  return async (connectionId, frame) => {
    try {
      await client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: Buffer.from(frame) }));
      return 'delivered';
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      // serverless-offline answers 410 without an error name, so the status decides as well.
      if ((error as Error).name === 'GoneException' || status === 410) return 'gone';
      if (status === undefined || status === 429 || status >= 500) throw new RetryablePostError(status, { cause: error });
      throw error;
    }
  };
}
