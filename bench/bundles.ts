import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';

const ROOT = join(import.meta.dirname, '..');
const run = promisify(execFile);

/**
 * The fanout handler bundled as serverless.yml bundles it (minified, the AWS SDK left to the
 * runtime), for the simulation's containers; written under bench/.build, where the SDK resolves
 * from the project's node_modules as it does from the runtime's on Lambda.
 */
export async function buildFanoutBundle(): Promise<string> {
  const outdir = join(ROOT, 'bench', '.build');
  await mkdir(outdir, { recursive: true });
  const outfile = join(outdir, 'fanout.cjs');
  await build({
    entryPoints: [join(ROOT, 'functions', 'fanout.ts')],
    outfile,
    bundle: true,
    minify: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['@aws-sdk/*', '@smithy/*', 'pg-native'],
    logLevel: 'error',
  });
  return outfile;
}

export interface BundleFigures {
  name: string;
  bytes: number;
  /** Loading the bundle itself, the SDK already loaded. */
  ownMs: number;
  /** Loading the SDK packages it requires (provided by the Lambda runtime). */
  sdkMs: number;
  sdk: string[];
}

/**
 * Packages the prod stage as `sls package` does for a deploy (test/deploy does the same) and
 * measures each function's bundle: its size, and the time a fresh Node process takes to load it
 * (median of 5): the SDK packages it requires (node_modules here, the runtime's on Lambda), then the
 * bundle itself.
 */
export async function benchBundles({ log }: { log: (line: string) => void }): Promise<BundleFigures[]> {
  const work = await mkdtemp(join(tmpdir(), 'cablecar-bench-package-'));
  try {
    log('bundles: sls package --stage prod ...');
    const env = { ...process.env, DATABASE_URL: 'postgres://user:password@db.invalid:5432/cablecar', SLS_TELEMETRY_DISABLED: '1', SLS_NOTIFICATIONS_MODE: 'off' };
    await run(process.execPath, [join(ROOT, 'node_modules', 'serverless', 'bin', 'serverless.js'), 'package', '--stage', 'prod', '--package', join(work, 'package')], {
      cwd: ROOT,
      env,
      maxBuffer: 16 * 1024 * 1024,
    });
    const zips = (await readdir(join(work, 'package'))).filter((file) => file.endsWith('.zip')).sort();
    const figures: BundleFigures[] = [];
    // Unpacked inside the project, so that the SDK resolves from its node_modules.
    const unpacked = join(ROOT, 'bench', '.build', 'package');
    await rm(unpacked, { recursive: true, force: true });
    for (const zip of zips) {
      const name = zip.replace(/\.zip$/, '');
      const dir = join(unpacked, name);
      await mkdir(dir, { recursive: true });
      await run('unzip', ['-q', join(work, 'package', zip), '-d', dir]);
      const { stdout } = await run('find', [dir, '-name', '*.cjs']);
      const bundle = stdout.trim().split('\n')[0]!;
      const { size } = await stat(bundle);
      // The bundle's own load, and the SDK packages it requires (from the runtime on Lambda).
      const code = await readFile(bundle, 'utf8');
      const sdk = [...new Set([...code.matchAll(/require\("((?:@aws-sdk|@smithy)\/[^"]+)"\)/g)].map((match) => match[1]!))];
      const script = [
        `const { createRequire } = require('node:module');`,
        `const load = createRequire(${JSON.stringify(bundle)});`,
        `const t0 = performance.now();`,
        `for (const name of ${JSON.stringify(sdk)}) load(name);`,
        `const t1 = performance.now();`,
        `require(${JSON.stringify(bundle)});`,
        `process.stdout.write(JSON.stringify([t1 - t0, performance.now() - t1]));`,
      ].join('\n');
      const runs: Array<[number, number]> = [];
      for (let i = 0; i < 5; i++) {
        const { stdout: times } = await run(process.execPath, ['-e', script], {
          env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
        });
        runs.push(JSON.parse(times));
      }
      const median = (values: number[]) => values.sort((a, b) => a - b)[2]!;
      const sdkMs = median(runs.map(([sdkLoad]) => sdkLoad));
      const ownMs = median(runs.map(([, own]) => own));
      figures.push({ name, bytes: size, ownMs, sdkMs, sdk });
      log(`bundles:   ${name} ${(size / 1024).toFixed(0)} KB, loads in ${ownMs.toFixed(0)} ms (+ ${sdkMs.toFixed(0)} ms for the SDK)`);
    }
    return figures;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
