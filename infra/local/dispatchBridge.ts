import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Stands in for RDS's aws_lambda extension: LISTENs for the ids that the local variant of
 * cablecar.dispatch NOTIFYs and invokes the fanout function's `live` alias, through the local
 * Lambda endpoint, with each message's dispatch event (the SQL function the AWS variant sends).
 *
 * It never skips. PostgreSQL, not the notifications, says what is left: a notification (or the
 * periodic sweep, or a reconnect) only marks work to do, and each channel's worker then dispatches
 * that channel's undispatched rows in seq order, one at a time. A message whose read or invoke fails
 * is retried (with backoff, without end) and its channel waits for it, so nothing later overtakes
 * it; other channels go on. A row is marked dispatched only once fan-out has answered without
 * error, and an invoke that succeeded is not repeated when only the marking failed.
 */
export interface DispatchBridgeOptions {
  connectionString: string;
  lambdaEndpoint: string;
  functionName: string;
  log?: (line: string) => void;
  /** How often PostgreSQL is swept for undispatched rows, whatever the notifications said. */
  sweepIntervalMs?: number;
}

export interface DispatchBridgeStatus {
  /** The LISTEN connection is up. */
  listening: boolean;
  /** Channels with a worker dispatching (or retrying) right now. */
  busyChannels: number;
  /** The last failure, until the next success. */
  lastError?: string | undefined;
}

export interface DispatchBridge {
  /** Resolves once nothing is left undispatched and no work is in flight (retries included). */
  idle(): Promise<void>;
  status(): DispatchBridgeStatus;
  stop(): Promise<void>;
}

const NOTIFY_CHANNEL = 'cablecar_dispatch';
const BATCH = 20;

interface Row {
  id: string;
  seq: string;
  event: unknown;
}

/** The longest wait between two attempts at a failing read or invoke. */
const MAX_RETRY_DELAY_MS = 2000;

class Stopped extends Error {}

