import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import type pg from 'pg';
import * as z from '../validation.js';
import type { Config } from '../config.js';
import { databaseUnavailable } from '../protocol/errors.js';

/** How to reach PostgreSQL: what `pg` needs to open a connection (no pool sizes). */
export type DatabaseSettings = Pick<pg.ClientConfig, 'connectionString' | 'host' | 'port' | 'user' | 'password' | 'database' | 'ssl'>;

/**
 * The secret RDS and Secrets Manager write for a database ({username, password, host, port, dbname,
 * engine, ...}). A secret that RDS manages for its master user holds only username and password, so
 * host may come from DATABASE_HOST instead; port and dbname default to PostgreSQL's.
 */
const rdsSecret = z.object({
  username: z.string().check(z.minLength(1)),
  password: z.string().check(z.minLength(1)),
  host: z.optional(z.string().check(z.minLength(1))),
  port: z._default(z.pipe(z.coerce.number(), z.int().check(z.gte(1), z.lte(65535))), 5432),
  dbname: z._default(z.string().check(z.minLength(1)), 'postgres'),
});

type DatabaseConfig = Pick<Config, 'DATABASE_URL' | 'DATABASE_SECRET_ARN' | 'DATABASE_HOST' | 'DATABASE_SECRET_MAX_AGE_SECONDS'>;

/**
 * Where the functions that use PostgreSQL connect: locally DATABASE_URL as given; on AWS the
 * Secrets Manager secret DATABASE_SECRET_ARN, read at run time (no password in the environment),
 * with DATABASE_HOST (an RDS Proxy endpoint) in place of its host if set, over TLS verified against
 * the RDS certificate authorities (NODE_EXTRA_CA_CERTS, serverless.yml). The password is read again
 * for each new connection, through the cache: a rotated password is used once the cache expires.
 * Failing to read the secret is the database being unavailable (503, retry), and is not kept.
 */
export async function resolveDatabaseSettings(config: DatabaseConfig): Promise<DatabaseSettings> {
  if (config.DATABASE_URL) return { connectionString: config.DATABASE_URL };
  const arn = config.DATABASE_SECRET_ARN;
  if (!arn) throw new Error('cablecar configuration: this function uses PostgreSQL; set DATABASE_SECRET_ARN (AWS) or DATABASE_URL (local)');

  const read = async () => {
    let value: unknown;
    try {
      // Powertools Parameters: cached per container for maxAge seconds.
      value = await getSecret(arn, { maxAge: config.DATABASE_SECRET_MAX_AGE_SECONDS, transform: 'json' });
    } catch (error) {
      throw databaseUnavailable(error);
    }
    const parsed = rdsSecret.safeParse(value);
    // The secret's content is never part of the message, only which fields are wrong.
    if (!parsed.success) throw new Error(`database secret ${arn} is not in the RDS format: ${parsed.error.issues.map((issue) => issue.path.join('.') || 'value').join(', ')} missing or invalid`);
    return parsed.data;
  };

  const secret = await read();
  const host = config.DATABASE_HOST ?? secret.host;
  if (!host) throw new Error(`database secret ${arn} has no host: add one to it or set DATABASE_HOST`);
  return {
    host,
    port: secret.port,
    database: secret.dbname,
    user: secret.username,
    password: async () => (await read()).password,
    ssl: { rejectUnauthorized: true },
  };
}
