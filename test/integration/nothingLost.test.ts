import { randomUUID } from 'node:crypto';
import { createServer, request as httpRequest, type Server } from 'node:http';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeStackPorts } from '../../infra/local/stack.js';
import { history, publish, startTestStack, type TestStack } from '../support/localStack.js';
import { SocketClient } from '../support/socketClient.js';

/**
 * Faults injected into the real local stack while numbered streams are published: PostgreSQL
 * backends (the bridge's LISTEN and pool connections, publish's) terminated again and again, the
 * Lambda endpoint the bridge invokes failing (refusing, answering 502, or dropping the answer of an
 * invoke that ran), and serverless-offline killed and restarted. Every acknowledged message must
 * reach every subscriber that stayed connected, live, in seq order, with no gap (a repeat of the
 * seq just delivered is allowed: delivery is at least once).
 */
const SUBSCRIBERS = 20;
const PER_CHANNEL = 40;
const CHANNELS = ['nl-a', 'nl-b'];

/** A proxy in front of serverless-offline's Lambda port that fails a share of the invokes. */
class FaultyLambdaProxy {
  failureRate = 0;
  invokes = 0;
  failures = 0;
  private server!: Server;
  port = 0;

  /** Where the invokes go (serverless-offline's Lambda port). */
  targetPort = 0;

  async start(): Promise<void> {
    this.server = createServer((incoming, outgoing) => {
      this.invokes++;
      const roll = Math.random();
      const fail = roll < this.failureRate;
      if (fail && roll < this.failureRate / 3) {
        this.failures++;
        incoming.resume();
        outgoing.socket?.destroy(); // refused before fan-out ran
        return;
      }
      if (fail && roll < (this.failureRate * 2) / 3) {
        this.failures++;
        incoming.resume();
        outgoing.writeHead(502).end('{"message":"injected"}');
        return;
      }
      const forward = httpRequest(
        { host: '127.0.0.1', port: this.targetPort, path: incoming.url, method: incoming.method, headers: incoming.headers },
        (answer) => {
          if (fail) {
            // Fan-out ran, but its answer is lost: the bridge must not skip, and may repeat it.
            this.failures++;
            answer.resume();
            outgoing.socket?.destroy();
            return;
          }
          outgoing.writeHead(answer.statusCode ?? 500, answer.headers);
          answer.pipe(outgoing);
        },
      );
      forward.on('error', () => outgoing.socket?.destroy());
      incoming.pipe(forward);
    });
    // Bound before the stack's ports are chosen, so that none of them can be this one.
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

let stack: TestStack;
const proxy = new FaultyLambdaProxy();
let admin: pg.Client;
const clients: SocketClient[] = [];

beforeAll(async () => {
  await proxy.start();
  const ports = await freeStackPorts();
  proxy.targetPort = ports.lambdaPort;
  stack = await startTestStack({ ...ports, bridgeLambdaEndpoint: `http://127.0.0.1:${proxy.port}`, sweepIntervalMs: 500 });
  admin = new pg.Client({ connectionString: stack.databaseUrl });
  await admin.connect();
}, 180_000);
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await admin?.end().catch(() => {});
  await stack?.stop();
  await proxy.stop();
});

async function subscribers(channel: string, count: number): Promise<SocketClient[]> {
  const connected = await Promise.all(Array.from({ length: count }, () => SocketClient.connect(stack.websocketUrl)));
  clients.push(...connected);
  await Promise.all(connected.map((client) => client.subscribe(channel)));
  return connected;
}

/** Publishes until acknowledged (202), retrying 503s with the same Idempotency-Key; returns the seq. */
async function publishAcknowledged(channel: string, data: unknown): Promise<number> {
  const key = randomUUID();
  const answers: unknown[] = [];
  for (let attempt = 1; attempt <= 100; attempt++) {
    const answer = await publish(stack, channel, data, { 'idempotency-key': key }).catch((error: Error) => ({ status: 0, body: error.message }));
    if (answer.status === 202) return answer.body.seq as number;
    answers.push({ status: answer.status, body: answer.body });
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`publish to ${channel} never acknowledged; last answers: ${JSON.stringify(answers.slice(-3))}`);
}

