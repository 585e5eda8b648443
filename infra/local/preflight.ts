import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';

/**
 * Checks made before the local stack starts anything, so that it fails with one clear line
 * instead of half-starting (a banner followed by EADDRINUSE, or PostgreSQL refusing a locked folder).
 */
export class StackPreflightError extends Error {}

export interface PortClaim {
  port: number;
  /** What the port is for: http, websocket, lambda, postgres, dynamodb, health. */
  what: string;
  /** The variable that moves it, if there is one. */
  variable?: string | undefined;
}

function tryListen(port: number): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(undefined)));
  });
}

export async function assertPortsFree(claims: readonly PortClaim[]): Promise<void> {
  const seen = new Map<number, PortClaim>();
  for (const claim of claims) {
    const other = seen.get(claim.port);
    if (other) throw new StackPreflightError(`port ${claim.port} is given to both ${other.what} and ${claim.what}${hint(claim)}`);
    seen.set(claim.port, claim);
    const error = await tryListen(claim.port);
    if (error) {
      const why = error.code === 'EADDRINUSE' ? 'is in use' : `cannot be used (${error.code ?? error.message})`;
      throw new StackPreflightError(`port ${claim.port} (${claim.what}) ${why}${hint(claim)}`);
    }
  }
}

const hint = (claim: PortClaim) => (claim.variable ? `; set ${claim.variable} to move it` : '');

const LOCK_FILE = 'cablecar.lock';

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One stack per data folder: a lock file holding the owner's pid, created exclusively. A lock left
 * by a process that is gone (killed with -9) is taken over. Returns the release.
 */
export async function acquireDataDirLock(dataDir: string): Promise<() => Promise<void>> {
  await mkdir(dataDir, { recursive: true });
  const path = join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx' });
      return async () => {
        // Only our own lock: a stale-lock takeover by someone else must not be undone.
        const owner = await readFile(path, 'utf8').catch(() => '');
        if (Number(owner.trim()) === process.pid) await rm(path, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (owner && owner !== process.pid && isRunning(owner)) {
      throw new StackPreflightError(
        `another cablecar stack (pid ${owner}) is using the data folder ${dataDir}; stop it, or set CABLECAR_DATA_DIR to another folder`,
      );
    }
    await rm(path, { force: true });
  }
  throw new StackPreflightError(`could not lock the data folder ${dataDir} (${path})`);
}
