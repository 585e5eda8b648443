import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { CLIENT_GZIP_BUDGET_BYTES, measureClient } from '../../bench/clientSize.js';

/** What the package promises about itself: no runtime dependencies, one ES module, within budget. */
describe('the @cablecar/client package', () => {
  it('declares ESM, types and no dependencies', async () => {
    const manifest = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
    expect(manifest.name).toBe('@cablecar/client');
    expect(manifest.type).toBe('module');
    expect(manifest.exports['.']).toEqual({ types: './dist/index.d.ts', import: './dist/cablecar.js' });
    expect(manifest.dependencies ?? {}).toEqual({});
    expect(manifest.peerDependencies ?? {}).toEqual({});
  });

  it(`bundles into one self-contained module of at most ${CLIENT_GZIP_BUDGET_BYTES} bytes gzipped`, async () => {
    const { code, gzippedBytes } = await measureClient();
    expect(code).not.toMatch(/\bimport\s*[{*\w]|\brequire\(|\bimport\(/);
    expect(code).toMatch(/export\s*\{[^}]*createClient/);
    expect(gzippedBytes).toBeLessThanOrEqual(CLIENT_GZIP_BUDGET_BYTES);
  });
});
