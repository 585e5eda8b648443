import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { freeStackPorts, startLocalStack, type LocalStack } from '../infra/local/stack.js';

/**
 * The local stack end to end (serverless-offline, embedded PostgreSQL, dynalite, the dispatch
 * bridge): `subscribers` WebSocket clients on one channel, messages published at `rate` per second
 * for `seconds`; the latency of each frame from the publish request to its arrival, and deliveries
 * per second. Figures for this machine and serverless-offline, not for AWS.
 */
export interface LocalStackFigures {
  subscribers: number;
  messages: number;
  rate: number;
  expected: number;
  delivered: number;
  p50Ms: number;
  p99Ms: number;
  deliveriesPerSecond: number;
  drainS: number;
}

const percentile = (sorted: number[], p: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!);

async function run(stack: LocalStack, channel: string, subscribers: number, rate: number, seconds: number, log: (line: string) => void): Promise<LocalStackFigures> {
  // One token for everything the bench does: it measures delivery, not verification.
  const token = await stack.mintToken({ sub: 'bench', subscribe: [channel], publish: [channel] });
  const websocketUrl = `${stack.websocketUrl}?token=${encodeURIComponent(token)}`;
  const authorization = { authorization: `Bearer ${token}` };
  const sockets: WebSocket[] = [];
  const latencies: number[] = [];
  const sentAt = new Map<number, number>(); // the message's `data.i` → when its publish was sent
  let delivered = 0;
  let lastArrival = 0;
  try {
    log(`local stack: connecting ${subscribers} clients ...`);
    for (let i = 0; i < subscribers; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, subscribers - i) }, async () => {
          const socket = new WebSocket(websocketUrl);
          sockets.push(socket);
          await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
          await new Promise<void>((resolve) => {
            socket.on('message', (raw) => {
              const frame = JSON.parse(String(raw));
              if (frame.type === 'subscribed') resolve();
              if (frame.type === 'message' && frame.channel === channel) {
                const at = performance.now();
                const sent = sentAt.get(frame.data.i);
                if (sent !== undefined) latencies.push(at - sent);
                delivered++;
                lastArrival = at;
              }
            });
            socket.send(JSON.stringify({ action: 'subscribe', channel }));
          });
        }),
      );
    }
    const messages = Math.round(rate * seconds);
    log(`local stack: publishing ${messages} messages at ${rate}/s to ${subscribers} subscribers ...`);
    const started = performance.now();
    const publishes: Promise<unknown>[] = [];
    for (let i = 0; i < messages; i++) {
      const due = started + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      sentAt.set(i, performance.now());
      publishes.push(
        fetch(`${stack.httpUrl}/channels/${channel}/messages`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...authorization },
          body: JSON.stringify({ data: { i, text: 'x'.repeat(100) } }),
        }).then((response) => response.arrayBuffer()),
      );
    }
    await Promise.all(publishes);
    const publishedAt = performance.now();
    const expected = messages * subscribers;
    const deadline = Date.now() + 90_000;
    let reported = Date.now();
    while (delivered < expected && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (Date.now() - reported > 5000) {
        reported = Date.now();
        log(`local stack:   ${delivered}/${expected} frames arrived`);
      }
    }
    latencies.sort((a, b) => a - b);
    const elapsed = ((lastArrival || performance.now()) - started) / 1000;
    return {
      subscribers,
      messages,
      rate,
      expected,
      delivered,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      deliveriesPerSecond: delivered / elapsed,
      drainS: Math.max(0, ((lastArrival || performance.now()) - publishedAt) / 1000),
    };
  } finally {
    sockets.forEach((socket) => socket.terminate());
  }
}

export async function benchLocalStack({
  sizes,
  rate,
  seconds,
  log,
}: {
  sizes: number[];
  rate: number;
  seconds: number;
  log: (line: string) => void;
}): Promise<LocalStackFigures[]> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cablecar-bench-'));
  log('local stack: starting ...');
  const stack = await startLocalStack({ dataDir, ...(await freeStackPorts()), logLevel: 'ERROR' });
  try {
    const figures: LocalStackFigures[] = [];
    for (const subscribers of sizes) figures.push(await run(stack, `bench-${subscribers}`, subscribers, rate, seconds, log));
    return figures;
  } finally {
    await stack.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
