import fc from 'fast-check';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { CHANNEL_NAME_PATTERN, MAX_OUTBOUND_FRAME_BYTES, outboundFrameBytes } from '../../functions/lib/protocol/protocol.js';
import { messageStore, type MessageStore } from '../../functions/lib/stores/messageStore.js';
import { migrate } from '../../infra/migrate.js';
import { postgresForThisFile } from '../support/databases.js';

/**
 * cablecar.publish() and cablecar.broadcast_changes() called from applications' own transactions,
 * on a real PostgreSQL: a message exists and is dispatched (the local variant's NOTIFY) if and only
 * if its transaction commits; refusals are SQL errors with their own SQLSTATE; the publisher role
 * can publish and do nothing else.
 */
const running = postgresForThisFile();
const postgres = () => running.postgres;
const connect = running.connect;
let store: MessageStore;
let admin: pg.Client;
let appUrl: string;
const notified: string[] = [];

beforeAll(async () => {
  await migrate(postgres().url, { kind: 'local' });
  store = messageStore(running.pool(postgres().url, { max: 4 }));
  admin = await connect(postgres().url);
  const listener = await connect(postgres().url);
  listener.on('notification', (n) => notified.push(n.payload!));
  await listener.query('LISTEN cablecar_dispatch');
  // An application's login role: a member of cablecar_publisher, with a schema of its own.
  await admin.query(`CREATE ROLE shop LOGIN PASSWORD 'shop' IN ROLE cablecar_publisher`);
  await admin.query('CREATE SCHEMA shop AUTHORIZATION shop');
  appUrl = `postgres://shop:shop@127.0.0.1:${postgres().port}/cablecar`;
});

const app = () => connect(appUrl);

async function messagesOf(channel: string) {
  const { rows } = await admin.query<{ id: string; seq: string; data: unknown }>(
    'SELECT id, seq, data FROM cablecar.messages WHERE channel = $1 ORDER BY seq',
    [channel],
  );
  return rows.map((r) => ({ id: r.id, seq: Number(r.seq), data: r.data }));
}
const lastSeq = async (channel: string) => store.lastSeq(channel);

/** Waits until a later committed publish was notified: notifications arrive in commit order. */
async function afterDispatchOfLaterMessage(channel: string) {
  const marker = await store.publish(channel, '{"marker":true}');
  await expect.poll(() => notified.includes(marker.id)).toBe(true);
  return marker;
}

/** The error a statement fails with: SQLSTATE and message. */
async function sqlError(client: pg.Client, sql: string, values: unknown[] = []) {
  const error = await client.query(sql, values).then(
    () => undefined,
    (e: unknown) => e as pg.DatabaseError,
  );
  expect(error, `expected "${sql}" to fail`).toBeDefined();
  return { code: error!.code, message: error!.message };
}

