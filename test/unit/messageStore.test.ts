import type pg from 'pg';
import pgModule from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../functions/lib/stores/database.js';
import { CablecarError } from '../../functions/lib/protocol/errors.js';
import { messageStore, type MessageStore } from '../../functions/lib/stores/messageStore.js';
import { freePort } from '../../infra/local/stack.js';
import { migrate } from '../../infra/migrate.js';
import { startPostgres, type TestPostgres } from '../support/databases.js';

/** messageStore and the migrations against a real (embedded) PostgreSQL. */
let postgres: TestPostgres;
let pool: pg.Pool;
let store: MessageStore;
let firstMigration: string[];
const pools: pg.Pool[] = [];

const newPool = (connectionString: string, options: { max?: number; connectTimeoutMs?: number } = {}) => {
  const created = createPool({ connectionString, ...options });
  pools.push(created);
  return created;
};

beforeAll(async () => {
  postgres = await startPostgres();
  firstMigration = await migrate(postgres.url, { kind: 'local' });
  // Room for real concurrency: the concurrent tests below race up to 10 sessions.
  pool = newPool(postgres.url, { max: 10 });
  store = messageStore(pool);
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await postgres?.stop();
});

const seqs = (page: { messages: Array<{ seq: number }> }) => page.messages.map((m) => m.seq);
/** Every file of infra/sql/migrations, in order. */
const MIGRATIONS = ['001_messages.sql', '002_cablecar_schema.sql', '003_sql_publish.sql', '010_retention.sql', '011_fanout_confirmed.sql'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('migrate', () => {
  it('applies every migration once: a second run applies nothing', async () => {
    expect(firstMigration).toEqual(MIGRATIONS);
    expect(await migrate(postgres.url, { kind: 'local' })).toEqual([]);
    const { rows } = await pool.query<{ name: string }>('SELECT name FROM cablecar.migrations ORDER BY name');
    expect(rows.map((r) => r.name)).toEqual(MIGRATIONS);
  });

  it('serialises concurrent runners on a fresh database: one applies, the others find it done', async () => {
    const url = await postgres.createDatabase('migrate_concurrently');
    const results = await Promise.all([1, 2, 3].map(() => migrate(url, { kind: 'local' })));
    expect(results.flat()).toEqual(MIGRATIONS);
    expect(results.filter((r) => r.length === 0)).toHaveLength(2);
  });

  it('installs the local dispatch variant (pg_notify), replacing the placeholder that raises', async () => {
    const { rows } = await pool.query<{ def: string }>(
      `SELECT pg_get_functiondef('cablecar.dispatch(uuid)'::regprocedure) AS def`,
    );
    expect(rows[0]!.def).toContain("pg_notify('cablecar_dispatch', message_id::text)");
    expect(rows[0]!.def).not.toContain('RAISE EXCEPTION');
    expect(rows[0]!.def).not.toContain('aws_lambda');
  });

  it('leaves the dispatch trigger deferred to commit', async () => {
    const { rows } = await pool.query<{ tgdeferrable: boolean; tginitdeferred: boolean }>(
      `SELECT tgdeferrable, tginitdeferred FROM pg_trigger WHERE tgname = 'messages_dispatch' AND tgrelid = 'cablecar.messages'::regclass`,
    );
    expect(rows).toEqual([{ tgdeferrable: true, tginitdeferred: true }]);
  });
});

describe('migration 011 on a big table', () => {
  const INDEX = 'cablecar.messages_fanout_unconfirmed';
  /** The database as before 011, then what docs/releases.md tells an operator to run beforehand; the build's error, if any. */
  async function before011(db: pg.Pool, createIndex: string): Promise<unknown> {
    await db.query(`DROP INDEX ${INDEX}; ALTER TABLE cablecar.messages DROP COLUMN fanout_confirmed_at`);
    await db.query(`DELETE FROM cablecar.migrations WHERE name = '011_fanout_confirmed.sql'`);
    await db.query('ALTER TABLE cablecar.messages ADD COLUMN IF NOT EXISTS fanout_confirmed_at timestamptz');
    return db.query(createIndex).then(
      () => undefined,
      (error: unknown) => error,
    );
  }
  const index = async (db: pg.Pool) =>
    (
      await db.query<{ oid: number; valid: boolean; def: string }>(
        `SELECT indexrelid::int AS oid, indisvalid AS valid, pg_get_indexdef(indexrelid) AS def FROM pg_index WHERE indexrelid = to_regclass($1)`,
        [INDEX],
      )
    ).rows[0];

  it('finds the column and index an operator created beforehand, and builds again an index whose concurrent build failed', async () => {
    const url = await postgres.createDatabase('migrate_011_beforehand');
    await migrate(url, { kind: 'local' });
    const db = newPool(url);
    const messages = messageStore(db);
    await messages.publish('big', '1');
    await messages.publish('big', '2');

    const operatorsBuild = 'CREATE INDEX CONCURRENTLY IF NOT EXISTS messages_fanout_unconfirmed ON cablecar.messages (published_at, channel, seq) WHERE fanout_confirmed_at IS NULL';
    expect(await before011(db, operatorsBuild)).toBeUndefined();
    const built = await index(db);
    expect(await migrate(url, { kind: 'local' })).toEqual(['011_fanout_confirmed.sql']);
    expect(await index(db)).toEqual(built);

    // A build that fails (here: unique over a repeated channel) leaves an invalid index of that name.
    const failedBuild = 'CREATE UNIQUE INDEX CONCURRENTLY messages_fanout_unconfirmed ON cablecar.messages (channel) WHERE fanout_confirmed_at IS NULL';
    expect(await before011(db, failedBuild)).toMatchObject({ code: '23505' });
    expect(await index(db)).toMatchObject({ valid: false });
    expect(await migrate(url, { kind: 'local' })).toEqual(['011_fanout_confirmed.sql']);
    expect(await index(db)).toMatchObject({ valid: true, def: built!.def });
    const { rows } = await db.query('SELECT count(*)::int AS n FROM cablecar.messages WHERE fanout_confirmed_at IS NULL');
    expect(rows[0].n).toBe(2);
  });
});

describe('publish', () => {
  it('numbers each channel 1, 2, 3 independently of the others', async () => {
    const results: Array<Awaited<ReturnType<MessageStore['publish']>>> = [];
    for (let i = 0; i < 3; i++) {
      for (const channel of ['seq-a', 'seq-b', 'seq-c']) results.push(await store.publish(channel, JSON.stringify({ i })));
    }
    const byChannel = (channel: string) => results.filter((r) => r.channel === channel).map((r) => r.seq);
    expect(byChannel('seq-a')).toEqual([1, 2, 3]);
    expect(byChannel('seq-b')).toEqual([1, 2, 3]);
    expect(byChannel('seq-c')).toEqual([1, 2, 3]);
    expect(results.every((r) => r.duplicate === false && UUID.test(r.id))).toBe(true);
    expect(new Set(results.map((r) => r.id)).size).toBe(9);
  });

  it('gives 50 concurrent publishes to one channel the seqs 1..50, no gap, no duplicate', async () => {
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => store.publish('race', JSON.stringify({ i }))));
    expect(results.map((r) => r.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(new Set(results.map((r) => r.id)).size).toBe(50);
    expect(await store.lastSeq('race')).toBe(50);

    // What was stored agrees with what was answered: each message has the seq its publisher was told.
    const page = await store.history('race', 0, 100);
    expect(seqs(page)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    const stored = new Map(page.messages.map((m) => [m.id, m.seq]));
    for (const r of results) expect(stored.get(r.id)).toBe(r.seq);
  });

  it('takes no seq for an insert that fails: the counter is rolled back with it', async () => {
    await store.publish('rollback', '{"n":1}');
    // Not JSON: PostgreSQL refuses the value (SQLSTATE class 22, a data exception). The client's
    // fault, not an outage: invalid_body (400), never a server error.
    const error = await store.publish('rollback', '{not json').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CablecarError);
    expect(error).toMatchObject({ code: 'invalid_body', httpStatus: 400, retryable: false });
    expect(((error as Error).cause as { code?: string }).code).toBe('22P02');
    expect(await store.lastSeq('rollback')).toBe(1);
    expect((await store.publish('rollback', '{"n":2}')).seq).toBe(2);
  });

  it('stores a message once per idempotency key and answers a repeat with the first id and seq', async () => {
    const first = await store.publish('idem', '{"n":1}', 'key-1');
    expect(first).toEqual({ id: expect.stringMatching(UUID), channel: 'idem', seq: 1, duplicate: false });
    const again = await store.publish('idem', '{ "n" : 1 }', 'key-1'); // the same JSON value, spaced differently
    expect(again).toEqual({ ...first, duplicate: true });
    const reused = await store.publish('idem', '{"n":"different data, same key"}', 'key-1').catch((e: unknown) => e);
    expect(reused).toBeInstanceOf(CablecarError);
    expect(reused).toMatchObject({ code: 'idempotency_key_reused', httpStatus: 422, retryable: false });
    expect((reused as Error).message).toMatch(/idempotency key "key-1" was already used on channel "idem" with different data/);

    // The repeat took no seq; another key and no key are new messages.
    expect(await store.publish('idem', '{"n":2}', 'key-2')).toMatchObject({ seq: 2, duplicate: false });
    expect(await store.publish('idem', '{"n":3}')).toMatchObject({ seq: 3, duplicate: false });
    const page = await store.history('idem', 0, 10);
    expect(page.messages.map((m) => m.data)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);

    // A key belongs to its channel: the same key elsewhere is another message.
    const elsewhere = await store.publish('idem-other', '{"n":1}', 'key-1');
    expect(elsewhere).toMatchObject({ channel: 'idem-other', seq: 1, duplicate: false });
    expect(elsewhere.id).not.toBe(first.id);
  });

  it('stores a message once when 20 publishes with one idempotency key race, and says exactly which one stored it', async () => {
    await store.publish('idem-race', '{"before":true}');
    const results = await Promise.all(
      Array.from({ length: 20 }, () => store.publish('idem-race', '{"same":"data"}', 'same-key')),
    );
    const ids = new Set(results.map((r) => r.id));
    expect(ids.size).toBe(1);
    expect(results.every((r) => r.seq === 2)).toBe(true);
    expect(results.filter((r) => !r.duplicate)).toHaveLength(1);

    const { rows } = await pool.query('SELECT seq FROM cablecar.messages WHERE channel = $1', ['idem-race']);
    expect(rows.map((r) => Number(r.seq)).sort()).toEqual([1, 2]);
    // The losers took no seq: the next message is 3.
    expect(await store.lastSeq('idem-race')).toBe(2);
    expect((await store.publish('idem-race', '{"after":true}')).seq).toBe(3);
  });

  it('when 10 publishes with one key but different data race, one is stored and the others are refused (422)', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => store.publish('idem-race-different', JSON.stringify({ i }), 'one-key')),
    );
    const stored = results.filter((r) => r.status === 'fulfilled');
    expect(stored).toHaveLength(1);
    expect(stored[0]!.value).toMatchObject({ seq: 1, duplicate: false });
    for (const refused of results.filter((r) => r.status === 'rejected')) {
      expect(refused.reason).toMatchObject({ code: 'idempotency_key_reused', httpStatus: 422 });
    }
    expect(await store.lastSeq('idem-race-different')).toBe(1);
  });
});

