import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { messageStore } from '../../functions/lib/stores/messageStore.js';
import { migrate } from '../../infra/migrate.js';
import { postgresForThisFile } from '../support/databases.js';

/**
 * Migration 002 on a real PostgreSQL: a database in the layout before schema `cablecar` (tables and
 * functions in public, bookkeeping in public.cablecar_migrations), holding data, is moved into the
 * schema; the version still serving during the release keeps working through the compatibility
 * views; and a fresh install beside an application's own `messages` table leaves that table alone.
 */
const running = postgresForThisFile();
const connect = running.connect;

/** What the runner before the schema move left in a database, frozen: 001 in public, the local dispatch. */
async function createOldLayout(db: pg.Client): Promise<void> {
  const migration001 = await readFile(join(import.meta.dirname, '..', '..', 'infra', 'sql', 'migrations', '001_messages.sql'), 'utf8');
  await db.query('CREATE TABLE cablecar_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
  await db.query(migration001);
  await db.query(`INSERT INTO cablecar_migrations (name) VALUES ('001_messages.sql')`);
  await db.query(`
    CREATE OR REPLACE FUNCTION cablecar_dispatch(message_id uuid) RETURNS void
    LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('cablecar_dispatch', message_id::text);
    END
    $$;`);
}

/** The SQL of version 1's messageStore, frozen: what the version still serving sends during the release. */
const versionOne = {
  publish: (db: pg.Client, channel: string, dataJson: string) =>
    db.query<{ id: string; seq: string }>(
      `WITH next AS (
         INSERT INTO channels (name, last_seq) VALUES ($1, 1)
         ON CONFLICT (name) DO UPDATE SET last_seq = channels.last_seq + 1
         RETURNING last_seq
       )
       INSERT INTO messages (channel, seq, data, idempotency_key)
       SELECT $1, last_seq, $2::json, $3 FROM next
       RETURNING id, seq`,
      [channel, dataJson, null],
    ),
  history: (db: pg.Client, channel: string) =>
    db.query<{ message: { seq: number; data: unknown } }>(
      `SELECT cablecar_message_json(m) AS message FROM messages m WHERE m.channel = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3`,
      [channel, 0, 100],
    ),
  lastSeq: (db: pg.Client, channel: string) => db.query('SELECT last_seq FROM channels WHERE name = $1', [channel]),
  idempotencyLookup: (db: pg.Client, channel: string, key: string) =>
    db.query('SELECT id, seq FROM messages WHERE channel = $1 AND idempotency_key = $2', [channel, key]),
};

const relationsIn = async (db: pg.Client, schema: string) =>
  (
    await db.query<{ name: string; kind: string }>(
      `SELECT c.relname AS name, c.relkind::text AS kind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relkind IN ('r', 'v') ORDER BY 1`,
      [schema],
    )
  ).rows;
const functionsIn = async (db: pg.Client, schema: string) =>
  (
    await db.query<{ name: string }>(
      `SELECT p.proname AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 ORDER BY 1`,
      [schema],
    )
  ).rows.map((r) => r.name);

describe('a database in the layout before schema cablecar, with data', () => {
  let url: string;
  let db: pg.Client;
  const notified: string[] = [];
  const oldIds: string[] = [];

  beforeAll(async () => {
    url = await running.postgres.createDatabase('old_layout');
    db = await connect(url);
    await createOldLayout(db);
    for (let n = 1; n <= 3; n++) oldIds.push((await versionOne.publish(db, 'room-old', JSON.stringify({ n }))).rows[0]!.id);
    const listener = await connect(url);
    listener.on('notification', (n) => notified.push(n.payload!));
    await listener.query('LISTEN cablecar_dispatch');
  });

  it('moves tables, data and bookkeeping into cablecar and applies only the migrations after 001', async () => {
    expect(await migrate(url, { kind: 'local' })).toEqual(['002_cablecar_schema.sql', '003_sql_publish.sql', '010_retention.sql', '011_fanout_confirmed.sql']);
    const tables = await relationsIn(db, 'cablecar');
    expect(tables).toEqual([
      { name: 'channels', kind: 'r' },
      { name: 'messages', kind: 'r' },
      { name: 'migrations', kind: 'r' },
    ]);
    const { rows } = await db.query('SELECT id, seq, data FROM cablecar.messages ORDER BY seq');
    expect(rows.map((r) => [r.id, Number(r.seq), r.data])).toEqual(oldIds.map((id, i) => [id, i + 1, { n: i + 1 }]));
    expect((await db.query('SELECT last_seq FROM cablecar.channels')).rows).toEqual([{ last_seq: '3' }]);
    expect((await db.query('SELECT name FROM cablecar.migrations ORDER BY name')).rows.map((r) => r.name)).toEqual([
      '001_messages.sql',
      '002_cablecar_schema.sql',
      '003_sql_publish.sql',
      '010_retention.sql',
      '011_fanout_confirmed.sql',
    ]);
    // Only the compatibility views (and their message function) are left in public.
    expect(await relationsIn(db, 'public')).toEqual([
      { name: 'channels', kind: 'v' },
      { name: 'messages', kind: 'v' },
    ]);
    expect(await functionsIn(db, 'public')).toEqual(['cablecar_message_json', 'cablecar_message_json']);
  });

  it('leaves every message stored before it unconfirmed, so the AWS sweep checks those of its window too', async () => {
    const { rows } = await db.query('SELECT id FROM cablecar.messages WHERE fanout_confirmed_at IS NULL ORDER BY seq');
    expect(rows.map((r) => r.id)).toEqual(oldIds);
    const unconfirmed = await messageStore(running.pool(url)).unconfirmedBetween({ olderThanSeconds: 0, withinSeconds: 3600, limit: 10 });
    expect(unconfirmed.map((m) => m.id)).toEqual(oldIds);
  });

  it('keeps each channel seq: the next publish is 4, and the dispatch fires at commit', async () => {
    const pool = running.pool(url);
    const published = await messageStore(pool).publish('room-old', '{"n":4}');
    expect(published.seq).toBe(4);
    await expect.poll(() => notified.includes(published.id)).toBe(true);
    expect((await messageStore(pool).history('room-old', 0, 10)).messages.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
  });

  // The login role of the local stack and these tests is named `cablecar`, so the default search_path
  // ("$user", public) finds the moved tables themselves; any other role name finds the views in public.
  it.each([
    ['a role named cablecar', '"$user", public', 5],
    ['any other role', 'public', 6],
  ])('serves the version still running during the release (%s): its SQL publishes (dispatched, next seq) and reads', async (_, searchPath, seq) => {
    const old = await connect(url);
    await old.query(`SET search_path TO ${searchPath}`);
    const { rows } = await versionOne.publish(old, 'room-old', JSON.stringify({ n: seq, by: 'version 1' }));
    expect(Number(rows[0]!.seq)).toBe(seq);
    await expect.poll(() => notified.includes(rows[0]!.id)).toBe(true);
    const history = await versionOne.history(old, 'room-old');
    expect(history.rows.map((r) => r.message.seq)).toEqual(Array.from({ length: seq }, (_, i) => i + 1));
    expect(history.rows.at(-1)!.message.data).toEqual({ n: seq, by: 'version 1' });
    expect(history.rows[0]!.message).toEqual({
      id: oldIds[0],
      channel: 'room-old',
      seq: 1,
      data: { n: 1 },
      publishedAt: expect.stringMatching(/Z$/),
    });
    expect((await versionOne.lastSeq(old, 'room-old')).rows).toEqual([{ last_seq: String(seq) }]);
    expect((await versionOne.idempotencyLookup(old, 'room-old', 'none')).rows).toEqual([]);
  });

  it('is idempotent: migrating again applies nothing and changes nothing', async () => {
    const before = await db.query('SELECT id, seq FROM cablecar.messages ORDER BY channel, seq');
    expect(await migrate(url, { kind: 'local' })).toEqual([]);
    expect(await migrate(url, { kind: 'local' })).toEqual([]);
    expect((await db.query('SELECT id, seq FROM cablecar.messages ORDER BY channel, seq')).rows).toEqual(before.rows);
    expect(await relationsIn(db, 'public')).toHaveLength(2);
    expect(to(await db.query(`SELECT to_regclass('public.cablecar_migrations') AS t`))).toBeNull();
  });
});

const to = (result: pg.QueryResult) => Object.values(result.rows[0]!)[0];

describe('a fresh install into an application database that has its own messages and channels tables', () => {
  it('creates everything in cablecar and leaves the application tables (and public) untouched', async () => {
    const url = await running.postgres.createDatabase('app_database');
    const db = await connect(url);
    await db.query(`CREATE TABLE messages (id serial PRIMARY KEY, body text); CREATE TABLE channels (slug text PRIMARY KEY)`);
    await db.query(`INSERT INTO messages (body) VALUES ('an application message')`);

    expect(await migrate(url, { kind: 'local' })).toEqual(['001_messages.sql', '002_cablecar_schema.sql', '003_sql_publish.sql', '010_retention.sql', '011_fanout_confirmed.sql']);
    expect(await relationsIn(db, 'public')).toEqual([
      { name: 'channels', kind: 'r' },
      { name: 'messages', kind: 'r' },
    ]);
    expect(await functionsIn(db, 'public')).toEqual([]);
    expect((await db.query('SELECT body FROM public.messages')).rows).toEqual([{ body: 'an application message' }]);

    const pool = running.pool(url);
    expect((await messageStore(pool).publish('room-app', '{"n":1}')).seq).toBe(1);
    expect(to(await db.query('SELECT count(*)::int FROM public.messages'))).toBe(1);
  });
});
