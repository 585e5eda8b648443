import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

/** The budget for the client package: minified and gzipped. */
export const CLIENT_GZIP_BUDGET_BYTES = 6 * 1024;

/** Bundles the client as `npm run build:client` does (in memory) and measures it. */
export async function measureClient(): Promise<{ code: string; minifiedBytes: number; gzippedBytes: number }> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL('../client/src/index.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    minify: true,
    target: 'es2020',
    write: false,
    logLevel: 'silent',
  });
  const bytes = result.outputFiles[0]!.contents;
  return { code: new TextDecoder().decode(bytes), minifiedBytes: bytes.length, gzippedBytes: gzipSync(bytes, { level: 9 }).length };
}

/** One line for `npm run bench`. */
export async function printClientSize(): Promise<void> {
  const { minifiedBytes, gzippedBytes } = await measureClient();
  console.log(
    `${'client bundle (@cablecar/client)'.padEnd(34)} ${minifiedBytes} B minified, ${gzippedBytes} B gzipped (budget ${CLIENT_GZIP_BUDGET_BYTES} B)`,
  );
}