export async function startDispatchBridge(options: DispatchBridgeOptions): Promise<DispatchBridge> {
  const { connectionString, lambdaEndpoint, functionName, log = () => {}, sweepIntervalMs = 2000 } = options;
  const lambda = new LambdaClient({
    endpoint: lambdaEndpoint,
    region: process.env.AWS_REGION ?? 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
  const pool = new pg.Pool({ connectionString, max: 4 });
  pool.on('error', () => {}); // an idle client lost to a database restart; the next query reconnects

  let stopped = false;
  let listener: pg.Client | undefined;
  let lastError: string | undefined;
  /** Channels whose rows must be looked at again; each has at most one worker. */
  const dirty = new Set<string>();
  const workers = new Map<string, Promise<void>>();
  /** Invoked successfully but not yet marked: a retry only marks them. */
  const invokedUnmarked = new Set<string>();

  const backoff = (attempt: number) => Math.min(100 * 2 ** Math.min(attempt, 10), MAX_RETRY_DELAY_MS);
  const fail = (what: string, error: unknown, attempt: number, then = 'retrying, the channel waits') => {
    lastError = `${what}: ${(error as Error).message}`;
    // The first failure and then every tenth: a channel that waits says so without flooding the log.
    if (attempt === 1 || attempt % 10 === 0) log(`${lastError} (attempt ${attempt}; ${then})`);
  };

  /** Until it succeeds or the bridge stops. */
  async function retrying<T>(what: string, attemptOnce: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      if (stopped) throw new Stopped();
      try {
        const result = await attemptOnce();
        if (attempt > 1) log(`${what}: succeeded at attempt ${attempt}`);
        return result;
      } catch (error) {
        if (error instanceof Stopped) throw error;
        fail(what, error, attempt);
        await sleep(backoff(attempt));
      }
    }
  }

  async function invoke(channel: string, row: Row): Promise<void> {
    const result = await lambda.send(
      new InvokeCommand({
        FunctionName: functionName,
        Qualifier: 'live',
        InvocationType: 'RequestResponse',
        Payload: Buffer.from(JSON.stringify(row.event)),
      }),
    );
    if (result.FunctionError) {
      throw new Error(`fanout of ${channel}#${row.seq} failed: ${Buffer.from(result.Payload ?? []).toString().slice(0, 300)}`);
    }
  }

  /** Dispatches the channel's undispatched rows in seq order until none is left. */
  async function drain(channel: string): Promise<void> {
    for (;;) {
      const { rows } = await retrying(`reading ${channel}'s undispatched messages`, () =>
        pool.query<Row>(
          `SELECT id, seq, cablecar.dispatch_event(id) AS event FROM cablecar.messages
            WHERE channel = $1 AND dispatched_at IS NULL ORDER BY seq LIMIT ${BATCH}`,
          [channel],
        ),
      );
      if (rows.length === 0) return;
      for (const row of rows) {
        if (!invokedUnmarked.has(row.id)) {
          await retrying(`invoking fanout for ${channel}#${row.seq}`, () => invoke(channel, row));
          invokedUnmarked.add(row.id);
        }
        await retrying(`marking ${channel}#${row.seq} dispatched`, () =>
          pool.query('UPDATE cablecar.messages SET dispatched_at = clock_timestamp() WHERE id = $1', [row.id]),
        );
        invokedUnmarked.delete(row.id);
        lastError = undefined;
      }
    }
  }

  function kick(channel: string): void {
    dirty.add(channel);
    if (workers.has(channel)) return;
    const worker = (async () => {
      while (dirty.delete(channel)) await drain(channel);
    })()
      .catch((error) => {
        if (!(error instanceof Stopped)) log(`dispatch of ${channel} stopped: ${(error as Error).message}`);
      })
      .finally(() => {
        workers.delete(channel);
        // Kicked again between the last drain and now: go on.
        if (dirty.has(channel) && !stopped) kick(channel);
      });
    workers.set(channel, worker);
  }

  // Sweeps coalesce: a burst of notifications costs one query, plus one for what came during it.
  let sweeping: Promise<void> | undefined;
  let sweepAgain = false;
  function sweep(): Promise<void> {
    if (sweeping) {
      sweepAgain = true;
      return sweeping;
    }
    sweeping = (async () => {
      do {
        sweepAgain = false;
        try {
          const { rows } = await pool.query<{ channel: string }>('SELECT DISTINCT channel FROM cablecar.messages WHERE dispatched_at IS NULL');
          rows.forEach((row) => kick(row.channel));
          if (workers.size === 0) lastError = undefined;
        } catch (error) {
          // The periodic sweep tries again; nothing is lost meanwhile, it is all in PostgreSQL.
          fail('sweeping for undispatched messages', error, 1, 'the next sweep tries again');
        }
      } while (sweepAgain && !stopped);
    })().finally(() => {
      sweeping = undefined;
    });
    return sweeping;
  }

  async function connect(): Promise<void> {
    const client = new pg.Client({ connectionString });
    client.on('error', () => {});
    client.on('end', () => {
      if (listener === client) listener = undefined;
      if (!stopped) void reconnect();
    });
    client.on('notification', (notification) => {
      if (notification.channel === NOTIFY_CHANNEL) void sweep();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
    } catch (error) {
      // Connected but LISTEN failed (the database going down again): not left open beside the next try.
      await client.end().catch(() => {});
      throw error;
    }
    if (stopped) {
      // Stopped while this (re)connect was under way: stop() could not end it.
      await client.end().catch(() => {});
      return;
    }
    listener = client;
    // Whatever was published while nobody listened.
    void sweep();
  }

  let reconnecting = false;
  async function reconnect(): Promise<void> {
    if (reconnecting) return;
    reconnecting = true;
    for (let attempt = 1; !stopped; attempt++) {
      await sleep(Math.min(250 * attempt, 2000));
      try {
        await connect();
        log('dispatch bridge reconnected to PostgreSQL');
        break;
      } catch {
        // keep trying until the database is back or the bridge stops
      }
    }
    reconnecting = false;
  }

  try {
    await connect();
  } catch (error) {
    stopped = true; // no reconnect loop left behind by a bridge that never started
    await pool.end().catch(() => {});
    lambda.destroy();
    throw error;
  }
  const sweeper = setInterval(() => void sweep(), sweepIntervalMs);

  const settle = async () => {
    while (sweeping || workers.size > 0) {
      await sweeping;
      await Promise.all([...workers.values()]);
    }
  };

  return {
    async idle() {
      // A sweep of its own, so that rows committed before the call are included even if their
      // notification has not arrived yet.
      await sweep();
      await settle();
    },
    status: () => ({ listening: listener !== undefined, busyChannels: workers.size, lastError }),
    async stop() {
      stopped = true;
      clearInterval(sweeper);
      await listener?.end().catch(() => {});
      await settle().catch(() => {});
      await pool.end().catch(() => {});
      lambda.destroy();
    },
  };
}
