import { clearCaches } from '@aws-lambda-powertools/parameters';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type pg from 'pg';
import { parseConfig } from '../../functions/lib/config.js';
import { createPool } from '../../functions/lib/stores/database.js';
import { resolveDatabaseSettings } from '../../functions/lib/stores/databaseSettings.js';
import { CablecarError } from '../../functions/lib/protocol/errors.js';
import { startPostgres, type TestPostgres } from '../support/databases.js';

/**
 * Where the functions that use PostgreSQL connect: DATABASE_URL locally, the RDS-format secret on
 * AWS. The Secrets Manager API is mocked (aws-sdk-client-mock); Powertools Parameters, which reads
 * and caches it, is the real one, and so is the PostgreSQL the resolved settings connect to.
 */
const ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:cablecar-db-AbCdEf';
const secretsManager = mockClient(SecretsManagerClient);
const secretIs = (value: object) => secretsManager.on(GetSecretValueCommand, { SecretId: ARN }).resolves({ SecretString: JSON.stringify(value) });
const fromSecret = (more: { DATABASE_HOST?: string; DATABASE_SECRET_MAX_AGE_SECONDS?: number } = {}) =>
  resolveDatabaseSettings({ DATABASE_SECRET_ARN: ARN, DATABASE_SECRET_MAX_AGE_SECONDS: 300, ...more });
const password = async (settings: { password?: pg.ClientConfig['password'] }) =>
  typeof settings.password === 'function' ? settings.password() : settings.password;

beforeEach(() => {
  vi.stubEnv('AWS_REGION', 'us-east-1');
  secretsManager.reset();
  clearCaches();
});

describe('resolveDatabaseSettings (Secrets Manager mocked)', () => {
  const rdsSecret = { username: 'cablecar', password: 's3cret!', host: 'db.cluster-x.us-east-1.rds.amazonaws.com', port: 5432, dbname: 'app', engine: 'postgres' };

  it('connects where an RDS-format secret says, over verified TLS, with the password read at connect time', async () => {
    secretIs(rdsSecret);
    const settings = await fromSecret();
    expect(settings).toEqual({ host: rdsSecret.host, port: 5432, database: 'app', user: 'cablecar', password: expect.any(Function), ssl: { rejectUnauthorized: true } });
    expect(await password(settings)).toBe('s3cret!');
    expect(JSON.stringify(settings)).not.toContain('s3cret!');
  });

  it('takes the host from DATABASE_HOST (an RDS Proxy endpoint) over the secret, and PostgreSQL defaults for what an RDS-managed secret lacks', async () => {
    secretIs({ username: 'master', password: 'pw' });
    const settings = await fromSecret({ DATABASE_HOST: 'cablecar.proxy-abc.us-east-1.rds.amazonaws.com' });
    expect(settings).toMatchObject({ host: 'cablecar.proxy-abc.us-east-1.rds.amazonaws.com', port: 5432, database: 'postgres', user: 'master' });
  });

  it('reads the secret once per container while it is fresh, however many connections are opened', async () => {
    secretIs(rdsSecret);
    const settings = await fromSecret();
    await password(settings);
    await password(settings);
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(1);
  });

  it('uses a rotated password for new connections once the cached one is older than the max age', async () => {
    secretIs(rdsSecret);
    const settings = await fromSecret({ DATABASE_SECRET_MAX_AGE_SECONDS: 0 });
    secretIs({ ...rdsSecret, password: 'rotated' });
    expect(await password(settings)).toBe('rotated');
    expect(secretsManager.commandCalls(GetSecretValueCommand).length).toBeGreaterThanOrEqual(2);
  });

  it('answers unavailable (503, retryable) when Secrets Manager cannot be read', async () => {
    secretsManager.on(GetSecretValueCommand).rejects(Object.assign(new Error('not authorized'), { name: 'AccessDeniedException' }));
    const error = await fromSecret().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CablecarError);
    expect(error).toMatchObject({ code: 'unavailable', httpStatus: 503, retryable: true });
  });

  it.each([
    ['without a password', { username: 'u', host: 'h' }, /password/],
    ['without a host and no DATABASE_HOST', { username: 'u', password: 'leaked?' }, /no host/],
    ['with a port that is not one', { username: 'u', password: 'leaked?', host: 'h', port: 'many' }, /port/],
  ])('refuses a secret %s, naming the field and never the password', async (_label, secret, message) => {
    secretIs(secret);
    const error = (await fromSecret().catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain('leaked?');
  });

  it('uses DATABASE_URL as it is (the local stack), without calling Secrets Manager', async () => {
    const settings = await resolveDatabaseSettings({ DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/cablecar', DATABASE_SECRET_MAX_AGE_SECONDS: 300 });
    expect(settings).toEqual({ connectionString: 'postgres://u:p@127.0.0.1:5432/cablecar' });
    expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(0);
  });

  it('fails clearly when neither is set', async () => {
    await expect(resolveDatabaseSettings({ DATABASE_SECRET_MAX_AGE_SECONDS: 300 })).rejects.toThrow(/DATABASE_SECRET_ARN .*DATABASE_URL/);
  });
});

describe('a pool built from the secret (Secrets Manager mocked, real PostgreSQL)', () => {
  let postgres: TestPostgres;
  beforeAll(async () => {
    postgres = await startPostgres();
  });
  afterAll(async () => {
    await postgres?.stop();
  });

  it('connects with the settings and the password the secret holds', async () => {
    const url = new URL(postgres.url);
    secretIs({ username: decodeURIComponent(url.username), password: decodeURIComponent(url.password), host: url.hostname, port: Number(url.port), dbname: url.pathname.slice(1) });
    const settings = await fromSecret();
    // The embedded PostgreSQL has no TLS; RDS has, and settings ask for it (above).
    const pool = createPool({ ...settings, ssl: false });
    try {
      const { rows } = await pool.query<{ user: string; db: string }>('SELECT current_user AS user, current_database() AS db');
      expect(rows[0]).toEqual({ user: decodeURIComponent(url.username), db: url.pathname.slice(1) });
    } finally {
      await pool.end();
    }
  });
});

describe('the database part of config', () => {
  const base = { TABLE_NAME: 'cablecar-test', WEBSOCKET_API_ENDPOINT: 'https://example.invalid/test' };

  it('takes either DATABASE_URL or DATABASE_SECRET_ARN, and neither for a function that has no database', () => {
    expect(parseConfig({ ...base, DATABASE_URL: 'postgres://127.0.0.1/x' }).DATABASE_URL).toBe('postgres://127.0.0.1/x');
    const withSecret = parseConfig({ ...base, DATABASE_SECRET_ARN: ARN, DATABASE_HOST: '' });
    expect([withSecret.DATABASE_SECRET_ARN, withSecret.DATABASE_HOST]).toEqual([ARN, undefined]);
    const withNone = parseConfig(base);
    expect([withNone.DATABASE_URL, withNone.DATABASE_SECRET_ARN]).toEqual([undefined, undefined]);
  });

  it.each([
    ['both', { DATABASE_URL: 'postgres://127.0.0.1/x', DATABASE_SECRET_ARN: ARN }, /not both/],
    ['an ARN that is not a secret', { DATABASE_SECRET_ARN: 'arn:aws:ssm:us-east-1:1:parameter/x' }, /Secrets Manager/],
  ])('refuses %s', (_label, env, message) => {
    expect(() => parseConfig({ ...base, ...env })).toThrow(message);
  });
});
