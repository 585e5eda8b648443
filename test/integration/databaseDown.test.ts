import { expect, it } from 'vitest';
import { history, publish, stackAndClientForThisFile } from '../support/localStack.js';

/** PostgreSQL going away: publish says 503 and stores nothing; when it is back, everything flows again. */
const running = stackAndClientForThisFile();

it('answers 503 (retryable, Retry-After) while PostgreSQL is down, and recovers without losing a message', async () => {
  await running.client.subscribe('outage');
  expect((await publish(running.stack, 'outage', { n: 1 })).body.seq).toBe(1);
  await running.client.waitUntil((f) => f.some((x) => x.type === 'message' && x.seq === 1), 'seq 1');

  await running.stack.stopDatabase();
  const down = await publish(running.stack, 'outage', { n: 'lost?' });
  expect(down.status).toBe(503);
  expect(down.headers.get('retry-after')).toBe('1');
  expect(down.body).toEqual({ error: { code: 'unavailable', message: expect.stringMatching(/retry/i), retryable: true } });
  // The socket side still answers while the database is down.
  expect(await running.client.request({ action: 'ping' }, 'pong')).toEqual({ type: 'pong' });

  await running.stack.startDatabase();
  const up = await publish(running.stack, 'outage', { n: 2 });
  expect(up.status).toBe(202);
  expect(up.body.seq).toBe(2); // the refused publish took no seq: nothing was half-written

  // The bridge reconnects its LISTEN on its own; the message reaches the socket.
  await running.client.waitUntil((f) => f.some((x) => x.type === 'message' && x.seq === 2), 'seq 2 after recovery', 20_000);
  expect((await history(running.stack, 'outage')).body.messages.map((m: any) => m.data)).toEqual([{ n: 1 }, { n: 2 }]);
});