describe('refusals of cablecar.publish, as the HTTP API reports them', () => {
  it.each([
    ['an invalid channel name', 'no spaces', '{}', undefined, { code: 'invalid_channel', httpStatus: 400 }, /invalid channel name "no spaces"/],
    ['a frame over 128 KB', 'big', JSON.stringify('x'.repeat(131_072)), undefined, { code: 'payload_too_large', httpStatus: 413 }, /limited to 131072 bytes/],
    ['an idempotency key over 200 characters', 'keyed', '{}', 'k'.repeat(201), { code: 'invalid_body', httpStatus: 400 }, /1-200 characters/],
  ])('%s is a CablecarError with its code and status, and stores nothing', async (_, channel, dataJson, key, expected, message) => {
    const error = await store.publish(channel, dataJson, key).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CablecarError);
    expect(error).toMatchObject({ ...expected, retryable: false });
    expect((error as Error).message).toMatch(message);
    expect(await store.lastSeq(channel)).toBe(0);
  });
});

describe('history and lastSeq', () => {
  beforeAll(async () => {
    for (let n = 1; n <= 5; n++) {
      await store.publish('paged', JSON.stringify({ n }));
      await store.publish('paged-neighbour', JSON.stringify({ neighbour: n }));
    }
  });

  it('pages through a channel by seq with after and limit, saying whether more follow', async () => {
    expect(seqs(await store.history('paged', 0, 2))).toEqual([1, 2]);
    expect((await store.history('paged', 0, 2)).hasMore).toBe(true);
    expect(await store.history('paged', 2, 2)).toMatchObject({ hasMore: true });
    expect(seqs(await store.history('paged', 2, 2))).toEqual([3, 4]);
    expect(seqs(await store.history('paged', 4, 2))).toEqual([5]);
    expect((await store.history('paged', 4, 2)).hasMore).toBe(false);
    // Exactly the rest: no more follow.
    expect(await store.history('paged', 3, 2)).toMatchObject({ hasMore: false });
    expect(seqs(await store.history('paged', 3, 2))).toEqual([4, 5]);
    expect(await store.history('paged', 5, 2)).toEqual({ messages: [], hasMore: false });
    expect(await store.history('paged', 0, 1000)).toMatchObject({ hasMore: false });
    expect((await store.history('paged', 0, 1000)).messages.map((m) => m.data)).toEqual([1, 2, 3, 4, 5].map((n) => ({ n })));
    expect(await store.history('never-published', 0, 10)).toEqual({ messages: [], hasMore: false });
  });

  it('returns each message as published: id, channel, numeric seq, data byte for byte, ISO publishedAt in UTC', async () => {
    const dataJson = '{"zebra":1,"apple":{"y":[1,"two",null,false],"b":-2.5e-7},"middle":"naïve ☕ 𝄞","":"empty key"}';
    const before = Date.now();
    const published = await store.publish('shape', dataJson);
    const after = Date.now();
    const [message] = (await store.history('shape', 0, 10)).messages;

    expect(Object.keys(message!)).toEqual(['id', 'channel', 'seq', 'data', 'publishedAt']);
    expect(message).toEqual({ id: published.id, channel: 'shape', seq: 1, data: JSON.parse(dataJson), publishedAt: expect.any(String) });
    expect(typeof message!.seq).toBe('number');
    // Key order survives (json, not jsonb): the data re-serialises to exactly what was published.
    expect(JSON.stringify(message!.data)).toBe(dataJson);
    expect(Object.keys(message!.data as object)).toEqual(['zebra', 'apple', 'middle', '']);
    expect(message!.publishedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const at = Date.parse(message!.publishedAt);
    expect(at).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 - 1000);
    expect(at).toBeLessThanOrEqual(after + 1000);
  });

  it('keeps every kind of JSON value as data: null, array, string, number, boolean', async () => {
    const values = ['null', '[3,1,2]', '"just a string"', '42', 'false', '{}'];
    for (const dataJson of values) await store.publish('kinds', dataJson);
    const page = await store.history('kinds', 0, 10);
    expect(page.messages.map((m) => JSON.stringify(m.data))).toEqual(values);
  });

  it('lastSeq is the newest seq of the channel, and 0 for a channel without messages', async () => {
    expect(await store.lastSeq('paged')).toBe(5);
    expect(await store.lastSeq('paged-neighbour')).toBe(5);
    expect(await store.lastSeq('never-published')).toBe(0);
    await store.publish('paged', '{"n":6}');
    expect(await store.lastSeq('paged')).toBe(6);
  });
});

