import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';

/**
 * Applies the SQL migrations in infra/sql/migrations once each, in name order, then installs the
 * dispatch variant for where the database runs — all in one transaction, so a database is never
 * left half-migrated or with the placeholder dispatch that refuses every publish. Safe to run any
 * number of times, and concurrently: an advisory lock serialises runners.
 *
 * Everything lives in schema `cablecar`, the bookkeeping table too (`cablecar.migrations`). A
 * database migrated before the schema existed keeps its bookkeeping in `public.cablecar_migrations`:
 * the runner moves that table first, and 002 moves the rest.
 */
export type DispatchVariant = { kind: 'local' } | { kind: 'aws'; fanoutFunction: string; region: string };

const SQL_DIR = join(import.meta.dirname, 'sql');
const MIGRATION_LOCK = 7_261_001;

export async function renderDispatchSql(variant: DispatchVariant): Promise<string> {
  const sql = await readFile(join(SQL_DIR, 'dispatch', `${variant.kind}.sql`), 'utf8');
  if (variant.kind === 'local') return sql;
  const literal = (value: string) => `'${value.replaceAll("'", "''")}'`;
  return sql.replaceAll(':fanout_function', literal(variant.fanoutFunction)).replaceAll(':region', literal(variant.region));
}

export async function migrate(
  connectionString: string,
  variant: DispatchVariant,
  log: (line: string) => void = () => {},
): Promise<string[]> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query('BEGIN');
    try {
      await client.query('CREATE SCHEMA IF NOT EXISTS cablecar');
      await client.query(`DO $$
        BEGIN
          IF to_regclass('public.cablecar_migrations') IS NOT NULL AND to_regclass('cablecar.migrations') IS NULL THEN
            ALTER TABLE public.cablecar_migrations SET SCHEMA cablecar;
            ALTER TABLE cablecar.cablecar_migrations RENAME TO migrations;
          END IF;
        END $$`);
      await client.query(
        'CREATE TABLE IF NOT EXISTS cablecar.migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
      );
      const done = new Set((await client.query<{ name: string }>('SELECT name FROM cablecar.migrations')).rows.map((r) => r.name));
      const files = (await readdir(join(SQL_DIR, 'migrations'))).filter((f) => f.endsWith('.sql')).sort();
      // Unqualified names in a migration mean cablecar's objects, never the application's.
      await client.query('SET LOCAL search_path TO cablecar');
      for (const file of files.filter((f) => !done.has(f))) {
        log(`applying migration ${file}`);
        const sql = await readFile(join(SQL_DIR, 'migrations', file), 'utf8');
        try {
          await client.query(sql);
        } catch (error) {
          throw new Error(`migration ${file} failed: ${(error as Error).message}`, { cause: error });
        }
        await client.query('INSERT INTO cablecar.migrations (name) VALUES ($1)', [file]);
        applied.push(file);
      }
      await client.query('SET LOCAL search_path TO DEFAULT'); // the dispatch SQL names its schemas
      try {
        await client.query(await renderDispatchSql(variant));
      } catch (error) {
        throw new Error(`installing the ${variant.kind} dispatch variant failed: ${(error as Error).message}`, { cause: error });
      }
      await client.query('COMMIT');
    } catch (error) {
      // A lost connection fails the ROLLBACK too (the server rolls back by itself): report the cause.
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    }
    log(`dispatch variant: ${variant.kind}`);
    return applied;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {});
    await client.end();
  }
}

const HELP = `Usage: DATABASE_URL=postgres://… npm run migrate -- [--dispatch local | --dispatch aws --fanout-function <name> --region <region>]

Applies the SQL migrations of infra/sql/migrations that the database has not had yet, then installs
the dispatch variant: local (NOTIFY, for the local stack's bridge; the default) or aws (aws_lambda.invoke
of the fanout function's "live" alias). One transaction; safe to run again and concurrently.
--region defaults to AWS_REGION.

Exit status: 0 done, 1 the migration failed (nothing was changed), 2 usage error.`;

/** `npm run migrate`; returns the exit status. */
async function runMigrate(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        dispatch: { type: 'string', default: 'local' },
        'fanout-function': { type: 'string' },
        region: { type: 'string', default: process.env.AWS_REGION },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const usage = (problem: string) => {
    console.error(`${problem}\n\n${HELP}`);
    return 2;
  };
  const url = process.env.DATABASE_URL;
  if (!url) return usage('DATABASE_URL is required');
  let variant: DispatchVariant;
  if (values.dispatch === 'aws') {
    if (!values['fanout-function'] || !values.region) return usage('--dispatch aws needs --fanout-function and --region (or AWS_REGION)');
    variant = { kind: 'aws', fanoutFunction: values['fanout-function'], region: values.region };
  } else if (values.dispatch === 'local') {
    variant = { kind: 'local' };
  } else {
    return usage(`--dispatch must be "local" or "aws", not "${values.dispatch}"`);
  }
  try {
    await migrate(url, variant, console.log);
    return 0;
  } catch (error) {
    console.error(`migrate failed: ${(error as Error).message}`);
    return 1;
  }
}

// npm run migrate -- --dispatch aws --fanout-function cablecar-prod-fanout --region eu-west-1
if (process.argv[1] === import.meta.filename) process.exitCode = await runMigrate(process.argv.slice(2));
