import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import pg from 'pg';

/**
 * Stands in for RDS's aws_lambda extension, and nothing else: LISTENs for the ids that the local
 * variant of cablecar.dispatch NOTIFYs, reads each message's dispatch event with the same SQL
 * function the AWS variant sends, and invokes the fanout function's `live` alias through the local
 * Lambda endpoint.
 *
 * One channel's messages are invoked one after another, in seq order, so the wire order is seq
 * order locally; channels proceed independently. Rows left undispatched (bridge down, fan-out
 * failing) are dispatched again when the bridge (re)connects.
 */
export interface DispatchBridgeOptions {
  connectionString: string;
  lambdaEndpoint: string;
  functionName: string;
  log?: (line: string) => void;
  /** Attempts per message before it is left undispatched until the next (re)connect. */
  maxAttempts?: number;
}

export interface DispatchBridge {
  /** Resolves once every message handed to the bridge so far has been dispatched or given up on. */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

const CHANNEL = 'cablecar_dispatch';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startDispatchBridge(options: DispatchBridgeOptions): Promise<DispatchBridge> {
  const { connectionString, lambdaEndpoint, functionName, log = () => {}, maxAttempts = 5 } = options;
  const lambda = new LambdaClient({
    endpoint: lambdaEndpoint,
    region: process.env.AWS_REGION ?? 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
  const pool = new pg.Pool({ connectionString, max: 2 });
  pool.on('error', () => {}); // an idle client lost to a database restart; the next query reconnects

  let stopped = false;
  let listener: pg.Client | undefined;
  const inFlight = new Set<string>();
  const channelTails = new Map<string, Promise<void>>();
  // Reads run one at a time, in notification order, so each channel's queue is filled in seq order.
  let reads: Promise<void> = Promise.resolve();
  let buffered: string[] | undefined;

  async function invoke(event: { message: { channel: string; seq: number } }): Promise<boolean> {
    for (let attempt = 1; attempt <= maxAttempts && !stopped; attempt++) {
      try {
        const result = await lambda.send(
          new InvokeCommand({
            FunctionName: functionName,
            Qualifier: 'live',
            InvocationType: 'RequestResponse',
            Payload: Buffer.from(JSON.stringify(event)),
          }),
        );
        if (!result.FunctionError) return true;
        log(`fanout failed for ${event.message.channel}#${event.message.seq}: ${Buffer.from(result.Payload ?? []).toString()}`);
      } catch (error) {
        log(`invoke failed for ${event.message.channel}#${event.message.seq}: ${(error as Error).message}`);
      }
      await sleep(Math.min(200 * 2 ** attempt, 5000));
    }
    return false;
  }

  function enqueue(id: string): void {
    if (inFlight.has(id)) return;
    inFlight.add(id);
    reads = reads.then(async () => {
      try {
        const { rows } = await pool.query<{ event: { message: { channel: string; seq: number } } }>(
          'SELECT cablecar.dispatch_event(id) AS event FROM cablecar.messages WHERE id = $1 AND dispatched_at IS NULL',
          [id],
        );
        const event = rows[0]?.event;
        if (!event) return void inFlight.delete(id);
        const channel = event.message.channel;
        const tail = (channelTails.get(channel) ?? Promise.resolve()).then(async () => {
          if (await invoke(event)) {
            await pool.query('UPDATE cablecar.messages SET dispatched_at = clock_timestamp() WHERE id = $1', [id]);
          }
        });
        const settled = tail.catch((error) => log(`dispatch of ${id} failed: ${(error as Error).message}`)).finally(() => {
          inFlight.delete(id);
          if (channelTails.get(channel) === settled) channelTails.delete(channel);
        });
        channelTails.set(channel, settled);
      } catch (error) {
        inFlight.delete(id);
        log(`could not read message ${id}: ${(error as Error).message}`);
      }
    });
  }

  async function connect(): Promise<void> {
    const client = new pg.Client({ connectionString });
    client.on('error', () => {});
    client.on('end', () => {
      if (listener === client) listener = undefined;
      if (!stopped) void reconnect();
    });
    client.on('notification', (notification) => {
      if (notification.channel !== CHANNEL || !notification.payload) return;
      if (buffered) buffered.push(notification.payload);
      else enqueue(notification.payload);
    });
    await client.connect();
    listener = client;
    await client.query(`LISTEN ${CHANNEL}`);
    // Notifications that arrive while the backlog is read come after it in each channel's seq order.
    buffered = [];
    try {
      const { rows } = await pool.query<{ id: string }>(
        'SELECT id FROM cablecar.messages WHERE dispatched_at IS NULL ORDER BY channel, seq',
      );
      if (rows.length > 0) log(`dispatching ${rows.length} undispatched message(s)`);
      rows.forEach((row) => enqueue(row.id));
    } finally {
      const pending = buffered;
      buffered = undefined;
      pending.forEach(enqueue);
    }
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

  await connect();

  const idle = async () => {
    await reads;
    await Promise.all([...channelTails.values()]);
  };

  return {
    idle,
    async stop() {
      stopped = true;
      await listener?.end().catch(() => {});
      await idle().catch(() => {});
      await pool.end().catch(() => {});
      lambda.destroy();
    },
  };
}
