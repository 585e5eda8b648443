import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { migrate } from '../migrate.js';
import { loadOrCreateJwtSecret, mintDevToken, type DevTokenClaims } from './devTokens.js';
import { startDispatchBridge, type DispatchBridge } from './dispatchBridge.js';
import { startEmbeddedDynamodb } from './embeddedDynamodb.js';
import { startEmbeddedPostgres } from './embeddedPostgres.js';

/**
 * The whole of cablecar on one machine: embedded PostgreSQL, dynalite (the DynamoDB API, in this
 * process), serverless-offline running the real handlers (HTTP, WebSocket and Lambda endpoints),
 * and the dispatch bridge. Used by `npm start` and by the integration tests.
 */
export interface LocalStackOptions {
  dataDir: string;
  httpPort: number;
  websocketPort: number;
  lambdaPort: number;
  postgresPort: number;
  dynamodbPort: number;
  stage?: string;
  /** The HS256 token secret; default CABLECAR_JWT_SECRET, else one generated into `dataDir` and kept there. */
  jwtSecret?: string;
  log?: (source: string, line: string) => void;
  logLevel?: string;
  /** More environment for the functions (set last): tests point them at a proxy, say. */
  functionEnv?: Record<string, string>;
}

export interface LocalStack {
  httpUrl: string;
  websocketUrl: string;
  lambdaUrl: string;
  /** cablecar's own connection (the owner of schema cablecar), as the functions use it. */
  databaseUrl: string;
  /**
   * The one an application uses: role `cablecar_app`, a member of `cablecar_publisher` that may
   * also create its own tables in public, so an app can publish from its transactions and triggers.
   */
  appDatabaseUrl: string;
  dynamodbUrl: string;
  tableName: string;
  /** The HS256 secret the functions verify tokens with. */
  jwtSecret: string;
  /** A token signed with that secret: full access (`*`) for an hour unless `claims` say otherwise. */
  mintToken(claims?: DevTokenClaims): Promise<string>;
  /** Waits until the bridge has dispatched everything it was told about. */
  dispatchIdle(): Promise<void>;
  /** Stops / starts PostgreSQL alone, to exercise what happens while it is down. */
  stopDatabase(): Promise<void>;
  startDatabase(): Promise<void>;
  stop(): Promise<void>;
}

const ROOT = join(import.meta.dirname, '..', '..');

// This machine runs Node 20 (Lambda runs nodejs22.x): the AWS SDK's notice about it is noise for
// everything local — this process, serverless-offline (which inherits the environment), the tests.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** A port that is free now on 127.0.0.1, for tests that run several stacks side by side. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Free ports for every server of a stack, for tests and benchmarks that run beside `npm start`. */
export async function freeStackPorts() {
  return {
    httpPort: await freePort(),
    websocketPort: await freePort(),
    lambdaPort: await freePort(),
    postgresPort: await freePort(),
    dynamodbPort: await freePort(),
  };
}

async function waitForHttp(url: string, timeoutMs: number, isAlive: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive()) throw new Error('serverless-offline exited during start-up');
    try {
      await fetch(url, { signal: AbortSignal.timeout(1000) });
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

function stopProcessGroup(child: ChildProcess, timeoutMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = (signal: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    kill('SIGTERM');
  });
}

const APP_ROLE = 'cablecar_app';

/**
 * The local stand-in for an application's own database user: it may publish (cablecar_publisher)
 * and keep its own tables in public, nothing more. Local only: a fixed password, 127.0.0.1.
 */
