import pg from 'pg';
import { databaseUnavailable } from '../protocol/errors.js';
import { logger } from '../logger.js';
import type { DatabaseSettings } from './databaseSettings.js';

export interface DatabaseOptions extends DatabaseSettings {
  max?: number;
  connectTimeoutMs?: number;
}

/** A small pool: each Lambda container serves one request at a time. */
export function createPool({ max = 2, connectTimeoutMs = 3000, ...settings }: DatabaseOptions): pg.Pool {
  const pool = new pg.Pool({ ...settings, max, connectionTimeoutMillis: connectTimeoutMs, idleTimeoutMillis: 30_000 });
  // An idle client whose server went away emits here; without a listener the process would crash.
  // (The error object holds the whole client; its message and SQLSTATE say all that matters.)
  pool.on('error', (error) =>
    logger.warn('idle PostgreSQL client failed', { reason: error.message, code: (error as { code?: string }).code }),
  );
  // A client whose backend is terminated while it is checked out, or as it is being released,
  // emits 'error' when nobody listens (the pool listens only to idle clients): an unheard 'error'
  // ends the process, the whole Lambda container (all of serverless-offline locally). The query in
  // flight fails on its own and says why, so every client gets a listener for its whole life.
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

/**
 * SQLSTATE classes and socket errors that mean "the database cannot be reached", not "bad request".
 * 53300 is "too many connections" (max_connections reached, as a burst of Lambda containers can do).
 */
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', '53300']);

export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: string }).code;
  if (code && (UNAVAILABLE_CODES.has(code) || code.startsWith('08') || code.startsWith('57P'))) return true;
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
    error.message,
  );
}

/** Runs a query function, turning "database unreachable" into the retryable 503 error. */
export async function withDatabase<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isDatabaseUnavailable(error)) throw databaseUnavailable(error);
    throw error;
  }
}
