import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SignJWT } from 'jose';

/**
 * The local stack's token secret and the tokens signed with it: what a backend does on AWS with
 * the secret in Secrets Manager (README, "Who may do what"), here for `npm start`, `npm run token`,
 * `npm run listen` and the tests.
 */

/** Where the generated secret is kept, so that tokens stay valid across restarts of `npm start`. */
export const jwtSecretFile = (dataDir: string) => join(dataDir, 'jwt-secret');

/**
 * CABLECAR_JWT_SECRET when given, else the secret in the data folder, generated (32 random bytes,
 * base64url) on first use and readable by its owner only.
 */
export async function loadOrCreateJwtSecret(dataDir: string, fromEnvironment = process.env.CABLECAR_JWT_SECRET): Promise<string> {
  if (fromEnvironment) {
    if (fromEnvironment.length < 32) throw new Error('CABLECAR_JWT_SECRET must be at least 32 characters');
    return fromEnvironment;
  }
  const file = jwtSecretFile(dataDir);
  try {
    const kept = (await readFile(file, 'utf8')).trim();
    if (kept.length >= 32) return kept;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  await writeFile(file, `${secret}\n`, { mode: 0o600 });
  await chmod(file, 0o600); // writeFile's mode applies only when it creates the file
  return secret;
}

/**
 * The secret of a running (or earlier) `npm start`, for the commands that mint tokens beside it:
 * CABLECAR_JWT_SECRET, else the data folder's. Never creates one (the stack would not know it).
 */
export async function readJwtSecret(dataDir: string, fromEnvironment = process.env.CABLECAR_JWT_SECRET): Promise<string> {
  if (fromEnvironment) return fromEnvironment;
  try {
    return (await readFile(jwtSecretFile(dataDir), 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    throw new Error(
      `no token secret in ${jwtSecretFile(dataDir)}: start the stack once (npm start), or set CABLECAR_JWT_SECRET or CABLECAR_DATA_DIR as it has them`,
    );
  }
}

/** The data folder the local commands share (`npm start`, `npm run token`, `npm run listen`). */
export const localDataDir = () => process.env.CABLECAR_DATA_DIR ?? '.cablecar';

export interface DevTokenClaims {
  /** Who holds it; default `dev`. */
  sub?: string;
  /** Channel patterns it may subscribe to / read the history of; default `["*"]`. */
  subscribe?: string[];
  /** Channel patterns it may publish to; default `["*"]`. */
  publish?: string[];
  /** Seconds until it expires; default 3600. Negative makes an expired token. */
  ttlSeconds?: number;
  /** Default `cablecar`. */
  audience?: string;
  issuer?: string;
}

/** An HS256 token signed with `secret` (defaults: full access for an hour). */
export async function mintDevToken(secret: string, claims: DevTokenClaims = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const token = new SignJWT({ subscribe: claims.subscribe ?? ['*'], publish: claims.publish ?? ['*'] })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.sub ?? 'dev')
    .setAudience(claims.audience ?? 'cablecar')
    .setIssuedAt(now)
    .setExpirationTime(now + (claims.ttlSeconds ?? 3600));
  if (claims.issuer) token.setIssuer(claims.issuer);
  return token.sign(new TextEncoder().encode(secret));
}

/** `1h`, `30m`, `45s`, `2d` or a number of seconds. */
export function parseTtl(text: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(text.trim());
  if (!match) throw new Error(`--ttl must look like 3600, 90s, 30m, 1h or 2d, not "${text}"`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2] as '' | 's' | 'm' | 'h' | 'd'];
  const seconds = Number(match[1]) * unit;
  if (seconds <= 0) throw new Error('--ttl must be positive');
  return seconds;
}
