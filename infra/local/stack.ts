import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { acquireDataDirLock, assertPortsFree, type PortClaim } from './preflight.js';
import { retentionSettings } from '../../functions/lib/config.js';
import { createPool } from '../../functions/lib/stores/database.js';
import { messageStore } from '../../functions/lib/stores/messageStore.js';
import { migrate } from '../migrate.js';
import { loadOrCreateJwtSecret, mintDevToken, type DevTokenClaims } from './devTokens.js';
import { startDispatchBridge, type DispatchBridge } from './dispatchBridge.js';
import { startEmbeddedDynamodb } from './embeddedDynamodb.js';
import { startEmbeddedPostgres } from './embeddedPostgres.js';
import { setTimeout as sleep } from 'node:timers/promises';

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
  /** `GET /health` of the stack (which parts are up); no health server without it. */
  healthPort?: number | undefined;
  /** The variable that sets each port, named when one is taken (e.g. CABLECAR_HTTP_PORT). */
  portVariables?: Partial<Record<PortOption, string>>;
  /** Ports the caller binds once the stack is up (`npm start`'s demo page): checked with the stack's own. */
  callerPorts?: readonly PortClaim[];
  stage?: string;
  /** The HS256 token secret; default CABLECAR_JWT_SECRET, else one generated into `dataDir` and kept there. */
  jwtSecret?: string;
  log?: (source: string, line: string) => void;
  logLevel?: string;
  /** Where the bridge invokes fanout, if not serverless-offline's Lambda port (tests put a faulty proxy there). */
  bridgeLambdaEndpoint?: string | undefined;
  /** How often the bridge sweeps PostgreSQL for undispatched messages. */
  sweepIntervalMs?: number;
  /**
   * A part failed and could not be brought back (serverless-offline restarting too often,
   * PostgreSQL not starting again): the stack has stopped itself. Without it the error is logged.
   */
  onFatal?: (error: Error) => void;
  /** More environment for the functions (set last): tests point them at a proxy, say. */
  functionEnv?: Record<string, string>;
}

export type PortOption = 'httpPort' | 'websocketPort' | 'lambdaPort' | 'postgresPort' | 'dynamodbPort' | 'healthPort';

export interface StackHealth {
  ok: boolean;
  parts: {
    postgres: { up: boolean; restarts: number };
    dynamodb: { up: boolean };
    offline: { up: boolean; restarts: number; pid?: number | undefined };
    bridge: { up: boolean; busyChannels: number; lastError?: string | undefined };
  };
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
  /** What `GET /health` answers. */
  health(): Promise<StackHealth>;
  healthUrl?: string | undefined;
  /** Process ids, for tests that make a part fail. */
  pids(): { offline?: number | undefined; postgres?: number | undefined };
  stop(): Promise<void>;
}

/** serverless-offline may end this many times within RESTART_WINDOW_MS before the stack gives up. */
const MAX_OFFLINE_RESTARTS = 3;
const RESTART_WINDOW_MS = 60_000;
/** How often retention prunes, as the scheduled retention function does on AWS. */
const PRUNE_INTERVAL_MS = 60_000;

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

/**
 * Free ports for every server of a stack, and for `npm start`'s demo page, for tests and benchmarks
 * that run beside `npm start`. All are held open until the last is found, so that no two of them are
 * the same port (a port closed just now may be handed out again at once).
 */