async function ensureAppRole(databaseUrl: string): Promise<string> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [APP_ROLE]);
    if (!rowCount) await client.query(`CREATE ROLE ${APP_ROLE} LOGIN PASSWORD '${APP_ROLE}' IN ROLE cablecar_publisher`);
    await client.query(`GRANT CREATE, USAGE ON SCHEMA public TO ${APP_ROLE}`);
  } finally {
    await client.end();
  }
  const url = new URL(databaseUrl);
  url.username = APP_ROLE;
  url.password = APP_ROLE;
  return url.toString();
}

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const { dataDir, stage = 'local', log = () => {}, logLevel = 'INFO' } = options;
  const cleanup: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const step of cleanup.reverse()) {
      // A step that hangs must not keep the others (and the processes they own) alive.
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out after 15 s')), 15_000);
      });
      await Promise.race([step(), timeout])
        .catch((error) => log('stack', `stop: ${(error as Error).message}`))
        .finally(() => clearTimeout(timer));
    }
    cleanup.length = 0;
  };

  try {
    const jwtSecret = options.jwtSecret ?? (await loadOrCreateJwtSecret(dataDir));
    const postgres = await startEmbeddedPostgres({
      dataDir,
      port: options.postgresPort,
      log: (line) => log('postgres', line),
    });
    cleanup.push(() => postgres.stop());
    const databaseUrl = await postgres.ensureDatabase('cablecar');
    await migrate(databaseUrl, { kind: 'local' }, (line) => log('migrate', line));
    const appDatabaseUrl = await ensureAppRole(databaseUrl);

    const tableName = `cablecar-${stage}`;
    const dynamodb = await startEmbeddedDynamodb({ port: options.dynamodbPort, tableName });
    cleanup.push(() => dynamodb.stop());
    const dynamodbUrl = dynamodb.url;

    // serverless-offline, running the real handlers in process
    const websocketUrl = `ws://127.0.0.1:${options.websocketPort}`;
    const offline = spawn(
      process.execPath,
      [
        join(ROOT, 'node_modules', 'serverless', 'bin', 'serverless.js'),
        'offline',
        'start',
        '--stage',
        stage,
        '--useInProcess',
        '--host',
        '127.0.0.1',
        '--httpPort',
        String(options.httpPort),
        '--websocketPort',
        String(options.websocketPort),
        '--lambdaPort',
        String(options.lambdaPort),
      ],
      {
        cwd: ROOT,
        detached: true, // its own process group, so stopping it stops everything it started
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          AWS_ACCESS_KEY_ID: 'local',
          AWS_SECRET_ACCESS_KEY: 'local',
          AWS_REGION: 'us-east-1',
          DATABASE_URL: databaseUrl,
          DYNAMODB_ENDPOINT: dynamodbUrl,
          WEBSOCKET_API_ENDPOINT: `http://127.0.0.1:${options.websocketPort}`,
          // fanout starts a big channel's shards here (functions/lib/delivery/shardInvoker.ts)
          LAMBDA_ENDPOINT: `http://127.0.0.1:${options.lambdaPort}`,
          // Tokens are verified with this secret here; JWT_SECRET_ARN set empty keeps serverless.yml
          // from resolving the stack's Secrets Manager secret (README, "Who may do what").
          CABLECAR_JWT_SECRET: jwtSecret,
          JWT_SECRET_ARN: '',
          LOG_LEVEL: logLevel,
          POWERTOOLS_LOG_LEVEL: logLevel,
          POWERTOOLS_METRICS_DISABLED: 'true', // nobody reads CloudWatch's log format here
          SLS_TELEMETRY_DISABLED: '1',
          SLS_NOTIFICATIONS_MODE: 'off',
          ...options.functionEnv,
        },
      },
    );
    // Should this process end without stopping the stack (an uncaught error, a process.exit
    // elsewhere), the detached serverless-offline must not outlive it.
    const killOfflineOnExit = () => {
      try {
        process.kill(-offline.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    process.once('exit', killOfflineOnExit);
    cleanup.push(async () => {
      await stopProcessGroup(offline);
      process.off('exit', killOfflineOnExit);
    });
    for (const stream of [offline.stdout, offline.stderr]) {
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => chunk.split('\n').filter(Boolean).forEach((line) => log('offline', line)));
    }
    const httpUrl = `http://127.0.0.1:${options.httpPort}`;
    const lambdaUrl = `http://127.0.0.1:${options.lambdaPort}`;
    const alive = () => offline.exitCode === null && offline.signalCode === null;
    await waitForHttp(httpUrl, 120_000, alive);
    await waitForHttp(lambdaUrl, 30_000, alive);

    // The stand-in for aws_lambda.invoke
    const bridge: DispatchBridge = await startDispatchBridge({
      connectionString: databaseUrl,
      lambdaEndpoint: lambdaUrl,
      functionName: `cablecar-${stage}-fanout`,
      log: (line) => log('bridge', line),
    });
    cleanup.push(() => bridge.stop());

    return {
      httpUrl,
      websocketUrl,
      lambdaUrl,
      databaseUrl,
      appDatabaseUrl,
      dynamodbUrl,
      tableName,
      jwtSecret,
      mintToken: (claims) => mintDevToken(jwtSecret, claims),
      dispatchIdle: () => bridge.idle(),
      stopDatabase: () => postgres.stop(),
      startDatabase: () => postgres.start(),
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
