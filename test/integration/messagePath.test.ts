import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTable } from '../../functions/lib/stores/dynamoTable.js';
import { history, publish, startTestStack } from '../support/localStack.js';
import { SocketClient, socketsOfThisFile } from '../support/socketClient.js';

/**
 * The whole path on the real local stack: ws clients → serverless-offline → DynamoDB API;
 * HTTP publish → PostgreSQL → deferred trigger → NOTIFY → bridge → fanout → PostToConnection.
 */
let stack: Awaited<ReturnType<typeof startTestStack>>;
const { connect, closeAll } = socketsOfThisFile(() => stack.websocketUrl);

beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await closeAll();
  await stack?.stop();
});

describe('publish and fan-out', () => {
  it('delivers each message once, in seq order, only to the channels each client subscribed to', async () => {
    const [a, b, c] = [await connect(), await connect(), await connect()];
    expect(await a.subscribe('fan-red')).toEqual({ type: 'subscribed', channel: 'fan-red', seq: 0 });
    await a.subscribe('fan-blue');
    await b.subscribe('fan-red');
    await c.subscribe('fan-green');

    const sent: Record<string, number[]> = { 'fan-red': [], 'fan-blue': [], 'fan-green': [] };
    for (let i = 0; i < 5; i++) {
      for (const channel of Object.keys(sent)) {
        const { status, body } = await publish(stack, channel, { i, channel });
        expect(status).toBe(202);
        expect(body).toEqual({ id: expect.any(String), channel, seq: i + 1 });
        sent[channel]!.push(body.seq);
      }
    }

    await a.waitUntil((f) => f.filter((x) => x.type === 'message').length >= 10, 'a: 10 messages');
    await b.waitUntil((f) => f.filter((x) => x.type === 'message').length >= 5, 'b: 5 messages');
    await c.waitUntil((f) => f.filter((x) => x.type === 'message').length >= 5, 'c: 5 messages');
    await stack.dispatchIdle();

    const seqs = (client: SocketClient, channel?: string) => client.messages(channel).map((m) => m.seq);
    expect(seqs(a, 'fan-red')).toEqual([1, 2, 3, 4, 5]);
    expect(seqs(a, 'fan-blue')).toEqual([1, 2, 3, 4, 5]);
    expect(seqs(a)).toHaveLength(10);
    expect(seqs(b, 'fan-red')).toEqual([1, 2, 3, 4, 5]);
    expect(seqs(b)).toHaveLength(5);
    expect(seqs(c, 'fan-green')).toEqual([1, 2, 3, 4, 5]);
    expect(seqs(c)).toHaveLength(5);

    const first = b.messages('fan-red')[0]!;
    expect(first).toEqual({
      type: 'message',
      channel: 'fan-red',
      seq: 1,
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      data: { i: 0, channel: 'fan-red' },
      publishedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
  });

  it('keeps seq gap-free under concurrent publishes to one channel, and delivers them in seq order', async () => {
    const client = await connect();
    await client.subscribe('burst');
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => publish(stack, 'burst', { i })));
    expect(results.every((r) => r.status === 202)).toBe(true);
    expect(results.map((r) => r.body.seq).sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));

    await client.waitUntil((f) => f.filter((x) => x.type === 'message').length >= 40, '40 messages');
    expect(client.messages('burst').map((m) => m.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
  });

  it('carries a ~100 KB message intact, far past the 8000-byte NOTIFY cap', async () => {
    const client = await connect();
    await client.subscribe('big');
    const data = { blob: 'x'.repeat(100 * 1024), nested: { unicode: 'héllo ✓', list: [1, 2, 3] } };
    const { status } = await publish(stack, 'big', data);
    expect(status).toBe(202);
    await client.waitUntil((f) => f.some((x) => x.type === 'message'), 'the big message');
    expect(client.messages('big')[0]!.data).toEqual(data);
  });

  it('refuses with 413 a message whose frame would exceed 128 KB, and stores nothing', async () => {
    const { status, body } = await publish(stack, 'too-big', { blob: 'x'.repeat(128 * 1024) });
    expect(status).toBe(413);
    expect(body.error).toMatchObject({ code: 'payload_too_large', retryable: false });
    expect((await history(stack, 'too-big')).body.messages).toEqual([]);
  });

  it('serves history pages with after and limit', async () => {
    for (let i = 1; i <= 5; i++) await publish(stack, 'paged', { i });
    const first = await history(stack, 'paged', '?after=0&limit=2');
    expect(first.status).toBe(200);
    expect(first.body.messages.map((m: any) => m.seq)).toEqual([1, 2]);
    expect(first.body.hasMore).toBe(true);
    const last = await history(stack, 'paged', '?after=3&limit=10');
    expect(last.body.messages.map((m: any) => m.data)).toEqual([{ i: 4 }, { i: 5 }]);
    expect(last.body.hasMore).toBe(false);
  });

  it('answers a repeated publish with the same Idempotency-Key with the first message, stored once', async () => {
    const headers = { 'idempotency-key': 'order-42' };
    const first = await publish(stack, 'idem', { n: 1 }, headers);
    const again = await publish(stack, 'idem', { n: 1 }, headers);
    expect(again.status).toBe(202);
    expect(again.body).toEqual(first.body);
    expect((await history(stack, 'idem')).body.messages).toHaveLength(1);
  });
});

describe('browsers on another origin (CORS; the local stage allows any)', () => {
  const origin = 'http://app.example.test';

  it('answers a preflight for publish with the allowed headers and methods', async () => {
    const response = await fetch(`${stack.httpUrl}/channels/room-cors/messages`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,idempotency-key' },
    });
    expect(response.status).toBeLessThan(300);
    expect(response.headers.get('access-control-allow-origin')).toBe(origin);
    const allowed = (name: string) => (response.headers.get(name) ?? '').toLowerCase().split(/\s*,\s*/);
    expect(allowed('access-control-allow-headers')).toEqual(expect.arrayContaining(['authorization', 'content-type', 'idempotency-key']));
    expect(allowed('access-control-allow-methods')).toEqual(expect.arrayContaining(['get', 'post']));
  });

  it('lets the page read Retry-After and Idempotent-Replayed from an answer', async () => {
    const response = await publish(stack, 'room-cors', 1, { origin, 'idempotency-key': 'cors-1' });
    expect(response.status).toBe(202);
    expect(response.headers.get('access-control-allow-origin')).toBe(origin);
    // (serverless-offline may list them twice)
    expect(new Set((response.headers.get('access-control-expose-headers') ?? '').toLowerCase().split(','))).toEqual(new Set(['retry-after', 'idempotent-replayed']));
  });
});

