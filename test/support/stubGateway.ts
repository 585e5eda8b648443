import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for API Gateway's management API (`POST /{stage}/@connections/{id}`) on 127.0.0.1, for
 * the delivery engine's tests and the bench's simulation: it can check each request's SigV4
 * signature (computed here independently of the AWS libraries), answer after an injected latency,
 * throttle with a token bucket that answers 429 like the account-level limit, and answer 410 for
 * connections that are gone. It counts what it accepted per connection, so callers can prove that
 * nothing was lost or duplicated.
 */
export interface StubGatewayOptions {
  latencyMs?: number;
  /** Token bucket: accepted posts per second, and the bucket's size (the burst). Unset: no limit. */
  rate?: number;
  burst?: number;
  /** Checks every request's signature with these credentials; a bad one gets 403. */
  verifyWith?: { accessKeyId: string; secretAccessKey: string; region: string };
  gone?: Set<string>;
  /** Overrides the answer for a connection (a status code), before any other rule. */
  answer?: (connectionId: string) => number | undefined;
}

export interface StubGateway {
  endpoint: string;
  /** Accepted posts per connection id (a value above 1 is a duplicate). */
  delivered: Map<string, number>;
  counts: { accepted: number; throttled: number; gone: number; rejected: number };
  lastBodies: Map<string, string>;
  /** Date.now() when the last accepted post was answered. */
  lastAt?: number;
  /** Distinct TCP connections opened by clients (keep-alive reuses them). */
  sockets: number;
  reset(): void;
  close(): Promise<void>;
}

const sha256Hex = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
const rfc3986 = (value: string) => encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** SigV4 as documented for execute-api (each path segment encoded once more in the canonical URI). */
export function verifySigV4(request: IncomingMessage, body: string, credentials: NonNullable<StubGatewayOptions['verifyWith']>): boolean {
  const authorization = String(request.headers.authorization ?? '');
  const match = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(authorization);
  if (!match) return false;
  const [, accessKeyId, date, region, service, signedHeaders, signature] = match;
  if (accessKeyId !== credentials.accessKeyId || region !== credentials.region || service !== 'execute-api') return false;
  const amzDate = String(request.headers['x-amz-date'] ?? '');
  const [rawPath] = (request.url ?? '/').split('?');
  const canonicalUri = rawPath!.split('/').map(rfc3986).join('/');
  const names = signedHeaders!.split(';');
  if (!names.includes('host') || !names.includes('x-amz-date')) return false;
  const canonicalHeaders = names.map((name) => `${name}:${String(request.headers[name] ?? '').trim()}\n`).join('');
  const canonicalRequest = ['POST', canonicalUri, '', canonicalHeaders, signedHeaders, sha256Hex(body)].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, date!), region!), service!), 'aws4_request');
  return createHmac('sha256', key).update(stringToSign).digest('hex') === signature;
}

export async function startStubGateway(options: StubGatewayOptions = {}): Promise<StubGateway> {
  const { latencyMs = 0, rate, burst = rate, verifyWith, answer } = options;
  const gone = new Set(options.gone);
  let tokens = burst ?? 0;
  let refilledAt = performance.now();
  const takeToken = () => {
    if (rate === undefined) return true;
    const now = performance.now();
    tokens = Math.min(burst!, tokens + ((now - refilledAt) / 1000) * rate);
    refilledAt = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };

  const stub: StubGateway = {
    endpoint: '',
    delivered: new Map(),
    counts: { accepted: 0, throttled: 0, gone: 0, rejected: 0 },
    lastBodies: new Map(),
    sockets: 0,
    reset() {
      stub.delivered.clear();
      stub.lastBodies.clear();
      stub.counts = { accepted: 0, throttled: 0, gone: 0, rejected: 0 };
      stub.lastAt = undefined;
      tokens = burst ?? 0;
      refilledAt = performance.now();
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };

  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const match = /\/@connections\/([^/?]+)$/.exec((request.url ?? '').split('?')[0]!);
      const connectionId = match ? decodeURIComponent(match[1]!) : undefined;
      const reply = (status: number) => {
        const send = () => {
          response.statusCode = status;
          response.end(status === 200 ? undefined : JSON.stringify({ message: `status ${status}` }));
          if (status === 200) {
            stub.lastAt = Date.now();
          }
        };
        if (latencyMs > 0) setTimeout(send, latencyMs);
        else send();
      };
      // Checked in the order API Gateway does: the request itself, then throttling, then the socket.
      if (request.method !== 'POST' || !connectionId) return (stub.counts.rejected++, reply(404));
      const forced = answer?.(connectionId);
      if (forced !== undefined) return reply(forced);
      if (verifyWith && !verifySigV4(request, body, verifyWith)) return (stub.counts.rejected++, reply(403));
      if (!takeToken()) return (stub.counts.throttled++, reply(429));
      if (gone.has(connectionId)) return (stub.counts.gone++, reply(410));
      stub.counts.accepted++;
      stub.delivered.set(connectionId, (stub.delivered.get(connectionId) ?? 0) + 1);
      stub.lastBodies.set(connectionId, body);
      reply(200);
    });
  });
  server.on('connection', () => stub.sockets++);
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  stub.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/prod`;
  return stub;
}
