import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../../infra/local/stack.js';
import { startTestStack, type TestStack } from '../support/localStack.js';

/**
 * `npm run smoke`, the command a team runs against a deployed stage, run here as that command
 * (a child process) against the real local stack: it passes when everything works, and fails at
 * the right step with a reason when a part is down.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const STEPS = [
  'connect',
  'subscribe',
  'publish 3 messages',
  'receive in order',
  'disconnect',
  'publish 2 while away',
  'reconnect, replay after 3',
  'history',
  'bad token refused (WebSocket)',
  'bad token refused (HTTP)',
  'oversize publish refused',
];

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  await stack?.stop();
});

function smoke(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', 'smoke', '--', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

// As the README writes it: the generated secret is hex, so it never starts with '-' (which the
// argument parser would take for an option).
const stageArgs = () => ['--ws', stack.websocketUrl, '--http', stack.httpUrl, '--secret', stack.jwtSecret];

it('passes against the local stack, printing every step with its timing', async () => {
  const { code, stdout, stderr } = await smoke(stageArgs());
  expect(code, `${stdout}\n${stderr}`).toBe(0);
  const lines = stdout.trim().split('\n');
  for (const step of STEPS) expect(lines.some((line) => new RegExp(`^ok +${step.replace(/[(),]/g, '\\$&')} +\\d+ ms`).test(line)), step).toBe(true);
  expect(lines.at(-1)).toMatch(new RegExp(`^smoke passed: ${STEPS.length} steps in \\d+ ms$`));
  // 4 and 5 replayed; a fan-out of 4 or 5 still in flight may also post it live beside the replay
  // (at least once: the smoke step accepts that and says so).
  expect(stdout).toMatch(/replayed (4, 5|[45](, [45]){2,} \(a live fan-out overlapped the replay: clients drop the duplicate\)), then subscribed at 5/);
});

it('fails at subscribe, saying why, while PostgreSQL is down', async () => {
  await stack.stopDatabase();
  try {
    const { code, stdout } = await smoke(stageArgs());
    expect(code, stdout).toBe(1);
    expect(stdout).toMatch(/^ok +connect /m);
    expect(stdout).toMatch(/^FAIL +subscribe +\d+ ms +the server answered error unavailable/m);
    expect(stdout).toMatch(/^smoke FAILED at "subscribe"/m);
    expect(stdout).not.toMatch(/^ok +publish/m);
  } finally {
    await stack.startDatabase();
  }
});

it('fails at connect when the WebSocket API does not answer', async () => {
  const closedPort = await freePort();
  const { code, stdout } = await smoke(['--ws', `ws://127.0.0.1:${closedPort}`, '--http', stack.httpUrl, `--secret=${stack.jwtSecret}`]);
  expect(code, stdout).toBe(1);
  expect(stdout).toMatch(/^FAIL +connect +\d+ ms +cannot open the WebSocket: .*ECONNREFUSED/m);
});

it('fails at the first publish when the HTTP API does not answer', async () => {
  const closedPort = await freePort();
  const { code, stdout } = await smoke(['--ws', stack.websocketUrl, '--http', `http://127.0.0.1:${closedPort}`, `--secret=${stack.jwtSecret}`]);
  expect(code, stdout).toBe(1);
  expect(stdout).toMatch(/^FAIL +publish 3 messages +\d+ ms +POST http:\/\/127\.0\.0\.1:\d+\/channels\/smoke-[\w-]+\/messages failed: .*ECONNREFUSED/m);
});

it('fails at the step that hangs, after the per-step timeout', async () => {
  // A server that accepts the connection and never answers: the step must end at --timeout.
  const { createServer } = await import('node:net');
  const silent = createServer(() => {});
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const { port } = silent.address() as { port: number };
  try {
    const { code, stdout } = await smoke(['--ws', `ws://127.0.0.1:${port}`, '--http', stack.httpUrl, `--secret=${stack.jwtSecret}`, '--timeout', '500']);
    expect(code, stdout).toBe(1);
    expect(stdout).toMatch(/^FAIL +connect +\d+ ms +(no answer within 500 ms|the WebSocket did not open in time)/m);
  } finally {
    silent.close();
  }
});

it('explains its usage and exits 2 when the stage is not given', async () => {
  const { code, stderr } = await smoke(['--ws', stack.websocketUrl]);
  expect(code).toBe(2);
  expect(stderr).toContain('--ws and --http are required');
  expect(stderr).toContain('usage: npm run smoke');
});
