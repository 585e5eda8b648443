import { defaultProvider } from '@aws-sdk/credential-provider-node';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import type { Agent, Dispatcher } from 'undici';
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

/**
 * The undici Agent class that Node itself carries for fetch(). Loading Node's Web classes registers
 * an instance of it as undici's global dispatcher, under the symbol undici documents for sharing it
 * between copies; its class is taken from there. This is undici's keep-alive pool at no bundle
 * cost: the npm package would add 283 KB (its HTTP parser twice, as WebAssembly) to a function with
 * a 200 KB budget, and node:http costs about twice the CPU per post (`npm run bench`, "delivery engine").
 */
function nodeUndiciAgent(): typeof Agent {
  void globalThis.Headers;
  const dispatcher = (globalThis as Record<symbol, unknown>)[Symbol.for('undici.globalDispatcher.1')] as Dispatcher | undefined;
  if (typeof dispatcher?.request !== 'function') throw new Error("This Node.js has no undici behind fetch(): PostToConnection needs Node.js 18 or later");
  return dispatcher.constructor as typeof Agent;
}

// The system's network errors (ECONNRESET, ECONNREFUSED, ...) and undici's timeouts and socket
// failures are worth retrying; any other error is a bug and must not be retried as if the network had failed.
const networkFailure = (error: unknown) => {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && (/^E[A-Z]+$/.test(code) || ['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_SOCKET'].includes(code));
};

interface Answer {
  status: number;
  body: string;
}

/**
 * One request through undici's dispatch API: the status, and the body only when it is not a 200
 * (an error, for the log). request() would wrap every answer in a body stream, which costs ~10 µs
 * of CPU per post for a body that is empty when delivered.
 */
function send(agent: Dispatcher, options: Dispatcher.DispatchOptions): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let status = 0;
    const chunks: Buffer[] = [];
    agent.dispatch(options, {
      onConnect() {},
      onHeaders(statusCode) {
        status = statusCode;
        return true;
      },
      onData(chunk) {
        if (status !== 200) chunks.push(chunk);
        return true;
      },
      onComplete() {
        resolve({ status, body: Buffer.concat(chunks).toString() });
      },
      onError: reject,
    });
  });
}

/**
 * PostToConnection as a SigV4-signed POST over a keep-alive undici pool. This is what the SDK's
 * ApiGatewayManagementApiClient sends, without its per-command middleware stack, which costs several
 * times the CPU of the post itself (`npm run bench`, "delivery engine"); a fan-out of 100,000 posts
 * is CPU-bound on exactly that. The signature comes from postSigner.ts, which signs this one request
 * shape as @smithy/signature-v4 does at a fraction of its CPU. The SDK's retries are not wanted
 * either: fan-out retries with its own backoff and rate limit and must see each outcome.
 */
export function createPostToConnection({ endpoint, region = 'us-east-1', maxSockets, credentials, timeoutMs = 10_000 }: PostToConnectionOptions): PostToConnection {
  const url = new URL(endpoint);
  const basePath = url.pathname.replace(/\/$/, '');
  const origin = url.origin;
  const UndiciAgent = nodeUndiciAgent();
  // Connect, first byte and body each within timeoutMs; a socket idle for 4 s is closed (API
  // Gateway's own keep-alive is longer, so an idle socket is never reused after the server closed it).
  const agent = new UndiciAgent({ connections: maxSockets, connect: { timeout: timeoutMs }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, keepAliveTimeout: 4_000 });
  // defaultProvider() memoizes: one resolution per container, refreshed shortly before expiry.
  const sign = createPostSigner({ host: url.host, basePath, region, credentials: credentials ?? defaultProvider() });

  return async (connectionId, frame) => {
    let answer: Answer;
    try {
      const { path, headers } = await sign(connectionId, frame);
      answer = await send(agent, { origin, method: 'POST', path, headers, body: frame });
    } catch (error) {
      if (networkFailure(error)) throw new RetryablePostError(undefined, { cause: error });
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
