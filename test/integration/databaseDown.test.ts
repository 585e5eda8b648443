import { afterAll, beforeAll, expect, it } from 'vitest';
import { history, publish, startTestStack } from '../support/localStack.js';
import { SocketClient } from '../support/socketClient.js';

/** PostgreSQL going away: publish says 503 and stores nothing; when it is back, everything flows again. */
let stack: Awaited<ReturnType<typeof startTestStack>>;
let client: SocketClient;

beforeAll(async () => {
  stack = await startTestStack();
  client = await SocketClient.connect(stack.websocketUrl);
});
afterAll(async () => {
  await client?.close();
  await stack?.stop();
});

it('answers 503 (retryable, Retry-After) while PostgreSQL is down, and recovers without losing a message', async () => {
  await client.subscribe('outage');
  expect((await publish(stack, 'outage', { n: 1 })).body.seq).toBe(1);
  await client.waitUntil((f) => f.some((x) => x.type === 'message' && x.seq === 1), 'seq 1');

  await stack.stopDatabase();
  const down = await publish(stack, 'outage', { n: 'lost?' });
  expect(down.status).toBe(503);
  expect(down.headers.get('retry-after')).toBe('1');
  expect(down.body).toEqual({ error: { code: 'unavailable', message: expect.stringMatching(/retry/i), retryable: true } });
  // The socket side still answers while the database is down.
  expect(await client.request({ action: 'ping' }, 'pong')).toEqual({ type: 'pong' });

  await stack.startDatabase();
  const up = await publish(stack, 'outage', { n: 2 });
  expect(up.status).toBe(202);
  expect(up.body.seq).toBe(2); // the refused publish took no seq: nothing was half-written

  // The bridge reconnects its LISTEN on its own; the message reaches the socket.
  await client.waitUntil((f) => f.some((x) => x.type === 'message' && x.seq === 2), 'seq 2 after recovery', 20_000);
  expect((await history(stack, 'outage')).body.messages.map((m: any) => m.data)).toEqual([{ n: 1 }, { n: 2 }]);
});