describe('when the database cannot be reached', () => {
  it.each(['127.0.0.1', 'localhost'])('publish, history and lastSeq throw unavailable (503, retryable) for a closed port on %s', async (host) => {
    const closedPort = await freePort();
    const down = messageStore(newPool(`postgres://cablecar:cablecar@${host}:${closedPort}/cablecar`, { connectTimeoutMs: 1000 }));
    const attempts = [
      () => down.publish('down', '{"n":1}'),
      () => down.publish('down', '{"n":1}', 'with-a-key'), // a transaction of its own
      () => down.history('down', 0, 10),
      () => down.lastSeq('down'),
    ];
    for (const attempt of attempts) {
      const error = await attempt().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CablecarError);
      expect(error).toMatchObject({ code: 'unavailable', httpStatus: 503, retryable: true });
      expect((error as Error).message).toMatch(/retry/i);
      expect(((error as Error).cause as { code?: string }).code).toBe('ECONNREFUSED');
    }
  });

  it('publish throws unavailable (503) while PostgreSQL refuses connections because too many are open', async () => {
    // A role allowed no connections gets the same refusal (SQLSTATE 53300) as a server at max_connections.
    await pool.query(`CREATE ROLE crowded LOGIN PASSWORD 'crowded' CONNECTION LIMIT 0`);
    const crowded = messageStore(newPool(`postgres://crowded:crowded@127.0.0.1:${postgres.port}/cablecar`));
    const error = await crowded.publish('crowded', '{"n":1}').catch((e: unknown) => e);
    expect(((error as Error).cause as { code?: string } | undefined)?.code ?? (error as { code?: string }).code).toBe('53300');
    expect(error).toBeInstanceOf(CablecarError);
    expect(error).toMatchObject({ code: 'unavailable', httpStatus: 503, retryable: true });
  });

  it('a session killed by the server in the middle of a publish is unavailable too, and nothing is half-written', async () => {
    await store.publish('killed', '{"n":1}');
    // Hold the channel's row lock so that the publish waits inside PostgreSQL, then end its session
    // the way a failover or restart does.
    const blocker = new pgModule.Client({ connectionString: postgres.url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT * FROM cablecar.channels WHERE name = $1 FOR UPDATE', ['killed']);
      const victimPool = newPool(postgres.url, { max: 1 });
      const pending = messageStore(victimPool).publish('killed', '{"n":"lost"}').catch((e: unknown) => e);

      let pid: number | undefined;
      for (let i = 0; i < 100 && pid === undefined; i++) {
        // Asked outside the blocker's transaction: pg_stat_activity is a snapshot per transaction.
        const { rows } = await pool.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%cablecar.publish%'`,
        );
        pid = rows[0]?.pid;
        if (pid === undefined) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(pid).toBeDefined();
      await pool.query('SELECT pg_terminate_backend($1)', [pid]);

      const error = await pending;
      expect(error).toBeInstanceOf(CablecarError);
      expect(error).toMatchObject({ code: 'unavailable', httpStatus: 503 });
      expect(((error as Error).cause as { code?: string }).code).toBe('57P01');
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
    }
    expect(await store.lastSeq('killed')).toBe(1);
    expect((await store.publish('killed', '{"n":2}')).seq).toBe(2);
  });
});
