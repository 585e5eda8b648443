import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDispatchEvent } from '../../functions/lib/protocol/dispatchEvent.js';
import { messageStore, type MessageStore } from '../../functions/lib/stores/messageStore.js';
import { migrate, renderDispatchSql, type DispatchVariant } from '../../infra/migrate.js';
import { postgresForThisFile } from '../support/databases.js';

/**
 * The commit-time dispatch of a stored message, in both variants of cablecar.dispatch, on a real
 * PostgreSQL: the local one (pg_notify of the id) and the AWS one (aws_lambda.invoke), the latter
 * with the aws_lambda extension stood in for by a recording function.
 */
const running = postgresForThisFile();
const connect = running.connect;

const storeFor = (url: string): MessageStore => messageStore(running.pool(url));

async function waitFor<T>(what: string, read: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Inserts a message by hand inside an open transaction, as messageStore does, and returns its id. */
async function insertInTransaction(client: pg.Client, channel: string, data: unknown): Promise<string> {
  await client.query(
    'INSERT INTO cablecar.channels (name, last_seq) VALUES ($1, 1) ON CONFLICT (name) DO UPDATE SET last_seq = channels.last_seq + 1',
    [channel],
  );
  const { rows } = await client.query<{ id: string }>(
    'INSERT INTO cablecar.messages (channel, seq, data) SELECT $1, last_seq, $2::json FROM cablecar.channels WHERE name = $1 RETURNING id',
    [channel, JSON.stringify(data)],
  );
  return rows[0]!.id;
}

describe('local dispatch variant: cablecar.dispatch NOTIFYs on cablecar_dispatch', () => {
  let store: MessageStore;
  let listener: pg.Client;
  const notified: Array<{ channel: string; payload: string | undefined }> = [];

  beforeAll(async () => {
    await migrate(running.postgres.url, { kind: 'local' });
    store = storeFor(running.postgres.url);
    listener = await connect(running.postgres.url);
    listener.on('notification', (n) => notified.push({ channel: n.channel, payload: n.payload }));
    await listener.query('LISTEN cablecar_dispatch');
  });

  it('notifies the id of a committed publish, and only the id however large the message', async () => {
    const small = await store.publish('notify', '{"n":1}');
    const large = await store.publish('notify', JSON.stringify({ text: 'x'.repeat(100_000) })); // NOTIFY's cap is 8000 bytes
    await waitFor('both notifications', () => (notified.some((n) => n.payload === large.id) ? true : undefined));
    const forThese = notified.filter((n) => n.payload === small.id || n.payload === large.id);
    expect(forThese).toEqual([
      { channel: 'cablecar_dispatch', payload: small.id },
      { channel: 'cablecar_dispatch', payload: large.id },
    ]);
  });

  it('notifies at commit and not for an insert that is rolled back', async () => {
    const writer = await connect(running.postgres.url);
    await writer.query('BEGIN');
    const rolledBack = await insertInTransaction(writer, 'notify-tx', { fate: 'rolled back' });
    await writer.query('ROLLBACK');

    await writer.query('BEGIN');
    const committed = await insertInTransaction(writer, 'notify-tx', { fate: 'committed' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(notified.some((n) => n.payload === committed)).toBe(false); // not before the commit
    await writer.query('COMMIT');

    await waitFor('the committed message', () => (notified.some((n) => n.payload === committed) ? true : undefined));
    // Notifications arrive in commit order, so had the rolled-back one been sent it would be here by now.
    expect(notified.some((n) => n.payload === rolledBack)).toBe(false);
    const { rows } = await writer.query('SELECT count(*)::int AS n FROM cablecar.messages WHERE id = $1', [rolledBack]);
    expect(rows[0].n).toBe(0);
  });

  it('notifies nothing for an idempotent repeat, which stores nothing', async () => {
    const first = await store.publish('notify-idem', '{"n":1}', 'once');
    const repeat = await store.publish('notify-idem', '{"n":1}', 'once');
    expect(repeat).toMatchObject({ id: first.id, duplicate: true });
    const marker = await store.publish('notify-idem', '{"n":2}');
    await waitFor('the marker', () => (notified.some((n) => n.payload === marker.id) ? true : undefined));
    expect(notified.filter((n) => n.payload === first.id)).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------------------------------

/**
 * A stand-in for RDS's aws_lambda extension, which cannot be installed outside RDS/Aurora: a schema
 * `aws_lambda` with an `invoke` of the extension's signature that records its arguments instead of
 * invoking anything.
 */
const AWS_LAMBDA_STAND_IN = `
  CREATE SCHEMA aws_lambda;
  CREATE TABLE aws_lambda.recorded_invocations (
    n               serial PRIMARY KEY,
    function_name   text,
    payload         json,
    region          text,
    invocation_type text,
    log_type        text,
    context         json,
    qualifier       varchar(128)
  );
  -- LANGUAGE sql: PL/pgSQL refuses an IN and an OUT parameter of one name ("payload"), which the
  -- extension's signature has.
  CREATE FUNCTION aws_lambda.invoke(
    function_name text, payload json, region text DEFAULT NULL, invocation_type text DEFAULT 'RequestResponse',
    log_type text DEFAULT 'None', context json DEFAULT NULL, qualifier varchar(128) DEFAULT NULL,
    OUT status_code int, OUT payload json, OUT executed_version text, OUT log_result text)
  LANGUAGE sql AS $$
    INSERT INTO aws_lambda.recorded_invocations (function_name, payload, region, invocation_type, log_type, context, qualifier)
    VALUES ($1, $2, $3, $4, $5, $6, $7);
    SELECT CASE WHEN $4 = 'Event' THEN 202 ELSE 200 END, NULL::json, '1'::text, NULL::text;
  $$;
`;

const EXTENSION_LINE = 'CREATE EXTENSION IF NOT EXISTS aws_lambda CASCADE;';

/**
 * Test-only step: the AWS variant without its CREATE EXTENSION line, so that it binds to the
 * stand-in. Everything else of the rendered SQL runs unchanged; the line must be there exactly once.
 */
function withoutAwsLambdaExtension(sql: string): string {
  const lines = sql.split('\n');
  expect(lines.filter((line) => line.trim() === EXTENSION_LINE)).toHaveLength(1);
  return lines.filter((line) => line.trim() !== EXTENSION_LINE).join('\n');
}

describe('AWS dispatch variant, with the aws_lambda extension stood in for by a recording aws_lambda.invoke', () => {
  const variant: DispatchVariant = { kind: 'aws', fanoutFunction: 'cablecar-prod-fanout', region: 'eu-west-1' };
  let url: string;
  let store: MessageStore;
  let db: pg.Client;

  interface Recorded {
    function_name: string;
    payload: unknown;
    region: string;
    invocation_type: string;
    log_type: string;
    context: unknown;
    qualifier: string;
  }
  const recorded = async () =>
    (await db.query<Recorded>('SELECT function_name, payload, region, invocation_type, log_type, context, qualifier FROM aws_lambda.recorded_invocations ORDER BY n'))
      .rows;

  beforeAll(async () => {
    url = await running.postgres.createDatabase('cablecar_aws');
    db = await connect(url);
    await db.query(AWS_LAMBDA_STAND_IN);
    store = storeFor(url);
  });

  it('renders the function name and region as SQL literals into the variant', async () => {
    const sql = await renderDispatchSql(variant);
    expect(sql).toContain("'cablecar-prod-fanout'");
    expect(sql).toContain("'eu-west-1'");
    expect(sql).not.toMatch(/:fanout_function|:region/);
    expect(await renderDispatchSql({ ...variant, fanoutFunction: "it's" })).toContain("'it''s'");
  });

  it('needs the real extension: migrate with the AWS variant fails here, where aws_lambda is not available', async () => {
    await expect(migrate(url, variant)).rejects.toThrow(/aws_lambda/);
    // One transaction: nothing was applied, so no database is left with a dispatch that refuses publishes.
    const { rows } = await db.query(`SELECT to_regnamespace('cablecar') AS schema`);
    expect(rows).toEqual([{ schema: null }]);
  });

  it('invokes the fanout function (live alias, async Event, its region) with the whole message at commit, and marks it dispatched', async () => {
    await migrate(url, { kind: 'local' });
    await db.query(withoutAwsLambdaExtension(await renderDispatchSql(variant)));

    const data = { text: 'hello', big: 'y'.repeat(20_000), order: { z: 1, a: 2 } };
    const published = await store.publish('aws-room', JSON.stringify(data));

    const calls = await recorded();
    expect(calls).toHaveLength(1);
    const [call] = calls;
    expect(call).toMatchObject({
      function_name: 'cablecar-prod-fanout',
      region: 'eu-west-1',
      invocation_type: 'Event',
      qualifier: 'live',
      log_type: 'None',
      context: null,
    });

    const { rows } = await db.query<{ event: unknown; dispatched_at: Date | null; published_at: Date }>(
      'SELECT cablecar.dispatch_event(id) AS event, dispatched_at, published_at FROM cablecar.messages WHERE id = $1',
      [published.id],
    );
    expect(call!.payload).toEqual(rows[0]!.event);
    expect(call!.payload).toEqual({
      v: 1,
      message: { id: published.id, channel: 'aws-room', seq: 1, data, publishedAt: expect.stringMatching(/Z$/) },
    });
    // The fanout function's own parser accepts what PostgreSQL sends.
    expect(parseDispatchEvent(call!.payload).message).toMatchObject({ id: published.id, seq: 1, data });
    expect(rows[0]!.dispatched_at).toBeInstanceOf(Date);
    expect(rows[0]!.dispatched_at!.getTime()).toBeGreaterThanOrEqual(rows[0]!.published_at.getTime());
  });

  it('invokes only at commit: not while the transaction is open, never for one rolled back', async () => {
    const before = (await recorded()).length;
    const writer = await connect(url);

    await writer.query('BEGIN');
    const rolledBack = await insertInTransaction(writer, 'aws-tx', { fate: 'rolled back' });
    // The trigger is deferred: inside the transaction nothing was invoked yet (the table is visible here).
    expect((await writer.query('SELECT count(*)::int AS n FROM aws_lambda.recorded_invocations')).rows[0].n).toBe(before);
    await writer.query('ROLLBACK');
    expect(await recorded()).toHaveLength(before);

    await writer.query('BEGIN');
    const committed = await insertInTransaction(writer, 'aws-tx', { fate: 'committed' });
    expect((await writer.query('SELECT count(*)::int AS n FROM aws_lambda.recorded_invocations')).rows[0].n).toBe(before);
    await writer.query('COMMIT');

    const calls = await recorded();
    expect(calls).toHaveLength(before + 1);
    expect((calls.at(-1)!.payload as { message: { id: string } }).message.id).toBe(committed);
    expect(calls.some((c) => (c.payload as { message: { id: string } }).message.id === rolledBack)).toBe(false);
  });

  it('running migrate with the local variant afterwards switches the same function back to pg_notify', async () => {
    expect(await migrate(url, { kind: 'local' })).toEqual([]);
    const before = (await recorded()).length;
    await store.publish('aws-room', '{"after":"switch"}');
    expect(await recorded()).toHaveLength(before);
    const { rows } = await db.query<{ def: string }>(`SELECT pg_get_functiondef('cablecar.dispatch(uuid)'::regprocedure) AS def`);
    expect(rows[0]!.def).toContain('pg_notify');
  });
});
