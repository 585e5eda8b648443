import { z } from 'zod';

/** An empty value (`DATABASE_HOST=` in a shell, an empty stage parameter) means unset. */
const unsetIfEmpty = <T extends z.ZodType>(schema: T) => z.preprocess((value) => (value === '' ? undefined : value), schema);

/**
 * Every setting cablecar reads from the environment, parsed once. serverless.yml sets these for the
 * Lambda functions; the local stack sets them for serverless-offline and the dispatch bridge.
 */
const configSchema = z.object({
  STAGE: z.string().min(1).default('local'),
  AWS_REGION: z.string().min(1).default('us-east-1'),
  /** The stage's DynamoDB table (connections and subscriptions). */
  TABLE_NAME: z.string().min(1),
  /** Only set locally: the embedded DynamoDB emulator. Unset on AWS. */
  DYNAMODB_ENDPOINT: z.url().optional(),
  /** The API Gateway management endpoint (https://{api}.execute-api.{region}.amazonaws.com/{stage}). */
  WEBSOCKET_API_ENDPOINT: z.url(),
  /**
   * Where PostgreSQL is, for the functions that use it (no other function has any of these). Exactly
   * one of DATABASE_URL (the local stack: a URL, password included) and DATABASE_SECRET_ARN (AWS: a
   * Secrets Manager secret in the RDS format, read at run time; stores/databaseSettings.ts).
   */
  DATABASE_URL: unsetIfEmpty(z.string().min(1).optional()),
  DATABASE_SECRET_ARN: unsetIfEmpty(
    z.string().regex(/^arn:aws[a-z-]*:secretsmanager:/, 'DATABASE_SECRET_ARN must be a Secrets Manager secret ARN').optional(),
  ),
  /** Optional with the secret: the host to connect to instead of the secret's (an RDS Proxy endpoint). */
  DATABASE_HOST: unsetIfEmpty(z.string().min(1).optional()),
  /** How long a container keeps the secret before reading it again (a rotated password arrives within this). */
  DATABASE_SECRET_MAX_AGE_SECONDS: z.coerce.number().int().min(0).default(300),
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(50).default(2),
  /** How long publish waits for a PostgreSQL connection before answering 503. */
  DATABASE_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(100).default(3000),
  /** API Gateway closes every socket after 2 h; items outlive that by a margin, then expire. */
  CONNECTION_TTL_SECONDS: z.coerce.number().int().min(60).default(2 * 60 * 60 + 10 * 60),
  FANOUT_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(50),
  SUBSCRIBER_PAGE_SIZE: z.coerce.number().int().min(1).max(1000).default(500),
  /** Messages replayed on `subscribe` with `after`; beyond this the client pages through history. */
  REPLAY_LIMIT: z.coerce.number().int().min(1).max(10000).default(1000),
  HISTORY_PAGE_LIMIT: z.coerce.number().int().min(1).max(1000).default(1000),
}).refine((env) => !(env.DATABASE_URL && env.DATABASE_SECRET_ARN), {
  message: 'set DATABASE_URL (local) or DATABASE_SECRET_ARN (AWS), not both',
  path: ['DATABASE_URL'],
});

export type Config = z.infer<typeof configSchema>;

let cached: Config | undefined;

/** Validates an environment (process.env for the functions); a bad one throws, saying what is wrong. */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) throw new Error(`cablecar configuration is invalid: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** Reads and validates the environment on first use; a missing variable fails loudly at cold start. */
export function config(): Config {
  cached ??= parseConfig(process.env);
  return cached;
}