describe('cablecar.publish in an application transaction', () => {
  it('publishes nothing and takes no seq when the transaction rolls back; a commit publishes and dispatches at commit', async () => {
    const db = await app();
    await db.query('BEGIN');
    const { rows: inRolledBack } = await db.query(`SELECT id, seq FROM cablecar.publish('tx-room', '{"fate":"rolled back"}')`);
    expect(Number(inRolledBack[0].seq)).toBe(1);
    await db.query('ROLLBACK');
    expect(await lastSeq('tx-room')).toBe(0);
    expect(await messagesOf('tx-room')).toEqual([]);

    await db.query('BEGIN');
    const { rows } = await db.query<{ id: string; seq: string }>(`SELECT id, seq FROM cablecar.publish('tx-room', '{"fate":"committed"}')`);
    expect(Number(rows[0]!.seq)).toBe(1); // the rolled-back seq was given back
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(notified).not.toContain(rows[0]!.id); // nothing leaves before the commit
    await db.query('COMMIT');
    await expect.poll(() => notified.includes(rows[0]!.id)).toBe(true);
    expect(notified).not.toContain(inRolledBack[0].id);
    expect(await messagesOf('tx-room')).toEqual([{ id: rows[0]!.id, seq: 1, data: { fate: 'committed' } }]);
  });

  it('a savepoint rolled back takes its publishes with it; the rest of the transaction is delivered', async () => {
    const db = await app();
    await db.query('BEGIN');
    const first = (await db.query(`SELECT id FROM cablecar.publish('sp-room', '{"n":1}')`)).rows[0].id;
    await db.query('SAVEPOINT maybe');
    const dropped = (await db.query(`SELECT id FROM cablecar.publish('sp-room', '{"n":"dropped"}')`)).rows[0].id;
    await db.query('ROLLBACK TO SAVEPOINT maybe');
    const second = (await db.query(`SELECT id, seq FROM cablecar.publish('sp-room', '{"n":2}')`)).rows[0];
    await db.query('COMMIT');
    expect(Number(second.seq)).toBe(2);
    expect(await messagesOf('sp-room')).toEqual([
      { id: first, seq: 1, data: { n: 1 } },
      { id: second.id, seq: 2, data: { n: 2 } },
    ]);
    await afterDispatchOfLaterMessage('sp-room');
    expect(notified).toContain(first);
    expect(notified).toContain(second.id);
    expect(notified).not.toContain(dropped);
  });

  it('a refused publish fails the statement (and so the transaction) with its SQLSTATE, storing nothing', async () => {
    const db = await app();
    await db.query('BEGIN');
    await db.query(`SELECT cablecar.publish('refusals', '{"n":1}')`);
    const bad = await sqlError(db, `SELECT cablecar.publish('no spaces', '{}')`);
    expect(bad).toEqual({ code: 'CC001', message: expect.stringContaining('invalid channel name "no spaces"') });
    expect((await sqlError(db, 'SELECT 1')).code).toBe('25P02'); // the transaction is aborted
    await db.query('ROLLBACK');
    expect(await lastSeq('refusals')).toBe(0);

    for (const name of ['', '-leading-dash', 'a/b', 'x'.repeat(129), 'room#1', 'é']) {
      expect((await sqlError(db, 'SELECT cablecar.publish($1, $2)', [name, '{}'])).code).toBe('CC001');
    }
    expect((await sqlError(db, 'SELECT cablecar.publish(NULL, $1)', ['{}'])).code).toBe('CC001');
    expect((await sqlError(db, `SELECT cablecar.publish('refusals', NULL)`)).code).toBe('22004');
    expect((await sqlError(db, `SELECT cablecar.publish('refusals', '{}', '')`)).code).toBe('CC004');
    expect((await sqlError(db, `SELECT cablecar.publish('refusals', '{}', repeat('k', 201))`)).code).toBe('CC004');
    expect((await sqlError(db, `SELECT cablecar.publish('refusals', '{not json')`)).code).toBe('22P02');
    expect(await lastSeq('refusals')).toBe(0);
  });

  it('refuses data whose frame would exceed 128 KB (CC002), at exactly the limit outboundFrameBytes draws', async () => {
    const db = await app();
    const channel = 'oversize';
    const fits = MAX_OUTBOUND_FRAME_BYTES - outboundFrameBytes(channel, '""');
    const atLimit = JSON.stringify('x'.repeat(fits));
    expect(outboundFrameBytes(channel, atLimit)).toBe(MAX_OUTBOUND_FRAME_BYTES);
    const over = await sqlError(db, 'SELECT cablecar.publish($1, $2)', [channel, JSON.stringify('x'.repeat(fits + 1))]);
    expect(over).toEqual({
      code: 'CC002',
      message: `the message frame would be ${MAX_OUTBOUND_FRAME_BYTES + 1} bytes; WebSocket messages are limited to ${MAX_OUTBOUND_FRAME_BYTES} bytes`,
    });
    expect(await lastSeq(channel)).toBe(0);
    await db.query('SELECT cablecar.publish($1, $2)', [channel, atLimit]);
    expect(await lastSeq(channel)).toBe(1);
  });

  it('with an idempotency key: the same data again returns the first message; other data fails with CC003', async () => {
    const db = await app();
    const first = (await db.query(`SELECT id, seq FROM cablecar.publish('idem-sql', '{"a":1,"b":2}', 'order-7')`)).rows[0];
    const again = (await db.query(`SELECT id, seq FROM cablecar.publish('idem-sql', '{"b": 2, "a": 1}', 'order-7')`)).rows[0];
    expect(again).toEqual(first);
    const reused = await sqlError(db, `SELECT cablecar.publish('idem-sql', '{"a":1,"b":3}', 'order-7')`);
    expect(reused.code).toBe('CC003');
    expect(reused.message).toBe('idempotency key "order-7" was already used on channel "idem-sql" with different data (message seq 1)');
    expect(await messagesOf('idem-sql')).toEqual([{ id: first.id, seq: 1, data: { a: 1, b: 2 } }]);
  });

  it('keeps seq gap-free and in commit order over concurrent transactions, rollbacks and HTTP publishes on one channel', async () => {
    const channel = 'concurrent';
    const sessions = await Promise.all(Array.from({ length: 6 }, () => app()));
    const committed: string[] = [];
    const rolledBack: string[] = [];
    await Promise.all(
      sessions.map(async (db, s) => {
        for (let round = 0; round < 5; round++) {
          await db.query('BEGIN');
          const ids: string[] = [];
          for (let k = 0; k < 2; k++) {
            ids.push((await db.query('SELECT id FROM cablecar.publish($1, $2)', [channel, JSON.stringify({ s, round, k })])).rows[0].id);
          }
          if ((s + round) % 3 === 0) {
            await db.query('ROLLBACK');
            rolledBack.push(...ids);
          } else {
            await db.query('COMMIT');
            committed.push(...ids);
          }
        }
      }),
    );
    // HTTP publishes to the same channel, interleaved with the SQL ones.
    const http = await Promise.all(Array.from({ length: 5 }, (_, i) => store.publish(channel, JSON.stringify({ http: i }))));
    committed.push(...http.map((m) => m.id));

    const stored = await messagesOf(channel);
    expect(stored.map((m) => m.seq)).toEqual(Array.from({ length: committed.length }, (_, i) => i + 1));
    expect(new Set(stored.map((m) => m.id))).toEqual(new Set(committed));
    expect(rolledBack.length).toBeGreaterThan(0);
    // Each transaction's two messages are adjacent: seq is taken under the channel's lock until commit.
    const sqlMessages = stored.filter((m) => (m.data as { k?: number }).k !== undefined);
    for (let i = 0; i < sqlMessages.length; i += 2) {
      expect(sqlMessages[i + 1]!.seq).toBe(sqlMessages[i]!.seq + 1);
      expect(sqlMessages[i + 1]!.data).toMatchObject({ ...(sqlMessages[i]!.data as object), k: 1 });
    }
    // Dispatched in seq order (commit order), none of the rolled-back ones.
    await afterDispatchOfLaterMessage(channel);
    const order = notified.filter((id) => committed.includes(id));
    expect(order).toEqual(stored.map((m) => m.id));
    expect(notified.some((id) => rolledBack.includes(id))).toBe(false);
  });
  it('under REPEATABLE READ, a publish racing a committed one on the same channel fails with 40001 (retry), storing nothing', async () => {
    const [a, b] = [await app(), await app()];
    await a.query(`SELECT cablecar.publish('rr-room', '{"n":1}')`);
    await a.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await a.query('SELECT 1'); // the snapshot is taken here
    await b.query(`SELECT cablecar.publish('rr-room', '{"n":2}')`);
    expect((await sqlError(a, `SELECT cablecar.publish('rr-room', '{"n":3}')`)).code).toBe('40001');
    await a.query('ROLLBACK');
    expect((await messagesOf('rr-room')).map((m) => m.data)).toEqual([{ n: 1 }, { n: 2 }]);
  });
});

