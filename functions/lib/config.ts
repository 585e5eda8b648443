import * as z from './validation.js';

/** An integer setting within [min, max], read from its string (zod's mini build, for small bundles). */
const integer = (min: number, max: number, fallback: number) =>
  z._default(z.pipe(z.coerce.number(), z.int().check(z.gte(min), z.lte(max))), fallback);
const text = () => z.string().check(z.minLength(1));

/** An empty value (`DATABASE_HOST=` in a shell, a stage parameter left empty in serverless.yml) means unset. */
const unsetIfEmpty = <T extends z.ZodMiniType>(schema: T) =>
  z.pipe(
    z.transform((value: unknown) => (value === '' ? undefined : value)),
    schema,
  );

/** An optional setting: unset, or set empty. */
const optional = <T extends z.ZodMiniType>(schema: T) => unsetIfEmpty(z.optional(schema));

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
  /**
   * Where PostgreSQL is, for the functions that use it (no other function has any of these). Exactly
   * one of DATABASE_URL (the local stack: a URL, password included) and DATABASE_SECRET_ARN (AWS: a
   * Secrets Manager secret in the RDS format, read at run time; stores/databaseSettings.ts).
   */
  DATABASE_URL: optional(text()),
  DATABASE_SECRET_ARN: optional(z.string().check(z.regex(/^arn:aws[a-z-]*:secretsmanager:/, 'DATABASE_SECRET_ARN must be a Secrets Manager secret ARN'))),
  /** Optional with the secret: the host to connect to instead of the secret's (an RDS Proxy endpoint). */
  DATABASE_HOST: optional(text()),
  /** How long a container keeps the secret before reading it again (a rotated password arrives within this). */
  DATABASE_SECRET_MAX_AGE_SECONDS: integer(0, Number.MAX_SAFE_INTEGER, 300),
  DATABASE_POOL_MAX: integer(1, 50, 2),
  /** How long publish waits for a PostgreSQL connection before answering 503. */
  DATABASE_CONNECT_TIMEOUT_MS: integer(100, Number.MAX_SAFE_INTEGER, 3000),
  /** API Gateway closes every socket after 2 h; items outlive that by a margin, then expire. */
  CONNECTION_TTL_SECONDS: integer(60, Number.MAX_SAFE_INTEGER, 2 * 60 * 60 + 10 * 60),
  /** Posts in flight per fanout invocation: at a 25-40 ms round trip, 100 sustain its 2,500/s share. */
  FANOUT_CONCURRENCY: integer(1, 1000, 100),
  SUBSCRIBER_PAGE_SIZE: integer(1, 1000, 500),
  /** Messages replayed on `subscribe` with `after`; beyond this the client pages through history. */
  REPLAY_LIMIT: integer(1, 10000, 1000),
  /** Subscriptions one socket may hold; one more is refused with too_many_subscriptions. */
  MAX_SUBSCRIPTIONS_PER_CONNECTION: integer(1, 10000, 100),
  /**
   * The account's PostToConnection throttle (API Gateway: 10,000/s, a bucket of 5,000), shared by
   * every fan-out invocation: each paces itself at 1/FANOUT_SHARDS of it.
   */
  POST_RATE_LIMIT: integer(1, 1_000_000, 10_000),
  POST_BURST_LIMIT: integer(1, 1_000_000, 5_000),
  /** A channel with at most this many subscriptions is delivered by one invocation. */
  FANOUT_WORKER_SHARE: integer(1, 4000, 2000),
  /** How many parallel invocations deliver a bigger channel (docs/performance.md, "Fan-out at scale"). */
  FANOUT_SHARDS: integer(1, 64, 4),
  /** Only set locally: serverless-offline's Lambda endpoint, where fanout starts its shards. */
  LAMBDA_ENDPOINT: z.optional(z.url()),
  HISTORY_PAGE_LIMIT: integer(1, 1000, 1000),
}).check(
  z.refine((env) => !(env.DATABASE_URL && env.DATABASE_SECRET_ARN), {
    message: 'set DATABASE_URL (local) or DATABASE_SECRET_ARN (AWS), not both',
    path: ['DATABASE_URL'],
  }),
);

export type Config = z.output<typeof configSchema>;

/**
 * A reader of one group of settings: parses and validates the environment on first use, so a
 * missing or malformed variable fails loudly at cold start, and keeps the result.
 */
function settings<T extends z.ZodMiniType>(schema: T, what: string): () => z.infer<T> {
  let cached: z.infer<T> | undefined;
  return () => (cached ??= parseSettings(schema, process.env, what));
}