/** `count` messages one after another, each until acknowledged; their seqs. */
async function publishInTurn(channel: string, count: number, phase: string): Promise<number[]> {
  const seqs: number[] = [];
  for (let i = 0; i < count; i++) seqs.push(await publishAcknowledged(channel, { phase, i }));
  return seqs;
}

/** Terminates every other backend of the cablecar database, every `everyMs`, until stopped. */
function terminateBackendsRepeatedly(everyMs: number) {
  let running = true;
  let closed = false;
  let rounds = 0;
  let terminated = 0;
  const loop = (async () => {
    // Ends with the test (running = false) or with the admin connection (a test that failed).
    while (running && !closed) {
      const { rows } = await admin.query<{ count: string }>(
        `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS count FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
      );
      terminated += Number(rows[0]?.count ?? 0);
      rounds++;
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })().catch(() => {
    closed = true;
  });
  return {
    async stop() {
      running = false;
      await loop;
      return { rounds, terminated };
    },
  };
}

/** The seqs a client received on a channel, checked: in order, repeats only of the seq just before. */
function deliveredInOrder(client: SocketClient, channel: string): number[] {
  const seqs = client.messages(channel).map((m) => m.seq as number);
  for (let i = 1; i < seqs.length; i++) {
    if (seqs[i]! < seqs[i - 1]!) throw new Error(`out of order on ${channel}: ${seqs[i - 1]} then ${seqs[i]} (${seqs.join(',')})`);
  }
  return [...new Set(seqs)];
}

async function expectEverySeq(group: SocketClient[], channel: string, acknowledged: number[]) {
  const expected = Array.from({ length: Math.max(...acknowledged) }, (_, i) => i + 1);
  // Seq has no gaps: every acknowledged seq is in 1..max, and so is every stored message.
  expect([...acknowledged].sort((a, b) => a - b)).toEqual(expected);
  await Promise.all(
    group.map((client) =>
      client.waitUntil((frames) => new Set(frames.filter((f) => f.type === 'message' && f.channel === channel).map((f) => f.seq)).size >= expected.length, `${channel}: ${expected.length} messages`, 60_000),
    ),
  );
  for (const client of group) expect(deliveredInOrder(client, channel)).toEqual(expected);
}

describe('nothing acknowledged is lost (faults injected)', () => {
  it('backends terminated again and again and a failing Lambda endpoint: every subscriber gets every seq, live, in order', async () => {
    const groups = await Promise.all(CHANNELS.map((channel) => subscribers(channel, SUBSCRIBERS / CHANNELS.length)));
    proxy.failureRate = 0.3;
    const terminator = terminateBackendsRepeatedly(100);

    // Four publishers per channel at once.
    const acknowledged = await Promise.all(
      CHANNELS.map(async (channel) => {
        const seqs: number[] = [];
        await Promise.all(
          Array.from({ length: 4 }, async (_, publisher) => {
            for (let i = 0; i < PER_CHANNEL / 4; i++) seqs.push(await publishAcknowledged(channel, { publisher, i }));
          }),
        );
        return seqs;
      }),
    );
    const { rounds, terminated } = await terminator.stop();

    // The Lambda endpoint keeps failing until everything has arrived: with backends terminated every
    // 100 ms the bridge may dispatch little while publishing goes on, and its invokes must meet the
    // faults whenever they happen (a run that dispatched only afterwards tested no failing invoke).
    for (const [index, channel] of CHANNELS.entries()) await expectEverySeq(groups[index]!, channel, acknowledged[index]!);
    proxy.failureRate = 0;
    await stack.dispatchIdle();
    const { rows } = await admin.query<{ count: string }>('SELECT count(*) FROM cablecar.messages WHERE dispatched_at IS NULL');
    expect(Number(rows[0]!.count)).toBe(0);
    // The faults did happen, more than once while the messages were published.
    expect(rounds).toBeGreaterThanOrEqual(3);
    expect(terminated).toBeGreaterThan(0);
    expect(proxy.failures).toBeGreaterThan(0);
    // Nothing crashed meanwhile (a stack that restarted serverless-offline would hide it).
    expect((await stack.health()).parts.offline.restarts).toBe(0);
    expect(stack.logLines.some((line) => line.startsWith('[bridge]') && line.includes('retrying, the channel waits'))).toBe(true);
  }, 240_000);

  it('serverless-offline killed and restarted: what was published meanwhile is dispatched, and reconnected subscribers miss nothing', async () => {
    const channel = 'nl-restart';
    const group = await subscribers(channel, 5);
    const before = await publishInTurn(channel, 5, 'before');
    await Promise.all(group.map((client) => client.waitUntil((f) => f.filter((x) => x.type === 'message').length >= 5, 'the first 5')));

    process.kill(stack.pids().offline!, 'SIGKILL');
    // Published from SQL (cablecar.publish) while the HTTP API is down: acknowledged by the commit.
    const during: number[] = [];
    for (let i = 0; i < 5; i++) {
      const { rows } = await admin.query<{ seq: string }>('SELECT seq FROM cablecar.publish($1, $2::json)', [channel, JSON.stringify({ phase: 'during', i })]);
      during.push(Number(rows[0]!.seq));
    }
    const deadline = Date.now() + 120_000;
    // Until the stack has seen it die and brought it back.
    for (let health = await stack.health(); !(health.parts.offline.restarts === 1 && health.parts.offline.up); health = await stack.health()) {
      if (Date.now() > deadline) throw new Error('serverless-offline did not come back');
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(stack.logLines.some((line) => line.includes('serverless-offline was killed by SIGKILL; restarting it'))).toBe(true);
    await stack.dispatchIdle();

    // The sockets died with serverless-offline; each client comes back with `after` = its last seq.
    const back = await Promise.all(
      group.map(async (old) => {
        const client = await SocketClient.connect(stack.websocketUrl);
        clients.push(client);
        client.frames.push(...old.messages(channel));
        await client.subscribe(channel, Math.max(...old.messages(channel).map((m) => m.seq as number)));
        return client;
      }),
    );
    const after = await publishInTurn(channel, 5, 'after');
    await expectEverySeq(back, channel, [...before, ...during, ...after]);
  }, 240_000);

  it('PostgreSQL killed mid-stream: the stack restarts it, and subscribers that stayed connected get every seq in order', async () => {
    const channel = 'nl-pg-killed';
    const group = await subscribers(channel, 5);
    const acknowledged = await publishInTurn(channel, 5, 'before');
    await admin.end();
    process.kill(stack.pids().postgres!, 'SIGKILL');
    // Published while PostgreSQL is down and coming back: 503s, retried until acknowledged.
    acknowledged.push(...(await publishInTurn(channel, 5, 'after')));
    expect(stack.logLines.some((line) => line.includes('[stack] PostgreSQL killed by SIGKILL; restarting it'))).toBe(true);
    expect((await stack.health()).parts.postgres).toEqual({ up: true, restarts: 1 });
    admin = new pg.Client({ connectionString: stack.databaseUrl });
    await admin.connect();
    await expectEverySeq(group, channel, acknowledged);
  }, 240_000);

  it('history and subscribe say truncated, with the oldest seq kept, once retention pruned what a client asks for', async () => {
    const channel = 'nl-pruned';
    await publishInTurn(channel, 6, 'pruned');
    await stack.dispatchIdle();
    // What the stack's retention round (and the retention function on AWS) runs, keeping 2.
    await admin.query('SELECT cablecar.prune(NULL, 2)');

    const page = await history(stack, channel, '?after=1');
    expect(page.status).toBe(200);
    expect(page.body).toMatchObject({ channel, hasMore: false, truncated: true, oldestSeq: 5 });
    expect(page.body.messages.map((m: { seq: number }) => m.seq)).toEqual([5, 6]);
    expect((await history(stack, channel, '?after=4')).body.truncated).toBeUndefined();

    const [client] = await subscribers(channel, 1);
    expect(await client!.subscribe(channel, 1)).toEqual({ type: 'subscribed', channel, seq: 6, truncated: true, oldestSeq: 5 });
    expect(client!.messages(channel).map((m) => m.seq)).toEqual([5, 6]);
  });
});
