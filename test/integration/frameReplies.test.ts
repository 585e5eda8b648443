import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeStackPorts } from '../../infra/local/stack.js';
import { startDelayingProxy, type DelayingProxy } from '../support/delayingProxy.js';
import { publish, startTestStack, type TestStack } from '../support/localStack.js';
import { SocketClient, socketsOfThisFile, type Frame } from '../support/socketClient.js';

/**
 * Frame ids, the order of subscription changes and the subscription limit, on the real local stack.
 * The functions reach DynamoDB through a proxy that can hold back one invocation's store call, so a
 * frame the client sent first really runs last, as concurrent invocations may on AWS.
 */
let stack: TestStack;
let proxy: DelayingProxy;
const { connect, closeAll } = socketsOfThisFile(() => stack.websocketUrl);

beforeAll(async () => {
  // Bound before the stack's ports are chosen, so that none of them can be the proxy's.
  proxy = await startDelayingProxy('http://127.0.0.1:0');
  const ports = await freeStackPorts();
  proxy.target = `http://127.0.0.1:${ports.dynamodbPort}`;
  stack = await startTestStack({ ...ports, functionEnv: { DYNAMODB_ENDPOINT: proxy.url } });
});
afterAll(async () => {
  await closeAll();
  await stack?.stop();
  await proxy?.stop();
});

/** Waits for the replies carrying these ids and returns them in the order they arrived. */
async function repliesTo(client: SocketClient, ids: string[]): Promise<Frame[]> {
  await client.waitUntil((frames) => ids.every((id) => frames.some((f) => f.id === id)), `replies to ${ids.join(', ')}`);
  return client.frames.filter((f) => f.id !== undefined && ids.includes(f.id));
}

/** Whether the client receives what is published on the channel now (a probe message). */
async function receives(client: SocketClient, channel: string): Promise<boolean> {
  const { body } = await publish(stack, channel, { probe: true });
  // Fan-out has run to its end for this seq: the frame was written to the socket, or never will be.
  await stack.dispatchIdle();
  // A pong asked for now comes behind it on the same socket (no guessed wait that a slow run outlasts).
  const id = `probe-${channel}-${body.seq}`;
  client.send({ action: 'ping', id });
  await client.waitUntil((frames) => frames.some((f) => f.type === 'pong' && f.id === id), `the pong to ${id}`);
  return client.messages(channel).some((m) => m.seq === body.seq);
}

describe('every reply echoes the id of the frame it answers', () => {
  it('subscribed, unsubscribed, pong and error carry the id; an error names its channel', async () => {
    const client = await connect();
    client.send({ action: 'subscribe', channel: 'ids-1', id: 's-1' });
    client.send({ action: 'ping', id: 'p-1' });
    client.send({ action: 'subscribe', channel: 'bad#name', id: 'e-1' });
    client.send({ action: 'dance', channel: 'ids-1', id: 'e-2' });
    const replies = await repliesTo(client, ['s-1', 'p-1', 'e-1', 'e-2']);
    const byId = Object.fromEntries(replies.map((r) => [r.id, r]));
    expect(byId['s-1']).toEqual({ type: 'subscribed', channel: 'ids-1', seq: 0, id: 's-1' });
    expect(byId['p-1']).toEqual({ type: 'pong', id: 'p-1' });
    expect(byId['e-1']).toMatchObject({ type: 'error', code: 'invalid_channel', channel: 'bad#name', id: 'e-1' });
    expect(byId['e-2']).toMatchObject({ type: 'error', code: 'unknown_action', channel: 'ids-1', id: 'e-2' });

    expect(await client.request({ action: 'unsubscribe', channel: 'ids-1', id: 'u-1' }, 'unsubscribed')).toEqual({
      type: 'unsubscribed',
      channel: 'ids-1',
      id: 'u-1',
    });
    // Without an id, replies are as before.
    expect(await client.request({ action: 'ping' }, 'pong')).toEqual({ type: 'pong' });
  });

  it('an id that is not a string of at most 64 characters is invalid_frame (with nothing to echo), and the socket stays usable', async () => {
    const client = await connect();
    const long = await client.request({ action: 'ping', id: 'x'.repeat(65) }, 'error');
    expect(long).toMatchObject({ type: 'error', code: 'invalid_frame', message: expect.stringMatching(/^id: /) });
    expect(long).not.toHaveProperty('id');
    const numeric = await client.request({ action: 'subscribe', channel: 'ids-2', id: 42 }, 'error');
    expect(numeric).toMatchObject({ code: 'invalid_frame', channel: 'ids-2' });
    expect(numeric).not.toHaveProperty('id');
    expect(await client.request({ action: 'ping', id: 'x'.repeat(64) }, 'pong')).toEqual({ type: 'pong', id: 'x'.repeat(64) });
  });
});

