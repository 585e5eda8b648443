import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { freeStackPorts, startLocalStack } from '../infra/local/stack.js';
import { stopOnSignals } from '../infra/local/stopSignals.js';

/**
 * `npm run bench [-- --clients 200 --messages 100 --size 1024]`: the local stack under load. Prints
 * publish latency, publish → last-subscriber latency and delivered frames per second. Figures are
 * for this machine and serverless-offline, not for AWS; compare runs, not absolutes.
 */
const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '200' },
    messages: { type: 'string', default: '100' },
    size: { type: 'string', default: '1024' },
  },
});
const clients = Number(values.clients);
const messages = Number(values.messages);
const size = Number(values.size);

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const summary = (label: string, values: number[]) => {
  if (values.length === 0) return console.log(`${label.padEnd(34)} no samples`);
  const sorted = [...values].sort((a, b) => a - b);
  console.log(
    `${label.padEnd(34)} p50 ${percentile(sorted, 50).toFixed(1).padStart(7)} ms   p95 ${percentile(sorted, 95).toFixed(1).padStart(7)} ms   max ${sorted.at(-1)!.toFixed(1).padStart(7)} ms`,
  );
};

const dataDir = await mkdtemp(join(tmpdir(), 'cablecar-bench-'));
console.log(`bench: starting the local stack ...`);
const stack = await startLocalStack({
  dataDir,
  ...(await freeStackPorts()),
  logLevel: 'ERROR',
});
const sockets: WebSocket[] = [];
const stopBench = async () => {
  sockets.forEach((socket) => socket.terminate());
  await stack.stop();
  await rm(dataDir, { recursive: true, force: true });
};
stopOnSignals(async () => {
  console.log('\nbench: interrupted, stopping the stack ...');
  await stopBench();
});
try {
  console.log(`bench: connecting ${clients} clients ...`);
  const received = new Map<number, number>(); // seq → frames received
  const lastArrival = new Map<number, number>();
  // One token for everything the bench does: it measures delivery, not verification.
  const token = await stack.mintToken({ sub: 'bench', subscribe: ['bench'], publish: ['bench'] });
  for (let i = 0; i < clients; i++) {
    const socket = new WebSocket(`${stack.websocketUrl}?token=${token}`);
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    await new Promise<void>((resolve) => {
      socket.on('message', (raw) => {
        const frame = JSON.parse(String(raw));
        if (frame.type === 'subscribed') resolve();
        if (frame.type === 'message') {
          received.set(frame.seq, (received.get(frame.seq) ?? 0) + 1);
          lastArrival.set(frame.seq, performance.now());
        }
      });
      socket.send(JSON.stringify({ action: 'subscribe', channel: 'bench' }));
    });
    sockets.push(socket);
    if ((i + 1) % 50 === 0) console.log(`bench:   ${i + 1}/${clients} subscribed`);
  }

  console.log(`bench: publishing ${messages} messages of ${size} bytes, one after another ...`);
  const publishMs: number[] = [];
  const publishedAt = new Map<number, number>();
  const payload = 'x'.repeat(size);
  const started = performance.now();
  for (let i = 0; i < messages; i++) {
    const t0 = performance.now();
    const response = await fetch(`${stack.httpUrl}/channels/bench/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ data: { i, payload } }),
    });
    const { seq } = (await response.json()) as { seq: number };
    publishMs.push(performance.now() - t0);
    publishedAt.set(seq, t0);
    if ((i + 1) % 25 === 0) console.log(`bench:   ${i + 1}/${messages} published`);
  }

  const deadline = Date.now() + 120_000;
  while ([...publishedAt.keys()].some((seq) => (received.get(seq) ?? 0) < clients) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const elapsedS = (performance.now() - started) / 1000;
  const delivered = [...received.values()].reduce((a, b) => a + b, 0);
  const complete = [...publishedAt.keys()].filter((seq) => received.get(seq) === clients);

  console.log(`\ncablecar bench — ${clients} subscribers, ${messages} messages of ${size} B, local stack`);
  summary('publish (HTTP 202)', publishMs);
  summary('publish → last subscriber has it', complete.map((seq) => lastArrival.get(seq)! - publishedAt.get(seq)!));
  console.log(`delivered frames                   ${delivered} of ${clients * messages} expected (${complete.length}/${messages} messages reached everyone)`);
  console.log(`throughput                         ${(delivered / elapsedS).toFixed(0)} frames/s over ${elapsedS.toFixed(1)} s`);
} finally {
  await stopBench();
}
