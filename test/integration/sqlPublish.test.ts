import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { history, publish, stackAndClientForThisFile } from '../support/localStack.js';

/**
 * Publishing from an application's own transactions on the real local stack: the app connects with
 * the URL `npm start` prints (role cablecar_app, a cablecar_publisher), calls cablecar.publish() or
 * lets a table trigger do it, and a WebSocket subscriber receives the message at commit, never one
 * that was rolled back, in seq order with HTTP publishes.
 */
const running = stackAndClientForThisFile();
const apps: pg.Client[] = [];
afterAll(async () => {
  await Promise.all(apps.map((a) => a.end().catch(() => {})));
});

async function app(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: running.stack.appDatabaseUrl });
  await client.connect();
  apps.push(client);
  return client;
}

describe('cablecar.publish() in an application transaction', () => {
  it('delivers at commit, never what was rolled back, in seq order with HTTP publishes', async () => {
    const { stack, client } = running;
    await client.subscribe('sql-room');
    const db = await app();

    await db.query('BEGIN');
    await db.query(`SELECT cablecar.publish('sql-room', '{"fate":"rolled back"}')`);
    await db.query('ROLLBACK');

    await db.query('BEGIN');
    const { rows } = await db.query<{ id: string; seq: string }>(`SELECT id, seq FROM cablecar.publish('sql-room', '{"text":"from SQL"}')`);
    await db.query(`INSERT INTO app_audit_log_that_does_not_exist VALUES (1)`).catch(() => {}); // the app's own statement fails…
    await db.query('ROLLBACK'); // …so it rolls back, and the message goes with it

    await db.query('BEGIN');
    const committed = (await db.query<{ id: string; seq: string }>(`SELECT id, seq FROM cablecar.publish('sql-room', '{"text":"committed"}')`)).rows[0]!;
    // While the transaction is open nothing is delivered (the HTTP publish waits for the channel's lock meanwhile).
    const viaHttp = publish(stack, 'sql-room', { text: 'over HTTP' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(client.messages('sql-room')).toEqual([]);
    await db.query('COMMIT');
    expect((await viaHttp).body).toMatchObject({ channel: 'sql-room', seq: 2 });

    await client.waitUntil((frames) => frames.filter((f) => f.type === 'message' && f.channel === 'sql-room').length >= 2, 'two messages');
    await stack.dispatchIdle();
    expect(Number(rows[0]!.seq)).toBe(1); // the rolled-back transactions' seqs were given back
    expect(client.messages('sql-room')).toEqual([
      expect.objectContaining({ type: 'message', channel: 'sql-room', seq: 1, id: committed.id, data: { text: 'committed' } }),
      expect.objectContaining({ type: 'message', channel: 'sql-room', seq: 2, data: { text: 'over HTTP' } }),
    ]);
    expect((await history(stack, 'sql-room')).body.messages.map((m: { seq: number }) => m.seq)).toEqual([1, 2]);
  });

  it('the HTTP publish answers 422 idempotency_key_reused for a key reused with other data, and stores nothing', async () => {
    const { stack } = running;
    const first = await publish(stack, 'sql-idem', { n: 1 }, { 'idempotency-key': 'k-1' });
    expect(first.status).toBe(202);
    const retry = await publish(stack, 'sql-idem', { n: 1 }, { 'idempotency-key': 'k-1' });
    expect(retry).toMatchObject({ status: 202, body: first.body });
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    const reused = await publish(stack, 'sql-idem', { n: 2 }, { 'idempotency-key': 'k-1' });
    expect(reused.status).toBe(422);
    expect(reused.body.error).toEqual({
      code: 'idempotency_key_reused',
      message: expect.stringContaining('already used on channel "sql-idem" with different data'),
      retryable: false,
    });
    // The same key from SQL is the same key: the SQL caller gets the HTTP publish's message.
    const db = await app();
    const { rows } = await db.query(`SELECT id, seq FROM cablecar.publish('sql-idem', '{"n":1}', 'k-1')`);
    expect(rows[0]).toEqual({ id: first.body.id, seq: '1' });
    expect((await history(stack, 'sql-idem')).body.messages).toHaveLength(1);
  });
});

describe('cablecar.broadcast_changes() on an application table', () => {
  it('delivers INSERT, UPDATE and DELETE to the channel named from the row, without the excluded column', async () => {
    const { stack, client } = running;
    const db = await app();
    await db.query(`
      CREATE TABLE orders (id bigint PRIMARY KEY, customer_id text NOT NULL, status text NOT NULL, card_number text);
      CREATE TRIGGER orders_broadcast AFTER INSERT OR UPDATE OR DELETE ON orders
        FOR EACH ROW EXECUTE FUNCTION cablecar.broadcast_changes('orders:{customer_id}', 'card_number');`);
    await client.subscribe('orders:c7');
    await client.subscribe('orders:c8');

    await db.query(`INSERT INTO orders VALUES (1, 'c7', 'new', '4111'), (2, 'c8', 'new', '5500')`);
    await db.query('BEGIN');
    await db.query(`UPDATE orders SET status = 'paid' WHERE id = 1`);
    await db.query(`DELETE FROM orders WHERE id = 1`);
    await db.query('COMMIT');
    await db.query('BEGIN');
    await db.query(`DELETE FROM orders WHERE id = 2`);
    await db.query('ROLLBACK');

    await client.waitUntil((frames) => frames.filter((f) => f.channel === 'orders:c7' && f.type === 'message').length >= 3, 'c7: 3 changes');
    await stack.dispatchIdle();
    const c7 = { id: 1, customer_id: 'c7', status: 'new' };
    expect(client.messages('orders:c7').map((m) => [m.seq, m.data])).toEqual([
      [1, { op: 'INSERT', schema: 'public', table: 'orders', record: c7, old_record: null }],
      [2, { op: 'UPDATE', schema: 'public', table: 'orders', record: { ...c7, status: 'paid' }, old_record: c7 }],
      [3, { op: 'DELETE', schema: 'public', table: 'orders', record: null, old_record: { ...c7, status: 'paid' } }],
    ]);
    // c8's row was inserted, and its delete rolled back: one message.
    expect(client.messages('orders:c8').map((m) => (m.data as { op: string }).op)).toEqual(['INSERT']);
    expect(JSON.stringify(client.messages())).not.toMatch(/4111|5500/);
  });
});
