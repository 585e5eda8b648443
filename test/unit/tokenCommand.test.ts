import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateJwtSecret, parseTtl } from '../../infra/local/devTokens.js';
import { createTokenVerifier } from '../../functions/lib/tokens/tokenVerifier.js';
import { stat } from 'node:fs/promises';

/**
 * `npm run token` as a user runs it beside the local stack (same data folder), and the secret the
 * stack keeps there. The token it prints is checked with the verifier the functions use.
 */
const ROOT = join(import.meta.dirname, '..', '..');
let dataDir: string;
let secret: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'cablecar-token-'));
  secret = await loadOrCreateJwtSecret(dataDir, undefined);
});
afterAll(async () => {
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

async function tokenCommand(args: string[], env: NodeJS.ProcessEnv = {}) {
  const { CABLECAR_JWT_SECRET: _, ...inherited } = process.env;
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'infra/local/token.ts', ...args], {
      cwd: ROOT,
      env: { ...inherited, CABLECAR_DATA_DIR: dataDir, ...env },
    });
    return { code: 0, stdout: stdout.trim(), stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout.trim(), stderr: failed.stderr };
  }
}

describe('the local token secret', () => {
  it('is generated once, readable by its owner only, and kept', async () => {
    expect(secret.length).toBeGreaterThanOrEqual(32);
    expect((await stat(join(dataDir, 'jwt-secret'))).mode & 0o777).toBe(0o600);
    expect(await loadOrCreateJwtSecret(dataDir, undefined)).toBe(secret);
  });

  it('is CABLECAR_JWT_SECRET when that is set, and refuses a short one', async () => {
    expect(await loadOrCreateJwtSecret(dataDir, 'e'.repeat(40))).toBe('e'.repeat(40));
    await expect(loadOrCreateJwtSecret(dataDir, 'short')).rejects.toThrow(/at least 32/);
  });
});

// Each case starts node with tsx (about a second, more on a busy machine).
describe('npm run token', { timeout: 30_000 }, () => {
  it('prints only a token, signed with the data folder\'s secret, granting what it was asked for', async () => {
    const run = await tokenCommand(['--sub', 'alice', '--subscribe', 'room-*', '--subscribe', 'user:alice,lobby', '--publish', 'room-*', '--ttl', '30m']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const claims = await createTokenVerifier({ keys: { kind: 'secret', secret: async () => secret }, audience: 'cablecar' })(run.stdout);
    expect(claims).toMatchObject({ sub: 'alice', subscribe: ['room-*', 'user:alice', 'lobby'], publish: ['room-*'] });
    expect(claims.exp - Math.floor(Date.now() / 1000)).toBeGreaterThan(29 * 60);
    expect(claims.exp - Math.floor(Date.now() / 1000)).toBeLessThanOrEqual(30 * 60);
  });

  it('refuses what is not a pattern or a duration (exit 2), and a missing secret (exit 1), printing no token', async () => {
    const [missing, ...refused] = await Promise.all([
      tokenCommand(['--sub', 'x'], { CABLECAR_DATA_DIR: join(dataDir, 'nothing-here') }),
      ...[['--subscribe', 'room/*'], ['--ttl', '1x'], ['--unknown']].map((args) => tokenCommand(args)),
    ]);
    for (const run of refused) {
      expect({ code: run.code, stdout: run.stdout }).toEqual({ code: 2, stdout: '' });
      expect(run.stderr).toContain('Usage: npm run token');
    }
    expect({ code: missing.code, stdout: missing.stdout }).toEqual({ code: 1, stdout: '' });
    expect(missing.stderr).toContain('no token secret');
  });

  it('reads durations as seconds, s, m, h or d', () => {
    expect([parseTtl('90'), parseTtl('90s'), parseTtl('30m'), parseTtl('1h'), parseTtl('2d')]).toEqual([90, 90, 1800, 3600, 172800]);
    for (const bad of ['', '0', '1.5h', '-1h', 'h']) expect(() => parseTtl(bad)).toThrow();
  });
});
