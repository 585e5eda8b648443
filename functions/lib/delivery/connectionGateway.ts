import { defaultProvider } from '@aws-sdk/credential-provider-node';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import http from 'node:http';
import https from 'node:https';
import { createPostSigner } from './postSigner.js';

/** What happened to one post: delivered, or the socket is gone for good. Other failures throw. */
export type PostOutcome = 'delivered' | 'gone';

export type PostToConnection = (connectionId: string, frame: string) => Promise<PostOutcome>;

/** A failure worth retrying: throttled (429), the gateway's own 5xx, or the network (no status). */
export class RetryablePostError extends Error {
  override readonly name = 'RetryablePostError';
  constructor(
    readonly status: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(`PostToConnection failed with ${status ?? 'a network error'}`, options);
  }
}

export interface PostToConnectionOptions {
  /** The management endpoint: https://{api}.execute-api.{region}.amazonaws.com/{stage} (or a local one). */
  endpoint: string;
  region?: string;
  /** Keep-alive sockets to the endpoint: the fan-out concurrency. */
  maxSockets: number;
  /** Defaults to the SDK's default chain (the Lambda's role), cached and refreshed before expiry. */
  credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  /** Connect, first-byte and body timeouts; a timed-out post is retryable. */
  timeoutMs?: number;
}

interface Answer {
  status: number;
  body: string;
}

/**
 * PostToConnection as a SigV4-signed POST over Node's own keep-alive agent. This is what the SDK's
 * ApiGatewayManagementApiClient sends, without its per-command middleware stack, which costs about
 * ten times the CPU of the post itself (`npm run bench`, "delivery engine"); a fan-out of 100,000
 * posts is CPU-bound on exactly that. The signature comes from postSigner.ts, which signs this one
 * request shape as @smithy/signature-v4 does at a fraction of its CPU (~125 → ~70 µs per post). The SDK's retries are not wanted either: fan-out retries with
 * its own backoff and rate limit and must see each outcome. node:http rather than undici: undici's
 * pool alone adds 283 KB to a bundle (its HTTP parser twice, as WebAssembly), more than a function's
 * 200 KB budget; node:http adds nothing and costs ~50 µs more CPU per post (same bench run), which
 * a worker waiting ~25 ms on each post's round trip can afford.
 */
export function createPostToConnection({ endpoint, region = 'us-east-1', maxSockets, credentials, timeoutMs = 10_000 }: PostToConnectionOptions): PostToConnection {
  const url = new URL(endpoint);
  const basePath = url.pathname.replace(/\/$/, '');
  const transport = url.protocol === 'https:' ? https : http;
  // LIFO reuses the warmest sockets and lets the others idle out. The agent's socket timeout covers
  // connect, the wait for the answer and its body alike, and closes a socket idle that long; set once
  // per socket, not per post (a per-request timeout re-arms the socket's timer on every post).
  const agent = new transport.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'lifo', timeout: timeoutMs });
  // defaultProvider() memoizes: one resolution per container, refreshed shortly before expiry.
  const sign = createPostSigner({ host: url.host, basePath, region, credentials: credentials ?? defaultProvider() });
  const protocol = url.protocol;
  const hostname = url.hostname;
  const port = url.port ? Number(url.port) : undefined;

  const send = (path: string, headers: string[], frame: string) =>
    new Promise<Answer>((resolve, reject) => {
      const request = transport.request({ agent, protocol, hostname, port, method: 'POST', path, headers, setHost: false }, (response) => {
        const status = response.statusCode ?? 0;
        response.on('error', reject);
        // A delivered post's body is empty; read error bodies for the log, and always drain the socket.
        if (status === 200) {
          response.on('end', () => resolve({ status, body: '' }));
          response.resume();
          return;
        }
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status, body }));
      });
      request.on('timeout', () => request.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
      request.on('error', reject);
      request.end(frame);
    });

  return async (connectionId, frame) => {
    let answer: Answer;
    try {
      // Headers as a flat [name, value, ...] list, host among them: Node sends them as they are,
      // without validating and lower-casing an object's names again (~10 % of the post's CPU).
      const { path, headers } = await sign(connectionId, frame);
      answer = await send(path, headers, frame);
    } catch (error) {
      // The system's network errors carry a code (ECONNRESET, ECONNREFUSED, ETIMEDOUT, ...); anything
      // else is a bug and must not be retried as if the network had failed.
      if (typeof (error as { code?: unknown }).code === 'string') throw new RetryablePostError(undefined, { cause: error });
      throw error;
    }
    const { status, body } = answer;
    if (status >= 200 && status < 300) return 'delivered';
    // API Gateway answers GoneException with 410; serverless-offline too, without the name.
    if (status === 410) return 'gone';
    if (status === 429 || status >= 500) throw new RetryablePostError(status, { cause: body });
    throw new Error(`PostToConnection answered ${status}: ${body.slice(0, 200)}`);
  };
}