describe('connections that go away', () => {
  it('keeps delivering to the others when a client drops abruptly', async () => {
    const stays = await connect();
    const drops = await connect();
    await stays.subscribe('abrupt');
    await drops.subscribe('abrupt');
    drops.socket.terminate(); // no close frame: the TCP connection just ends

    for (let i = 1; i <= 3; i++) expect((await publish(stack, 'abrupt', { i })).status).toBe(202);
    await stays.waitUntil((f) => f.filter((x) => x.type === 'message').length >= 3, '3 messages');
    expect(stays.messages('abrupt').map((m) => m.seq)).toEqual([1, 2, 3]);
  });

  it('prunes a subscriber whose socket is gone (410) and whose $disconnect never ran', async () => {
    const table = createTable({ tableName: stack.tableName, endpoint: stack.dynamodbUrl, region: 'us-east-1' });
    const ghost = 'ghost-connection-id';
    const ttl = Math.floor(Date.now() / 1000) + 3600;
    // What a lost $disconnect leaves behind on AWS: a connection and a subscription with no socket.
    await table.client.send(
      new PutCommand({ TableName: stack.tableName, Item: { pk: `CONN#${ghost}`, sk: `CONN#${ghost}`, v: 1, connectionId: ghost, connectedAt: 0, ttl } }),
    );
    await table.client.send(
      new PutCommand({ TableName: stack.tableName, Item: { pk: 'CHAN#haunted', sk: `CONN#${ghost}`, v: 1, channel: 'haunted', connectionId: ghost, subscribedAt: 0, ttl } }),
    );
    const live = await connect();
    await live.subscribe('haunted');

    await publish(stack, 'haunted', { boo: true });
    await live.waitUntil((f) => f.some((x) => x.type === 'message'), 'the message');
    await stack.dispatchIdle();

    const { QueryCommand } = await import('@aws-sdk/lib-dynamodb');
    const left = await table.client.send(
      new QueryCommand({ TableName: stack.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': 'CHAN#haunted' } }),
    );
    expect(left.Items?.map((item) => item.sk)).toEqual([expect.not.stringContaining(ghost)]);
  });
});

describe('reconnect', () => {
  it('replays exactly what was missed, in order, before "subscribed"', async () => {
    const first = await connect();
    await first.subscribe('catch-up');
    for (let i = 1; i <= 3; i++) await publish(stack, 'catch-up', { i });
    await first.waitUntil((f) => f.filter((x) => x.type === 'message').length >= 3, '3 messages');
    const lastSeen = Math.max(...first.messages('catch-up').map((m) => m.seq));
    await first.close();

    for (let i = 4; i <= 7; i++) await publish(stack, 'catch-up', { i });
    await stack.dispatchIdle();

    const again = await connect();
    const subscribed = await again.subscribe('catch-up', lastSeen);
    expect(subscribed).toEqual({ type: 'subscribed', channel: 'catch-up', seq: 7 });
    const types = again.frames.map((f) => f.type);
    expect(types).toEqual(['message', 'message', 'message', 'message', 'subscribed']);
    expect(again.messages('catch-up').map((m) => m.data)).toEqual([{ i: 4 }, { i: 5 }, { i: 6 }, { i: 7 }]);

    await publish(stack, 'catch-up', { i: 8 });
    await again.waitUntil((f) => f.some((x) => x.type === 'message' && x.seq === 8), 'seq 8 live');
  });

  it('stops receiving a channel after unsubscribe', async () => {
    const client = await connect();
    await client.subscribe('leaving');
    await publish(stack, 'leaving', { n: 1 });
    await client.waitUntil((f) => f.some((x) => x.type === 'message'), 'first message');
    expect(await client.request({ action: 'unsubscribe', channel: 'leaving' }, 'unsubscribed')).toEqual({
      type: 'unsubscribed',
      channel: 'leaving',
    });
    await publish(stack, 'leaving', { n: 2 });
    await stack.dispatchIdle();
    expect(await client.request({ action: 'ping' }, 'pong')).toEqual({ type: 'pong' });
    expect(client.messages('leaving').map((m) => m.seq)).toEqual([1]);
  });
});