export async function freeStackPorts() {
  const names = ['httpPort', 'websocketPort', 'lambdaPort', 'postgresPort', 'dynamodbPort', 'healthPort', 'demoPort'] as const;
  const servers = [];
  for (const _ of names) {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
  }
  const ports = servers.map((server) => (server.address() as { port: number }).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return Object.fromEntries(names.map((name, index) => [name, ports[index]!])) as Record<(typeof names)[number], number>;
}

async function waitForHttp(url: string, timeoutMs: number, isAlive: () => boolean): Promise<void> {
  // (any answer will do: serverless-offline is up once it answers at all)
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive()) throw new Error('serverless-offline exited during start-up');
    try {
      await fetch(url, { signal: AbortSignal.timeout(1000) });
      return;
    } catch {
      await sleep(200);
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
  let stopping = false;
  const stopAll = async () => {
    stopping = true;
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
  const fatal = (error: Error) => {
    if (stopping) return;
    log('stack', `${error.message}; stopping the stack`);
    void stopAll().then(() => (options.onFatal ?? (() => {}))(error));
  };

  // Before anything starts: a second stack on the same data folder, or a port someone else holds,
  // fails here with one clear line instead of half-starting.
  const releaseLock = await acquireDataDirLock(dataDir);
  cleanup.push(releaseLock);
  try {
    const variables = options.portVariables ?? {};
    const claims: PortClaim[] = (['httpPort', 'websocketPort', 'lambdaPort', 'postgresPort', 'dynamodbPort', 'healthPort'] as const).flatMap((key) => {
      const port = options[key];
      return port === undefined ? [] : [{ port, what: key.replace(/Port$/, ''), variable: variables[key] }];
    });
    claims.push(...(options.callerPorts ?? []));
    await assertPortsFree(claims);

    const jwtSecret = options.jwtSecret ?? (await loadOrCreateJwtSecret(dataDir));
    let postgresRestarts = 0;
    let restartingPostgres = false;
    const postgres = await startEmbeddedPostgres({
      dataDir,
      port: options.postgresPort,
      log: (line) => log('postgres', line),
      onUnexpectedExit: (how) => {
        if (stopping || restartingPostgres) return;
        restartingPostgres = true;
        postgresRestarts++;
        log('stack', `PostgreSQL ${how}; restarting it`);
        void (async () => {
          // A killed postmaster's backends take a moment to notice and leave its shared memory.
          for (let attempt = 1; attempt <= 10 && !stopping; attempt++) {
            await sleep(500 * attempt);
            try {
              await postgres.start();
              log('stack', `PostgreSQL restarted (attempt ${attempt})`);
              return;
            } catch (error) {
              log('stack', `PostgreSQL restart attempt ${attempt} failed: ${(error as Error).message.split('\n')[0]}`);
            }
          }
          fatal(new Error('PostgreSQL ended and could not be started again'));
        })().finally(() => {
          restartingPostgres = false;
        });
      },
    });
    cleanup.push(() => postgres.stop());
    const databaseUrl = await postgres.ensureDatabase('cablecar');
    await migrate(databaseUrl, { kind: 'local' }, (line) => log('migrate', line));
    const appDatabaseUrl = await ensureAppRole(databaseUrl);

    const tableName = `cablecar-${stage}`;
    const dynamodb = await startEmbeddedDynamodb({ port: options.dynamodbPort, tableName });
    cleanup.push(() => dynamodb.stop());
    const dynamodbUrl = dynamodb.url;

    // serverless-offline, running the real handlers in process. It builds into a folder of its own
    // (per stack), so that `sls package` (npm test) in the same checkout, which empties .esbuild,
    // and other stacks never pull the bundles from under it.
    const esbuildFolder = `.esbuild-local/${options.httpPort}`;
    cleanup.push(() => rm(join(ROOT, esbuildFolder), { recursive: true, force: true }));
    const websocketUrl = `ws://127.0.0.1:${options.websocketPort}`;
    const httpUrl = `http://127.0.0.1:${options.httpPort}`;
    const lambdaUrl = `http://127.0.0.1:${options.lambdaPort}`;
    const spawnOffline = () => {
      const child = spawn(
        process.execPath,
        [
          '--require',
          join(import.meta.dirname, 'offlineSocketGuard.cjs'),
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
            CABLECAR_ESBUILD_FOLDER: esbuildFolder,
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
      for (const stream of [child.stdout, child.stderr]) {
        stream?.setEncoding('utf8');
        stream?.on('data', (chunk: string) => chunk.split('\n').filter(Boolean).forEach((line) => log('offline', line)));
      }
      return child;
    };

    let offline = spawnOffline();
    const offlineRestarts: number[] = [];
    let offlineReady = false;
    const alive = () => offline.exitCode === null && offline.signalCode === null;
    const waitForOffline = () => waitForHttp(httpUrl, 120_000, alive).then(() => waitForHttp(lambdaUrl, 30_000, alive));
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
    // serverless-offline ending on its own (a crash) is restarted, a few times; more often than
    // that and the stack stops rather than pretend to run.
    const superviseOffline = (child: ChildProcess) => {
      child.once('exit', (code, signal) => {
        if (stopping || child !== offline) return;
        offlineReady = false;
        const now = Date.now();
        offlineRestarts.push(now);
        const recent = offlineRestarts.filter((at) => now - at < RESTART_WINDOW_MS).length;
        const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        if (recent > MAX_OFFLINE_RESTARTS) {
          fatal(new Error(`serverless-offline ${how}, the ${recent}th time within ${RESTART_WINDOW_MS / 1000} s`));
          return;
        }
        log('stack', `serverless-offline ${how}; restarting it (HTTP, WebSocket and Lambda endpoints; open sockets were lost)`);
        // Its children may still hold the ports for a moment (child is still `offline` here).
        killOfflineOnExit();
        offline = spawnOffline();
        superviseOffline(offline);
        waitForOffline()
          .then(() => {
            offlineReady = true;
            log('stack', 'serverless-offline restarted');
          })
          .catch((error: Error) => {
            // Ended again while starting: its own exit handler counts that and decides.
            if (alive()) fatal(new Error(`serverless-offline did not come back: ${error.message}`));
          });
      });
    };
    superviseOffline(offline);
    await waitForOffline();
    offlineReady = true;

    // The stand-in for aws_lambda.invoke
    const bridge: DispatchBridge = await startDispatchBridge({
      connectionString: databaseUrl,
      lambdaEndpoint: options.bridgeLambdaEndpoint ?? lambdaUrl,
      functionName: `cablecar-${stage}-fanout`,
      sweepIntervalMs: options.sweepIntervalMs,
      log: (line) => log('bridge', line),
    });
    cleanup.push(() => bridge.stop());

    // Retention, as the scheduled retention function does it on AWS.
    const retention = retentionSettings();
    const prunePool = createPool({ connectionString: databaseUrl, max: 1 });
    const pruner = messageStore(prunePool);
    const prune = async () => {
      try {
        const deleted = await pruner.prune(retention);
        if (deleted > 0) log('retention', `pruned ${deleted} message(s)`);
      } catch (error) {
        log('retention', `pruning failed, tried again in the next round: ${(error as Error).message}`);
      }
    };
    const pruneTimer = setInterval(() => void prune(), PRUNE_INTERVAL_MS);
    void prune();
    cleanup.push(async () => {
      clearInterval(pruneTimer);
      await prunePool.end().catch(() => {});
    });

    const health = async (): Promise<StackHealth> => {
      const bridgeStatus = bridge.status();
      const dynamodbUp = await fetch(dynamodbUrl, { method: 'POST', signal: AbortSignal.timeout(1000) }).then(
        () => true,
        () => false,
      );
      const parts: StackHealth['parts'] = {
        postgres: { up: postgres.running, restarts: postgresRestarts },
        dynamodb: { up: dynamodbUp },
        offline: { up: offlineReady && alive(), restarts: offlineRestarts.length, pid: offline.pid },
        bridge: { up: bridgeStatus.listening, busyChannels: bridgeStatus.busyChannels, lastError: bridgeStatus.lastError },
      };
      return { ok: Object.values(parts).every((part) => part.up), parts };
    };

    let healthUrl: string | undefined;
    if (options.healthPort !== undefined) {
      const server = createHttpServer((request, response) => {
        if (request.method !== 'GET' || request.url?.split('?')[0] !== '/health') {
          response.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'not_found', message: 'GET /health' } }));
          return;
        }
        health().then(
          (result) => response.writeHead(result.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(result)),
          (error: Error) => response.writeHead(500).end(error.message),
        );
      });
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(options.healthPort, '127.0.0.1', resolve));
      cleanup.push(() => new Promise((resolve) => server.close(() => resolve())));
      healthUrl = `http://127.0.0.1:${options.healthPort}/health`;
    }

    return {
      httpUrl,
      websocketUrl,
      lambdaUrl,
      databaseUrl,
      appDatabaseUrl,
      dynamodbUrl,
      tableName,
      healthUrl,
      jwtSecret,
      mintToken: (claims) => mintDevToken(jwtSecret, claims),
      dispatchIdle: () => bridge.idle(),
      stopDatabase: () => postgres.stop(),
      startDatabase: () => postgres.start(),
      health,
      pids: () => ({ offline: offline.pid, postgres: postgres.pid }),
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
