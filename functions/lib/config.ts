import * as z from './validation.js';

/** An integer setting within [min, max], read from its string (zod's mini build, for small bundles). */
const integer = (min: number, max: number, fallback: number) =>
  z._default(z.pipe(z.coerce.number(), z.int().check(z.gte(min), z.lte(max))), fallback);
const text = () => z.string().check(z.minLength(1));

/**
 * Every setting cablecar reads from the environment, parsed once. serverless.yml sets these for the
 * Lambda functions; the local stack sets them for serverless-offline and the dispatch bridge.
 */
const configSchema = z.object({
  STAGE: z._default(text(), 'local'),
  AWS_REGION: z._default(text(), 'us-east-1'),
  /** The stage's DynamoDB table (connections and subscriptions). */
  TABLE_NAME: text(),
  /** Only set locally: the embedded DynamoDB emulator. Unset on AWS. */
  DYNAMODB_ENDPOINT: z.optional(z.url()),
  /** The API Gateway management endpoint (https://{api}.execute-api.{region}.amazonaws.com/{stage}). */
  WEBSOCKET_API_ENDPOINT: z.url(),
  DATABASE_URL: text(),
  DATABASE_POOL_MAX: integer(1, 50, 2),
  /** How long publish waits for a PostgreSQL connection before answering 503. */
  DATABASE_CONNECT_TIMEOUT_MS: integer(100, Number.MAX_SAFE_INTEGER, 3000),
  /** API Gateway closes every socket after 2 h; items outlive that by a margin, then expire. */
  CONNECTION_TTL_SECONDS: integer(60, Number.MAX_SAFE_INTEGER, 2 * 60 * 60 + 10 * 60),
  FANOUT_CONCURRENCY: integer(1, 1000, 50),
  SUBSCRIBER_PAGE_SIZE: integer(1, 1000, 500),
  /** Messages replayed on `subscribe` with `after`; beyond this the client pages through history. */
  REPLAY_LIMIT: integer(1, 10000, 1000),
  /**
   * The account's PostToConnection throttle (API Gateway: 10,000/s, a bucket of 5,000), shared by
   * every fan-out invocation: each paces itself at 1/FANOUT_SHARDS of it.
   */
  POST_RATE_LIMIT: integer(1, 1_000_000, 10_000),
  POST_BURST_LIMIT: integer(1, 1_000_000, 5_000),
  /** A channel with at most this many subscriptions is delivered by one invocation. */
  FANOUT_WORKER_SHARE: integer(1, 4000, 2000),
  /** How many parallel invocations deliver a bigger channel (README, "Fan-out at scale"). */
  FANOUT_SHARDS: integer(1, 64, 8),
  /** Only set locally: serverless-offline's Lambda endpoint, where fanout starts its shards. */
  LAMBDA_ENDPOINT: z.optional(z.url()),
  HISTORY_PAGE_LIMIT: integer(1, 1000, 1000),
});

export type Config = z.output<typeof configSchema>;

let cached: Config | undefined;

/** Reads and validates the environment on first use; a missing variable fails loudly at cold start. */
export function config(): Config {
  if (!cached) {
    const parsed = configSchema.safeParse(process.env);
    if (!parsed.success) {
      throw new Error(`cablecar configuration is invalid: ${z.prettifyError(parsed.error)}`);
    }
    cached = parsed.data;
  }
  return cached;
}
