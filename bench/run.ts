import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchBundles, type BundleFigures } from './bundles.js';
import { CLIENT_GZIP_BUDGET_BYTES, measureClient } from './clientSize.js';
import { costPerMillion } from './cost.js';
import { benchEngines, type EngineFigures } from './engines.js';
import { benchLocalStack, type LocalStackFigures } from './localStack.js';
import { benchSimulation, SIMULATED_MEMORY_GB, type SimulationFigures } from './simulation.js';

/**
 * `npm run bench [-- --quick] [-- --only engines,simulation,bundles,local]`: the figures of the
 * delivery path on this machine, as one Markdown report printed at the end and written to
 * bench/results/<date>.md; progress goes to stderr while it runs. Timing goals live here, not in
 * the tests (docs/performance.md, "Fan-out at scale").
 */
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
  },
});
const quick = values.quick;
const sections = new Set((values.only ?? 'engines,simulation,bundles,local').split(','));
const startedAt = new Date();
const log = (line: string) => process.stderr.write(`[${((Date.now() - startedAt.getTime()) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);

const table = (header: string[], rows: Array<Array<string | number>>) =>
  [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');
const n = (value: number, digits = 0) => (Number.isFinite(value) ? value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '–');

const report: string[] = [
  `# cablecar bench, ${startedAt.toISOString()}${quick ? ' (--quick)' : ''}`,
  '',
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, load average at start ${loadavg().map((l) => l.toFixed(1)).join(' / ')}, Node ${process.version}.`,
  'The machine is shared: compare figures within one run, not across runs.',
];

let engines: EngineFigures[] | undefined;
let simulation: SimulationFigures[] | undefined;
let bundles: BundleFigures[] | undefined;
let local: LocalStackFigures[] | undefined;

async function section(name: string, body: () => Promise<void>) {
  if (!sections.has(name)) return;
  try {
    await body();
  } catch (error) {
    log(`${name} failed: ${(error as Error).stack ?? error}`);
    report.push('', `## ${name}: failed`, '', '```', String((error as Error).message ?? error), '```');
  }
}

await section('engines', async () => {
  engines = await benchEngines({ posts: quick ? 5_000 : 20_000, log });
  const engine = engines.find((e) => e.name.startsWith('delivery engine'))!;
  const sdk = engines.find((e) => e.name.startsWith('plain SDK'))!;
  report.push(
    '',
    '## Delivery engine: one signed PostToConnection, loopback stub in another process',
    '',
    table(
      ['client', 'deliveries/s', 'CPU µs per delivery', 'CPU vs SDK client'],
      engines.map((e) => [e.name, n(e.perSecond), n(e.cpuMicros, 1), `${n(e.cpuMicros / sdk.cpuMicros, 2)}×`]),
    ),
    '',
    `Goal ≤ 60 µs per signed delivery: ${engine.cpuMicros <= 60 ? 'met' : 'not met'} (${n(engine.cpuMicros, 1)} µs; ${n(sdk.cpuMicros / engine.cpuMicros, 1)}× less CPU than the SDK client).`,
  );
});

await section('simulation', async () => {
  simulation = await benchSimulation({ sizes: quick ? [1_000, 10_000] : [1_000, 10_000, 100_000], log });
  report.push(
    '',
    '## Fan-out simulation: stub gateway with 30 ms latency and a 10,000/s token bucket (burst 5,000), real handler in parallel containers, dynalite',
    '',
    table(
      ['subscribers', 'invocations', 'time to last delivery', 'posts/s', '429s', 'lost', 'duplicated', `billed GB-s (${SIMULATED_MEMORY_GB * 1024} MB)`, 'fan-out CPU µs per delivery'],
      simulation.map((s) => [
        n(s.subscribers),
        s.shards,
        `${n(s.lastDeliveryS, 2)} s`,
        n(s.postsPerSecond),
        n(s.throttled),
        n(s.lost),
        n(s.duplicated),
        n(s.billedGbSeconds, 1),
        n(s.cpuMicrosPerDelivery, 0),
      ]),
    ),
    '',
    'CPU per delivery counts the containers and dynalite (this process), not the stub gateway. Where time to last delivery is far above subscribers ÷ 10,000/s, this machine ran out of CPU: delivered per second ≈ available CPU ÷ CPU per delivery.',
  );
});

await section('bundles', async () => {
  bundles = await benchBundles({ log });
  report.push(
    '',
    '## Functions: bundle size (minified, `sls package --stage prod`) and module load (fresh Node, median of 5)',
    '',
    table(
      ['function', 'bundle KB', 'load ms (bundle)', 'load ms (SDK packages it requires)', 'SDK packages'],
      bundles.map((b) => [b.name, n(b.bytes / 1024), n(b.ownMs), n(b.sdkMs), b.sdk.join(', ') || '–']),
    ),
    '',
    'Goals: ≤ 200 KB and ≤ 50 ms each. The AWS SDK is provided by the Lambda runtime and not bundled: its load is shown apart (from node_modules here).',
  );
});

await section('local', async () => {
  local = await benchLocalStack({ sizes: [100, 1_000], rate: 20, seconds: quick ? 2 : 5, log });
  report.push(
    '',
    '## Local stack end to end (serverless-offline, embedded PostgreSQL, dynalite, dispatch bridge), 20 messages/s on one channel',
    '',
    table(
      ['subscribers', 'messages', 'frames arrived', 'p50 publish → receive', 'p99 publish → receive', 'deliveries/s', 'still arriving after the last publish'],
      local.map((l) => [n(l.subscribers), n(l.messages), `${n(l.delivered)} of ${n(l.expected)}`, `${n(l.p50Ms)} ms`, `${n(l.p99Ms)} ms`, n(l.deliveriesPerSecond), `${n(l.drainS, 1)} s`]),
    ),
  );
});

{
  const biggest = simulation?.at(-1);
  const engine = engines?.find((e) => e.name.startsWith('delivery engine'));
  const cost = costPerMillion({ gbSecondsPerDelivery: biggest ? biggest.billedGbSeconds / biggest.subscribers : undefined, cpuMicros: engine?.cpuMicros });
  report.push('', '## Cost per million deliveries on AWS (us-east-1 list prices, arm64)', '', table(['item', 'quantity', 'USD'], cost.rows), '', ...cost.notes);
}

{
  const client = await measureClient();
  report.push('', '## The client package (@cablecar/client)', '', `${client.minifiedBytes} B minified, ${client.gzippedBytes} B minified and gzipped (budget ${CLIENT_GZIP_BUDGET_BYTES} B)`);
}

const text = `${report.join('\n')}\n`;
const dir = join(import.meta.dirname, 'results');
await mkdir(dir, { recursive: true });
const file = join(dir, `${startedAt.toISOString().replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.md`);
await writeFile(file, text);
process.stdout.write(`\n${text}\nwritten to ${file}\n`);
process.exit(0);