describe('subscription changes take effect in the order the client sent them (rev)', () => {
  it('subscribe then unsubscribe, the subscribe held back until the unsubscribe has run: ends unsubscribed', async () => {
    const client = await connect();
    proxy.rules.push({ operation: 'UpdateItem', contains: 'CHAN#hold-sub', delayMs: 1500 });
    client.send({ action: 'subscribe', channel: 'hold-sub', rev: 1, id: 'a' });
    client.send({ action: 'unsubscribe', channel: 'hold-sub', rev: 2, id: 'b' });
    const replies = await repliesTo(client, ['a', 'b']);
    proxy.rules.length = 0;

    expect(proxy.held).toContain('UpdateItem CHAN#hold-sub');
    // The unsubscribe ran first: its reply came first.
    expect(replies.map((r) => r.id)).toEqual(['b', 'a']);
    expect(replies).toEqual([
      { type: 'unsubscribed', channel: 'hold-sub', rev: 2, id: 'b' },
      { type: 'subscribed', channel: 'hold-sub', seq: 0, rev: 1, superseded: true, id: 'a' },
    ]);
    expect(await receives(client, 'hold-sub')).toBe(false);
  });

  it('unsubscribe then subscribe, the unsubscribe held back until the subscribe has run: ends subscribed', async () => {
    const client = await connect();
    proxy.rules.push(
      { operation: 'PutItem', contains: 'TOMB#hold-unsub', delayMs: 1500 },
      { operation: 'DeleteItem', contains: 'CHAN#hold-unsub', delayMs: 1500 },
    );
    client.send({ action: 'unsubscribe', channel: 'hold-unsub', rev: 1, id: 'a' });
    client.send({ action: 'subscribe', channel: 'hold-unsub', rev: 2, id: 'b' });
    const replies = await repliesTo(client, ['a', 'b']);
    proxy.rules.length = 0;

    expect(proxy.held).toContain('DeleteItem CHAN#hold-unsub');
    expect(replies.map((r) => r.id)).toEqual(['b', 'a']);
    expect(replies).toEqual([
      { type: 'subscribed', channel: 'hold-unsub', seq: 0, rev: 2, id: 'b' },
      { type: 'unsubscribed', channel: 'hold-unsub', rev: 1, superseded: true, id: 'a' },
    ]);
    expect(await receives(client, 'hold-unsub')).toBe(true);
  });

  it('subscribe at once followed by unsubscribe, 20 times as a new user would send them: never left subscribed', async () => {
    const client = await connect();
    for (let n = 0; n < 20; n++) {
      client.send({ action: 'subscribe', channel: `quick-${n}`, rev: 2 * n + 1, id: `s${n}` });
      client.send({ action: 'unsubscribe', channel: `quick-${n}`, rev: 2 * n + 2, id: `u${n}` });
    }
    await repliesTo(client, Array.from({ length: 20 }, (_, n) => [`s${n}`, `u${n}`]).flat());
    const stillReceiving = [];
    for (let n = 0; n < 20; n++) if (await receives(client, `quick-${n}`)) stillReceiving.push(n);
    expect(stillReceiving).toEqual([]);
  });
});

describe('at most MAX_SUBSCRIPTIONS_PER_CONNECTION (100) subscriptions per socket', () => {
  it('refuses the 101st with too_many_subscriptions, stores nothing, counts a held channel once, and the socket stays usable', async () => {
    const client = await connect();
    for (let n = 1; n <= 100; n++) client.send({ action: 'subscribe', channel: `many-${n}`, id: `m${n}` });
    const accepted = await repliesTo(client, Array.from({ length: 100 }, (_, n) => `m${n + 1}`));
    expect(accepted.every((r) => r.type === 'subscribed')).toBe(true);

    const refused = await client.request({ action: 'subscribe', channel: 'many-101', id: 'm101' }, 'error');
    expect(refused).toMatchObject({ type: 'error', code: 'too_many_subscriptions', channel: 'many-101', id: 'm101' });
    expect(await receives(client, 'many-101')).toBe(false);

    // A channel it holds re-subscribes (with after) without counting twice; the socket still works.
    expect(await client.request({ action: 'subscribe', channel: 'many-7', after: 0, id: 'again' }, 'subscribed')).toMatchObject({
      channel: 'many-7',
      id: 'again',
    });
    expect(await receives(client, 'many-7')).toBe(true);
    await client.request({ action: 'unsubscribe', channel: 'many-1' }, 'unsubscribed');
    expect(await client.request({ action: 'subscribe', channel: 'many-101' }, 'subscribed')).toMatchObject({ channel: 'many-101' });
    expect(await client.request({ action: 'subscribe', channel: 'many-102' }, 'error')).toMatchObject({ code: 'too_many_subscriptions' });
  });
});
