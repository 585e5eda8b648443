import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
// undici's Pool and request() alone, not its index (which also loads fetch, WebSocket, caches and
// mocks: 240 KB more in the bundle).
import request from 'undici/lib/api/api-request.js';
import Pool from 'undici/lib/dispatcher/pool.js';

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

/** The SDK's label encoding: encodeURIComponent plus the characters it leaves alone. */
const encodeLabel = (value: string) =>
  encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * PostToConnection as a SigV4-signed POST over an undici keep-alive pool. This is what the SDK's
 * ApiGatewayManagementApiClient sends, without its per-command middleware stack, which costs about
 * ten times the CPU of the post itself (`npm run bench`, "delivery engine"); a fan-out of 100,000
 * posts is CPU-bound on exactly that. The SDK's retries are not wanted either: fan-out retries with
 * its own backoff and rate limit and must see each outcome.
 */
export function createPostToConnection({ endpoint, region = 'us-east-1', maxSockets, credentials, timeoutMs = 10_000 }: PostToConnectionOptions): PostToConnection {
  const url = new URL(endpoint);
  const basePath = url.pathname.replace(/\/$/, '');
  const pool = new Pool(url.origin, {
    connections: maxSockets,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    connectTimeout: timeoutMs,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const signer = new SignatureV4({
    service: 'execute-api',
    region,
    sha256: Hash.bind(null, 'sha256'),
    // defaultProvider() memoizes: one resolution per container, refreshed shortly before expiry.
    credentials: credentials ?? defaultProvider(),
    applyChecksum: false,
  });
  const protocol = url.protocol;
  const hostname = url.hostname;
  const host = url.host;
  const port = url.port ? Number(url.port) : undefined;

  return async (connectionId, frame) => {
    const path = `${basePath}/@connections/${encodeLabel(connectionId)}`;
    let status: number;
    let body: string;
    try {
      const signed = await signer.sign({
        method: 'POST',
        protocol,
        hostname,
        port,
        path,
        query: {},
        headers: { host, 'content-type': 'application/json' },
        body: frame,
      });
      const response = await request.call(pool, { method: 'POST', path, headers: signed.headers, body: frame });
      status = response.statusCode;
      // A delivered post's body is empty; read error bodies for the log, and always drain the socket.
      body = status === 200 ? (await response.body.dump(), '') : await response.body.text();
    } catch (error) {
      // undici's and the system's network errors carry a code (UND_ERR_*, ECONNRESET, ...); anything
      // else is a bug and must not be retried as if the network had failed.
      if (typeof (error as { code?: unknown }).code === 'string') throw new RetryablePostError(undefined, { cause: error });
      throw error;
    }
    if (status >= 200 && status < 300) return 'delivered';
    // API Gateway answers GoneException with 410; serverless-offline too, without the name.
    if (status === 410) return 'gone';
    if (status === 429 || status >= 500) throw new RetryablePostError(status, { cause: body });
    throw new Error(`PostToConnection answered ${status}: ${body.slice(0, 200)}`);
  };
}
