import { afterEach, describe, expect, it, vi } from 'vitest';

/** The token settings a function reads from its environment (functions/lib/config.ts). */
afterEach(() => {
  vi.unstubAllEnvs();
  vi.resetModules();
});

async function tokenConfigWith(env: Record<string, string | undefined>) {
  for (const name of ['JWT_AUDIENCE', 'JWT_ISSUER', 'JWKS_URL', 'JWT_SECRET_ARN', 'CABLECAR_JWT_SECRET', 'JWT_SECRET_CACHE_SECONDS']) {
    vi.stubEnv(name, env[name]);
  }
  const { tokenConfig } = await import('../../functions/lib/config.js'); // fresh: the config is cached per module
  return tokenConfig();
}

describe('tokenConfig', () => {
  it('needs one key source, and nothing else of the functions\' settings', async () => {
    vi.stubEnv('DATABASE_URL', undefined);
    vi.stubEnv('TABLE_NAME', undefined);
    await expect(tokenConfigWith({})).rejects.toThrow(/no token key/);
    expect(await tokenConfigWith({ JWT_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:1:secret:x' })).toMatchObject({
      JWT_AUDIENCE: 'cablecar',
      JWT_SECRET_CACHE_SECONDS: 300,
    });
  });

  it('reads a stage parameter left empty (\'\') as unset', async () => {
    const config = await tokenConfigWith({ JWT_SECRET_ARN: '', JWKS_URL: '', JWT_ISSUER: '', CABLECAR_JWT_SECRET: 's'.repeat(32) });
    expect(config).toMatchObject({ JWT_SECRET_ARN: undefined, JWKS_URL: undefined, JWT_ISSUER: undefined });
  });

  it('wants an issuer with a JWKS URL, an http(s) URL, and a local secret of 32 characters or more', async () => {
    await expect(tokenConfigWith({ JWKS_URL: 'https://idp.example/jwks.json' })).rejects.toThrow(/JWKS_URL needs JWT_ISSUER/);
    await expect(tokenConfigWith({ JWKS_URL: 'file:///etc/jwks.json', JWT_ISSUER: 'x' })).rejects.toThrow(/JWKS_URL/);
    await expect(tokenConfigWith({ CABLECAR_JWT_SECRET: 'too-short' })).rejects.toThrow(/at least 32/);
    expect(await tokenConfigWith({ JWKS_URL: 'https://idp.example/jwks.json', JWT_ISSUER: 'https://idp.example/', JWT_AUDIENCE: 'app' })).toMatchObject({
      JWT_AUDIENCE: 'app',
    });
  });
});