describe('one rule in SQL and in TypeScript', () => {
  it('is_channel_name accepts exactly the names CHANNEL_NAME_PATTERN accepts', async () => {
    const valid = fc.sample(fc.stringMatching(CHANNEL_NAME_PATTERN), 300);
    const nearly = fc.sample(
      fc.tuple(fc.stringMatching(CHANNEL_NAME_PATTERN), fc.string({ unit: 'binary', maxLength: 3 }), fc.nat(140)),
      300,
    ).map(([name, noise, at]) => (name.slice(0, at) + noise + name.slice(at)).replaceAll('\0', ''));
    const edges = ['', 'a', 'a'.repeat(128), 'a'.repeat(129), 'a\n', '\na', 'a-', '-a', '_a', '.a', ':a', 'a b', 'ä', 'a\u0301'];
    const names = [...valid, ...nearly, ...edges];
    const { rows } = await admin.query<{ ok: boolean }>('SELECT cablecar.is_channel_name(n) AS ok FROM unnest($1::text[]) WITH ORDINALITY AS t(n, i) ORDER BY i', [names]);
    expect(rows.map((r) => r.ok)).toEqual(names.map((n) => CHANNEL_NAME_PATTERN.test(n)));
    expect(rows.filter((r) => !r.ok).length).toBeGreaterThan(50);
  });

  it('frame_bytes counts what outboundFrameBytes counts, for any channel and JSON data', async () => {
    const samples = fc.sample(fc.tuple(fc.stringMatching(CHANNEL_NAME_PATTERN), fc.jsonValue()), 500);
    const channels = samples.map(([channel]) => channel);
    const datas = samples.map(([, data]) => JSON.stringify(data));
    const { rows } = await admin.query<{ bytes: number }>(
      'SELECT cablecar.frame_bytes(c, d::json) AS bytes FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(c, d, i) ORDER BY i',
      [channels, datas],
    );
    expect(rows.map((r) => r.bytes)).toEqual(samples.map((_, i) => outboundFrameBytes(channels[i]!, datas[i]!)));
    const { rows: cap } = await admin.query('SELECT cablecar.max_frame_bytes() AS cap');
    expect(cap[0].cap).toBe(MAX_OUTBOUND_FRAME_BYTES);
  });
});

