import { z } from 'zod';

/**
 * Every setting cablecar reads from the environment, parsed once. serverless.yml sets these for the
 * Lambda functions; the local stack sets them for serverless-offline and the dispatch bridge.
 */
/**
 * Retention (bounded history), per channel: messages older than MESSAGE_RETENTION_SECONDS, and those
 * beyond the newest MESSAGE_RETENTION_COUNT, are pruned on a schedule (0 = no limit of that kind).
 * Read by the retention function on AWS and by the local stack alike.
 */
const retentionSchema = z.object({
  MESSAGE_RETENTION_SECONDS: z.coerce.number().int().min(0).default(30 * 24 * 60 * 60),
  MESSAGE_RETENTION_COUNT: z.coerce.number().int().min(0).default(100_000),
});

export interface RetentionSettings {
  maxAgeSeconds: number | undefined;
  maxCount: number | undefined;
}

export function retentionSettings(env: NodeJS.ProcessEnv = process.env): RetentionSettings {
  const parsed = retentionSchema.safeParse(env);
  if (!parsed.success) throw new Error(`cablecar retention settings are invalid: ${z.prettifyError(parsed.error)}`);
  return {
    maxAgeSeconds: parsed.data.MESSAGE_RETENTION_SECONDS || undefined,
    maxCount: parsed.data.MESSAGE_RETENTION_COUNT || undefined,
  };
}

const configSchema = z.object({
  STAGE: z.string().min(1).default('local'),
  AWS_REGION: z.string().min(1).default('us-east-1'),
  /** The stage's DynamoDB table (connections and subscriptions). */
  TABLE_NAME: z.string().min(1),
  /** Only set locally: the embedded DynamoDB emulator. Unset on AWS. */
  DYNAMODB_ENDPOINT: z.url().optional(),
  /** The API Gateway management endpoint (https://{api}.execute-api.{region}.amazonaws.com/{stage}). */
  WEBSOCKET_API_ENDPOINT: z.url(),
  DATABASE_URL: z.string().min(1),
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
  /** The sweep (AWS): the fanout function it dispatches to again (its `live` alias). */
  FANOUT_FUNCTION_NAME: z.string().min(1).optional(),
  /**
   * The sweep looks at messages published between SWEEP_WINDOW_SECONDS and SWEEP_GRACE_SECONDS ago
   * that have no completion record. The grace outlasts Lambda's own retries of an async event (about
   * 3 minutes) so that the sweep rarely races them; the window stays inside the record's 2-day TTL.
   */
  SWEEP_GRACE_SECONDS: z.coerce.number().int().min(60).default(600),
  SWEEP_WINDOW_SECONDS: z.coerce.number().int().min(120).max(24 * 60 * 60).default(6 * 60 * 60),
  SWEEP_BATCH_LIMIT: z.coerce.number().int().min(1).max(10_000).default(2000),
});

export type Config = z.infer<typeof configSchema>;

/**
 * A reader of one group of settings: parses and validates the environment on first use, so a
 * missing or malformed variable fails loudly at cold start, and keeps the result.
 */
function settings<T extends z.ZodType>(schema: T, what: string): () => z.infer<T> {
  let cached: z.infer<T> | undefined;
  return () => {
    if (cached === undefined) {
      const parsed = schema.safeParse(process.env);
      if (!parsed.success) throw new Error(`${what} is invalid: ${z.prettifyError(parsed.error)}`);
      cached = parsed.data;
    }
    return cached!;
  };
}

export const config: () => Config = settings(configSchema, 'cablecar configuration');

/** An unset variable and one that serverless.yml set to '' (a stage parameter left empty) mean the same. */
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (value === '' ? undefined : value), schema.optional());

/**
 * How tokens are verified. Read only by the functions that verify them (the $connect authorizer,
 * publish, history), apart from the rest so that they need no other setting. One key source:
 * `JWKS_URL` (+ `JWT_ISSUER`) for RS256/ES256, else `JWT_SECRET_ARN` (the HS256 secret in Secrets
 * Manager, read at run time), else `CABLECAR_JWT_SECRET` (the local stack only: serverless.yml never
 * puts a secret value in an environment).
 */
const tokenConfigSchema = z
  .object({
    JWT_AUDIENCE: z.string().min(1).default('cablecar'),
    JWT_ISSUER: optional(z.string().min(1)),
    JWKS_URL: optional(z.url({ protocol: /^https?$/ })),
    JWT_SECRET_ARN: optional(z.string().min(1)),
    CABLECAR_JWT_SECRET: optional(z.string().min(32, 'CABLECAR_JWT_SECRET must be at least 32 characters')),
    /** How long a secret read from Secrets Manager is cached per container (rotation takes this long to reach every container). */
    JWT_SECRET_CACHE_SECONDS: z.coerce.number().int().min(0).default(300),
  })
  .refine((c) => c.JWKS_URL || c.JWT_SECRET_ARN || c.CABLECAR_JWT_SECRET, {
    message: 'no token key: set JWKS_URL and JWT_ISSUER, JWT_SECRET_ARN, or (locally) CABLECAR_JWT_SECRET',
  })
  .refine((c) => !c.JWKS_URL || c.JWT_ISSUER, { message: 'JWKS_URL needs JWT_ISSUER', path: ['JWT_ISSUER'] });

export type TokenConfig = z.infer<typeof tokenConfigSchema>;

export const tokenConfig: () => TokenConfig = settings(tokenConfigSchema, 'cablecar token configuration');
