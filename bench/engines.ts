import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { createPostToConnection } from '../functions/lib/delivery/connectionGateway.js';
import { startStubGatewayChild } from './stubGatewayChild.js';

/**
 * The delivery engine against the plain SDK client (what cablecar used before) and unsigned posts
 * (the floor: HTTP alone, undici's and node:http's), in the same run against a loopback stub in another process, so
 * process.cpuUsage() counts the client side only.
 */
const credentials = { accessKeyId: 'AKIDBENCH', secretAccessKey: 'bench-secret' };
const frame = JSON.stringify({ type: 'message', channel: 'bench', seq: 1, id: '0b6f9a1e-3c1d-4f7e-9a55-2f1c7d0e8b42', data: { text: 'x'.repeat(200) }, publishedAt: new Date().toISOString() });

export interface EngineFigures {
  name: string;
  perSecond: number;
  cpuMicros: number;
}

async function measure(name: string, post: (id: string) => Promise<unknown>, posts: number, concurrency: number): Promise<EngineFigures> {
  // warm-up: sockets, JIT, credential and signing-key caches
  for (let i = 0; i < 1000; i += concurrency) await Promise.all(Array.from({ length: concurrency }, (_, j) => post(`warm-${i + j}`)));
  let next = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < posts) await post(`c-${next++}`);
    }),
  );
  const elapsed = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return { name, perSecond: (posts / elapsed) * 1000, cpuMicros: (used.user + used.system) / posts };
}

export async function benchEngines({ posts, log }: { posts: number; log: (line: string) => void }): Promise<EngineFigures[]> {
  const stub = await startStubGatewayChild();
  const concurrency = 50;
  try {
    // The engine first: it takes its pool from the undici that Node carries, which the npm copy
    // imported below would otherwise stand in for (both register under the same global symbol).
    const engine = createPostToConnection({ endpoint: stub.endpoint, region: 'us-east-1', maxSockets: concurrency, credentials });
    const { Pool } = await import('undici');
    const sdk = new ApiGatewayManagementApiClient({
      endpoint: stub.endpoint,
      region: 'us-east-1',
      credentials,
      maxAttempts: 1,
      requestHandler: new NodeHttpHandler({ httpAgent: new HttpAgent({ keepAlive: true, maxSockets: concurrency }) }),
    });
    const origin = new URL(stub.endpoint).origin;
    const pool = new Pool(origin, { connections: concurrency });
    const agent = new HttpAgent({ keepAlive: true, maxSockets: concurrency, scheduling: 'lifo' });
    const runs: Array<[string, (id: string) => Promise<unknown>]> = [
      ['delivery engine (SigV4 + Node\'s own undici)', (id) => engine(id, frame)],
      ['plain SDK client', (id) => sdk.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from(frame) }))],
      [
        'unsigned undici post (the floor)',
        async (id) => {
          const response = await pool.request({ method: 'POST', path: `/prod/@connections/${id}`, body: frame });
          await response.body.dump();
        },
      ],
      [
        'unsigned node:http post (the transport before)',
        (id) =>
          new Promise<void>((resolve, reject) => {
            const request = httpRequest(`${origin}/prod/@connections/${id}`, { agent, method: 'POST' }, (response) => {
              response.on('end', resolve).resume();
            });
            request.on('error', reject).end(frame);
          }),
      ],
    ];
    // Two rounds, best of each: the machine is shared, so a round can be slowed by a neighbour.
    const best = new Map<string, EngineFigures>();
    for (let round = 1; round <= 2; round++) {
      for (const [name, post] of runs) {
        // The SDK client is ten times slower; a quarter of the posts measure it as well.
        const count = name.startsWith('plain SDK') ? Math.ceil(posts / 4) : posts;
        log(`engines: round ${round}, ${name}, ${count} posts ...`);
        const figures = await measure(name, post, count, concurrency);
        const previous = best.get(name);
        if (!previous || figures.cpuMicros < previous.cpuMicros) best.set(name, figures);
      }
    }
    sdk.destroy();
    await pool.close();
    agent.destroy();
    return [...best.values()];
  } finally {
    await stub.stop();
  }
}