describe('cablecar.broadcast_changes() on an application table', () => {
  let db: pg.Client;
  const warnings: string[] = [];

  beforeAll(async () => {
    db = await app();
    db.on('notice', (notice) => {
      if (notice.severity === 'WARNING') warnings.push(notice.message ?? '');
    });
    await db.query(`
      CREATE TABLE shop.orders (
        id          bigint PRIMARY KEY,
        customer_id text,
        status      text NOT NULL,
        card_number text,
        notes       text
      );
      CREATE TRIGGER orders_broadcast AFTER INSERT OR UPDATE OR DELETE ON shop.orders
        FOR EACH ROW EXECUTE FUNCTION cablecar.broadcast_changes('orders:{customer_id}', 'card_number');
    `);
  });

  it('publishes INSERT, UPDATE and DELETE to the channel named from the row, with record and old_record, without the excluded column', async () => {
    await db.query(`INSERT INTO shop.orders VALUES (1, 'c42', 'new', '4111-1111', 'leave at door')`);
    await db.query(`UPDATE shop.orders SET status = 'paid' WHERE id = 1`);
    await db.query(`DELETE FROM shop.orders WHERE id = 1`);
    const record = { id: 1, customer_id: 'c42', status: 'new', notes: 'leave at door' };
    const stored = await messagesOf('orders:c42');
    expect(stored.map((m) => m.data)).toEqual([
      { op: 'INSERT', schema: 'shop', table: 'orders', record, old_record: null },
      { op: 'UPDATE', schema: 'shop', table: 'orders', record: { ...record, status: 'paid' }, old_record: record },
      { op: 'DELETE', schema: 'shop', table: 'orders', record: null, old_record: { ...record, status: 'paid' } },
    ]);
    expect(stored.map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(JSON.stringify(stored)).not.toContain('4111');
    // Key order is the table's column order.
    expect(Object.keys((stored[0]!.data as { record: object }).record)).toEqual(['id', 'customer_id', 'status', 'notes']);
    await afterDispatchOfLaterMessage('orders:c42');
    for (const m of stored) expect(notified).toContain(m.id);
  });

  it('publishes nothing for changes rolled back with their transaction', async () => {
    await db.query('BEGIN');
    await db.query(`INSERT INTO shop.orders VALUES (2, 'c-rollback', 'new', NULL, NULL)`);
    await db.query('ROLLBACK');
    expect(await lastSeq('orders:c-rollback')).toBe(0);
  });

  it('an UPDATE that moves the row to another channel tells both channels', async () => {
    await db.query(`INSERT INTO shop.orders VALUES (3, 'c-from', 'new', NULL, NULL)`);
    await db.query(`UPDATE shop.orders SET customer_id = 'c-to' WHERE id = 3`);
    expect((await messagesOf('orders:c-from')).map((m) => (m.data as { op: string }).op)).toEqual(['INSERT', 'UPDATE']);
    expect((await messagesOf('orders:c-to')).map((m) => m.data)).toEqual([
      expect.objectContaining({ op: 'UPDATE', record: expect.objectContaining({ customer_id: 'c-to' }), old_record: expect.objectContaining({ customer_id: 'c-from' }) }),
    ]);
  });

  it('a row too big for one frame is published with its primary key only and "truncated": true; the write succeeds', async () => {
    const big = 'n'.repeat(200_000);
    await db.query(`INSERT INTO shop.orders VALUES (4, 'c-big', 'new', 'secret', $1)`, [big]);
    expect((await db.query('SELECT length(notes) AS n FROM shop.orders WHERE id = 4')).rows[0].n).toBe(200_000);
    expect((await messagesOf('orders:c-big')).map((m) => m.data)).toEqual([
      { op: 'INSERT', schema: 'shop', table: 'orders', record: { id: 4 }, old_record: null, truncated: true },
    ]);
  });

  it('a row whose channel is not a valid name is skipped with a WARNING; the write succeeds', async () => {
    warnings.length = 0;
    await db.query(`INSERT INTO shop.orders VALUES (5, 'has space', 'new', NULL, NULL), (6, NULL, 'new', NULL, NULL)`);
    expect((await db.query('SELECT count(*)::int AS n FROM shop.orders WHERE id IN (5, 6)')).rows[0].n).toBe(2);
    expect(warnings).toEqual([
      expect.stringMatching(/INSERT on shop\.orders not published: the channel "orders:has space" .* is not a valid channel name/),
      expect.stringMatching(/INSERT on shop\.orders not published: the channel NULL \(a placeholder column is NULL\)/),
    ]);
    expect(await lastSeq('orders:has space')).toBe(0);
  });

  it('a misconfigured trigger fails with CC005 at its first row', async () => {
    await db.query(`CREATE TABLE shop.typo (id int PRIMARY KEY, room text)`);
    await db.query(`CREATE TRIGGER typo_broadcast AFTER INSERT ON shop.typo FOR EACH ROW EXECUTE FUNCTION cablecar.broadcast_changes('rooms:{rom}')`);
    const error = await sqlError(db, `INSERT INTO shop.typo VALUES (1, 'r1')`);
    expect(error).toEqual({ code: 'CC005', message: expect.stringContaining('names column "rom", which shop.typo does not have') });

    await db.query(`CREATE TABLE shop.before (id int PRIMARY KEY)`);
    await db.query(`CREATE TRIGGER before_broadcast BEFORE INSERT ON shop.before FOR EACH ROW EXECUTE FUNCTION cablecar.broadcast_changes('b:{id}')`);
    expect((await sqlError(db, `INSERT INTO shop.before VALUES (1)`)).code).toBe('CC005');
    expect((await db.query('SELECT count(*)::int AS n FROM shop.before')).rows[0].n).toBe(0);
  });
});

describe('grants', () => {
  it('the publisher role can publish, and cannot read or write the tables or call anything else', async () => {
    const db = await app();
    await db.query(`SELECT cablecar.publish('grants', '{"ok":true}')`);
    expect(await lastSeq('grants')).toBe(1);
    const denied = [
      'SELECT * FROM cablecar.messages',
      'SELECT * FROM cablecar.channels',
      'SELECT * FROM cablecar.migrations',
      `INSERT INTO cablecar.channels (name) VALUES ('sneaky')`,
      `UPDATE cablecar.channels SET last_seq = 0`,
      `DELETE FROM cablecar.messages`,
      // Confirming a fan-out would hide the message from the AWS sweep: the functions' role only (migration 011).
      `UPDATE cablecar.messages SET fanout_confirmed_at = now()`,
      `SELECT cablecar.dispatch(gen_random_uuid())`,
      `SELECT cablecar.dispatch_event(gen_random_uuid())`,
      `SELECT cablecar.frame_bytes('a', '{}')`,
      `SELECT * FROM cablecar.published_with_key('grants', '{}', 'k')`,
      `CREATE TABLE cablecar.mine (id int)`,
    ];
    for (const sql of denied) expect((await sqlError(db, sql)).code, sql).toBe('42501');
    expect(await lastSeq('grants')).toBe(1);
  });

  it('a role that is not a publisher cannot publish', async () => {
    await admin.query(`CREATE ROLE stranger LOGIN PASSWORD 'stranger'`);
    const db = await connect(`postgres://stranger:stranger@127.0.0.1:${postgres().port}/cablecar`);
    expect((await sqlError(db, `SELECT cablecar.publish('grants', '{}')`)).code).toBe('42501');
  });

  it('publish and broadcast_changes run as their owner with a fixed search_path; nothing in cablecar is executable by PUBLIC', async () => {
    const { rows } = await admin.query<{ name: string; definer: boolean; config: string[] | null; public_execute: boolean }>(`
      SELECT p.proname AS name, p.prosecdef AS definer, p.proconfig AS config,
             has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
      FROM pg_proc p WHERE p.pronamespace = 'cablecar'::regnamespace ORDER BY 1`);
    for (const row of rows) {
      expect(row.config, row.name).toEqual(['search_path=pg_catalog, cablecar, pg_temp']);
      expect(row.definer, row.name).toBe(['publish', 'broadcast_changes'].includes(row.name));
    }
    // has_function_privilege('public', …) is false for every function, publish included: only members of the role may.
    expect(rows.filter((r) => r.public_execute)).toEqual([]);
    expect(rows.map((r) => r.name)).toEqual(expect.arrayContaining(['publish', 'broadcast_changes', 'dispatch']));
  });
});