function parseSettings<T extends z.ZodMiniType>(schema: T, env: Record<string, string | undefined>, what: string): z.infer<T> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) throw new Error(`${what} is invalid: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** Validates an environment (process.env for the functions); a bad one throws, saying what is wrong. */
export function parseConfig(env: Record<string, string | undefined>): Config {
  return parseSettings(configSchema, env, 'cablecar configuration');
}

export const config: () => Config = settings(configSchema, 'cablecar configuration');

/**
 * How tokens are verified. Read only by the functions that verify them (the $connect authorizer,
 * publish, history), apart from the rest so that they need no other setting. One key source:
 * `JWKS_URL` (+ `JWT_ISSUER`) for RS256/ES256, else `JWT_SECRET_ARN` (the HS256 secret in Secrets
 * Manager, read at run time), else `CABLECAR_JWT_SECRET` (the local stack only: serverless.yml never
 * puts a secret value in an environment).
 */
const tokenConfigSchema = z
  .object({
    JWT_AUDIENCE: z._default(text(), 'cablecar'),
    JWT_ISSUER: optional(text()),
    JWKS_URL: optional(z.url({ protocol: /^https?$/ })),
    JWT_SECRET_ARN: optional(text()),
    CABLECAR_JWT_SECRET: optional(z.string().check(z.minLength(32, 'CABLECAR_JWT_SECRET must be at least 32 characters'))),
    /** How long a secret read from Secrets Manager is cached per container (rotation takes this long to reach every container). */
    JWT_SECRET_CACHE_SECONDS: integer(0, Number.MAX_SAFE_INTEGER, 300),
  })
  .check(
    z.refine((c) => Boolean(c.JWKS_URL || c.JWT_SECRET_ARN || c.CABLECAR_JWT_SECRET), {
      message: 'no token key: set JWKS_URL and JWT_ISSUER, JWT_SECRET_ARN, or (locally) CABLECAR_JWT_SECRET',
    }),
    z.refine((c) => !c.JWKS_URL || Boolean(c.JWT_ISSUER), { message: 'JWKS_URL needs JWT_ISSUER', path: ['JWT_ISSUER'] }),
  );

export type TokenConfig = z.infer<typeof tokenConfigSchema>;

export const tokenConfig: () => TokenConfig = settings(tokenConfigSchema, 'cablecar token configuration');

/**
 * Retention (bounded history), per channel: messages older than MESSAGE_RETENTION_SECONDS, and those
 * beyond the newest MESSAGE_RETENTION_COUNT, are pruned on a schedule (0 = no limit of that kind).
 * Read by the retention function on AWS and by the local stack alike.
 */
const retentionSchema = z.object({
  MESSAGE_RETENTION_SECONDS: integer(0, Number.MAX_SAFE_INTEGER, 30 * 24 * 60 * 60),
  MESSAGE_RETENTION_COUNT: integer(0, Number.MAX_SAFE_INTEGER, 100_000),
});

export interface RetentionSettings {
  maxAgeSeconds: number | undefined;
  maxCount: number | undefined;
}

export function retentionSettings(env: Record<string, string | undefined> = process.env): RetentionSettings {
  const parsed = parseSettings(retentionSchema, env, 'cablecar retention settings');
  return { maxAgeSeconds: parsed.MESSAGE_RETENTION_SECONDS || undefined, maxCount: parsed.MESSAGE_RETENTION_COUNT || undefined };
}

/**
 * The sweep (AWS): which messages it checks for a completion record, and the fanout function it
 * dispatches them to again (its `live` alias). It looks at messages published between
 * SWEEP_WINDOW_SECONDS and SWEEP_GRACE_SECONDS ago that it has not confirmed complete; the grace
 * outlasts Lambda's own retries of an async event (about 3 minutes) so that the sweep rarely races
 * them, and the window stays inside the completion record's 2-day TTL (so a record missing in the
 * window always means an unfinished fan-out, and a message is confirmed while its record is there).
 */
export const sweepSettings = settings(
  z.object({
    FANOUT_FUNCTION_NAME: text(),
    SWEEP_GRACE_SECONDS: integer(60, 24 * 60 * 60, 600),
    SWEEP_WINDOW_SECONDS: integer(120, 24 * 60 * 60, 6 * 60 * 60),
    /** Messages per page: the sweep reads the unconfirmed messages of its window page by page, until its time runs short. */
    SWEEP_BATCH_LIMIT: integer(1, 10_000, 2000),
  }),
  'cablecar sweep settings',
);

/**
 * Which function and version is running: set by the Lambda runtime (and by serverless-offline), read
 * by the ServerErrors metric (its dimensions) and by fanout (its shards go to this same version).
 * Both optional, so reading them never fails, not even while reporting another failure.
 */
export const runningFunction = settings(
  z.object({
    AWS_LAMBDA_FUNCTION_NAME: optional(text()),
    AWS_LAMBDA_FUNCTION_VERSION: optional(text()),
  }),
  'the running function',
);
