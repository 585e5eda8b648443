import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';

/**
 * An HTTP proxy in front of the local DynamoDB API that holds back chosen requests, so a test can
 * make one Lambda invocation's store call wait while another invocation runs to its end: the way
 * API Gateway's concurrent invocations of one connection's frames may finish in any order.
 */
export interface DelayRule {
  /** The DynamoDB operation (X-Amz-Target suffix), e.g. "UpdateItem". */
  operation: string;
  /** A string the request body contains, e.g. a channel name. */
  contains: string;
  delayMs: number;
}

export interface DelayingProxy {
  url: string;
  /** Where requests go; settable, so the proxy can be bound before the ports of what it fronts are chosen. */
  target: string;
  rules: DelayRule[];
  /** The requests held back so far, as "<operation> <rule.contains>". */
  held: string[];
  stop(): Promise<void>;
}

export async function startDelayingProxy(target: string): Promise<DelayingProxy> {
  const rules: DelayRule[] = [];
  const held: string[] = [];
  const server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', async () => {
      const body = Buffer.concat(chunks);
      const operation = String(incoming.headers['x-amz-target'] ?? '').split('.').pop() ?? '';
      const rule = rules.find((r) => r.operation === operation && body.includes(r.contains));
      if (rule) {
        held.push(`${operation} ${rule.contains}`);
        await new Promise((resolve) => setTimeout(resolve, rule.delayMs));
      }
      const upstream = new URL(proxy.target);
      const forwarded = httpRequest(
        { host: upstream.hostname, port: upstream.port, method: incoming.method, path: incoming.url, headers: incoming.headers as IncomingHttpHeaders },
        (answer) => {
          outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(outgoing);
        },
      );
      forwarded.on('error', () => outgoing.destroy());
      forwarded.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: bound } = server.address() as { port: number };
  const proxy: DelayingProxy = {
    target,
    url: `http://127.0.0.1:${bound}`,
    rules,
    held,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return proxy;
}
