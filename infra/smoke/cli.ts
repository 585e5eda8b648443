import { parseArgs } from 'node:util';
import { runSmoke, SMOKE_CHANNEL_PATTERN, type StepReport } from './smokeScenario.js';

/**
 * `npm run smoke -- --ws <url> --http <url> (--token <jwt> | --secret <hs256 secret>) [--timeout <ms>]`
 * Exit status: 0 every step passed, 1 a step failed (the reason is printed), 2 usage.
 */
const USAGE = `usage: npm run smoke -- --ws <wss://…/stage> --http <https://…> (--token <jwt> | --secret <hs256 secret>)
       [--timeout <ms per step, default 10000>] [--audience <aud, default cablecar>] [--issuer <iss>]

Runs the essential scenario against a stage on a new channel smoke-<timestamp>-<random>: connect,
subscribe, publish, receive, reconnect with "after" and replay, history, a tampered token refused
on the WebSocket and on HTTP, a 413. The token (given, or minted with the secret) must allow
subscribe and publish on "${SMOKE_CHANNEL_PATTERN}".`;

function usage(problem?: string): never {
  if (problem) console.error(`smoke: ${problem}\n`);
  console.error(USAGE);
  process.exit(2);
}

let values: Record<string, string | boolean | undefined>;
try {
  ({ values } = parseArgs({
    options: {
      ws: { type: 'string' },
      http: { type: 'string' },
      token: { type: 'string' },
      secret: { type: 'string' },
      timeout: { type: 'string', default: '10000' },
      audience: { type: 'string', default: 'cablecar' },
      issuer: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (error) {
  usage((error as Error).message);
}
if (values.help) usage();
const [ws, http, token, secret] = [values.ws, values.http, values.token, values.secret] as Array<string | undefined>;
if (!ws || !http) usage('--ws and --http are required');
if (!/^wss?:\/\//.test(ws)) usage(`--ws must be a ws:// or wss:// URL, got ${ws}`);
if (!/^https?:\/\//.test(http)) usage(`--http must be an http:// or https:// URL, got ${http}`);
if (Boolean(token) === Boolean(secret)) usage('give exactly one of --token and --secret');
const stepTimeoutMs = Number(values.timeout);
if (!Number.isInteger(stepTimeoutMs) || stepTimeoutMs < 100) usage(`--timeout must be a whole number of milliseconds ≥ 100, got ${values.timeout}`);

const print = ({ step, ok, ms, detail }: StepReport) =>
  console.log(`${ok ? 'ok  ' : 'FAIL'}  ${step.padEnd(34)} ${String(ms).padStart(6)} ms  ${detail}`);

console.log(`cablecar smoke: ${ws} and ${http}, ${stepTimeoutMs} ms per step`);
const started = performance.now();
const reports = await runSmoke(
  { websocketUrl: ws, httpUrl: http, token, secret, audience: values.audience as string, issuer: values.issuer as string | undefined, stepTimeoutMs },
  print,
);
const failed = reports.find((entry) => !entry.ok);
const total = Math.round(performance.now() - started);
if (failed) {
  console.log(`smoke FAILED at "${failed.step}" after ${total} ms: ${failed.detail}`);
  process.exit(1);
}
console.log(`smoke passed: ${reports.length} steps in ${total} ms`);
