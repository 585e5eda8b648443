import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { freeStackPorts } from '../../infra/local/stack.js';

/**
 * `npm start` as a user runs it: prints where everything is and a token that works, keeps history
 * and its token secret across a restart, and Ctrl-C (SIGINT) leaves no process and no port behind.
 */
const ROOT = join(import.meta.dirname, '..', '..');
let dataDir: string;
let running: ChildProcess | undefined;

afterAll(async () => {
  running?.kill('SIGKILL');
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

type Ports = Awaited<ReturnType<typeof freeStackPorts>>;
const allPorts = freeStackPorts;

function spawnStart(ports: Ports, dir = dataDir): ChildProcess {
  // As `npm start` runs it: node with tsx as a loader, so signals reach the stack itself.
  return spawn(process.execPath, ['--import', 'tsx', 'infra/local/start.ts'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...withoutJwtSecret(process.env),
      CABLECAR_DATA_DIR: dir,
      CABLECAR_HTTP_PORT: String(ports.httpPort),
      CABLECAR_WS_PORT: String(ports.websocketPort),
      CABLECAR_LAMBDA_PORT: String(ports.lambdaPort),
      CABLECAR_PG_PORT: String(ports.postgresPort),
      CABLECAR_DYNAMODB_PORT: String(ports.dynamodbPort),
      CABLECAR_HEALTH_PORT: String(ports.healthPort),
      CABLECAR_DEMO_PORT: String(ports.demoPort),
      LOG_LEVEL: 'WARN',
    },
  });
}

/** Runs `npm start` expecting it to refuse: its exit code and output. */
async function refusedStart(ports: Ports, dir: string): Promise<{ code: number | null; output: string }> {
  const child = spawnStart(ports, dir);
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
  return { code, output };
}

async function start(ports: Ports): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawnStart(ports);
  running = child;
  let text = '';
  child.stdout!.on('data', (chunk) => (text += chunk));
  child.stderr!.on('data', (chunk) => (text += chunk));
  const deadline = Date.now() + 120_000;
  while (!text.includes('cablecar is running')) {
    if (child.exitCode !== null) throw new Error(`npm start exited early:\n${text}`);
    if (Date.now() > deadline) throw new Error(`npm start was not ready in time:\n${text}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { child, output: () => text };
}

/** Without CABLECAR_JWT_SECRET, so that the stack generates its secret into the data folder. */
function withoutJwtSecret(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { CABLECAR_JWT_SECRET: _, ...rest } = env;
  return rest;
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function interrupt(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGINT');
  return exited;
}

const portIsClosed = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });

const processesUsing = (text: string) => {
  try {
    return execFileSync('pgrep', ['-f', '--', text], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (error) {
    if ((error as { status?: number }).status === 1) return ''; // pgrep: nothing matches
    throw error;
  }
};

it('prints its URLs, keeps history across a restart, and stops every process on Ctrl-C', async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'cablecar-start-'));
  const ports = await allPorts();
  const httpUrl = `http://127.0.0.1:${ports.httpPort}`;

  const first = await start(ports);
  expect(first.output()).toContain(`HTTP API     ${httpUrl}`);
  expect(first.output()).toContain(`WebSocket    ws://127.0.0.1:${ports.websocketPort}`);
  expect(first.output()).toContain('npm run listen -- room-1');
  expect(first.output()).toContain(`Demo page    http://127.0.0.1:${ports.demoPort}/?channel=room-1`);
  const page = await fetch(`http://127.0.0.1:${ports.demoPort}/?channel=room-1`);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain('cablecar <small>live demo</small>');
  expect(first.output()).toContain(`-H "Authorization: Bearer $TOKEN"`);
  const token = /export TOKEN=(\S+)/.exec(first.output())?.[1];
  expect(token, 'the banner prints a token').toBeDefined();
  const post = (headers: Record<string, string>) =>
    fetch(`${httpUrl}/channels/kept/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: '{"data":"survives a restart"}',
    });
  expect((await post({})).status).toBe(401);
  expect((await post(bearer(token!))).status).toBe(202);
  // The generated secret is the owner's alone.
  expect((await stat(join(dataDir, 'jwt-secret'))).mode & 0o777).toBe(0o600);

  const expectNothingLeft = async () => {
    for (const port of Object.values(ports)) expect(await portIsClosed(port), `port ${port} is closed`).toBe(true);
    expect(processesUsing(dataDir), 'processes left behind').toBe('');
    expect(processesUsing(`--httpPort ${ports.httpPort}`), 'serverless-offline left behind').toBe('');
  };
  expect(await interrupt(first.child)).toBe(0);
  expect(first.output()).toContain('cablecar: stopped');
  await expectNothingLeft();

  const second = await start(ports);
  // The first run's token still works: the secret was kept.
  const history = (await (await fetch(`${httpUrl}/channels/kept/messages`, { headers: bearer(token!) })).json()) as {
    messages: Array<{ data: unknown }>;
  };
  expect(history.messages.map((m) => m.data)).toEqual(['survives a restart']);
  expect(await interrupt(second.child)).toBe(0);
  await expectNothingLeft();
  // Two cold starts of the whole stack (each allowed 120 s by start()) and two stops: the
  // integration default of 60 s is one start's worth on a busy machine.
}, 240_000);

it('refuses a second start on the same data folder and a port in use before its banner, answers /health, survives an invalid UTF-8 frame, and stops with exit 1 when serverless-offline keeps dying', async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'cablecar-start-'));
  const ports = await allPorts();
  const first = await start(ports);
  const token = /export TOKEN=(\S+)/.exec(first.output())![1]!;

  const health = await fetch(`http://127.0.0.1:${ports.healthPort}/health`);
  expect(health.status).toBe(200);
  const parts = ((await health.json()) as { parts: Record<string, { up: boolean; pid?: number }> }).parts;
  expect(Object.fromEntries(Object.entries(parts).map(([name, part]) => [name, part.up]))).toEqual({ postgres: true, dynamodb: true, offline: true, bridge: true });

  const again = await refusedStart(await allPorts(), dataDir);
  expect(again.code).toBe(1);
  expect(again.output).toMatch(/another cablecar stack \(pid \d+\) is using the data folder/);
  expect(again.output).not.toContain('cablecar is running');

  const otherDir = await mkdtemp(join(tmpdir(), 'cablecar-start-'));
  try {
    const taken = await refusedStart({ ...(await allPorts()), httpPort: ports.httpPort }, otherDir);
    expect(taken.code).toBe(1);
    expect(taken.output).toContain(`port ${ports.httpPort} (http) is in use; set CABLECAR_HTTP_PORT to move it`);
    expect(taken.output).not.toContain('cablecar is running');
    const pgTaken = await refusedStart({ ...(await allPorts()), postgresPort: ports.postgresPort }, otherDir);
    expect(pgTaken.output).toContain(`port ${ports.postgresPort} (postgres) is in use; set CABLECAR_PG_PORT to move it`);
    // The demo page starts after the stack, but its port is checked with the others, before anything starts.
    const demoTaken = await refusedStart({ ...(await allPorts()), demoPort: ports.demoPort }, otherDir);
    expect(demoTaken.output).toContain(`port ${ports.demoPort} (demo) is in use; set CABLECAR_DEMO_PORT to move it`);
    expect(demoTaken.output).not.toContain('[offline]');
  } finally {
    await rm(otherDir, { recursive: true, force: true });
  }

  // One text frame of invalid UTF-8: that socket is closed (1007), serverless-offline keeps running.
  const socket = new WebSocket(`ws://127.0.0.1:${ports.websocketPort}?token=${token}`);
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  const closed = new Promise<number>((resolve) => socket.once('close', resolve));
  socket.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
  expect(await closed).toBe(1007);
  const published = await fetch(`http://127.0.0.1:${ports.httpPort}/channels/after-bad-frame/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...bearer(token) },
    body: '{"data":1}',
  });
  expect(published.status).toBe(202);

  // serverless-offline killed: restarted with a log line; killed too often: the stack stops, exit 1.
  const offlinePid = async () => ((await (await fetch(`http://127.0.0.1:${ports.healthPort}/health`)).json()) as any).parts.offline.pid as number;
  const exited = new Promise<number | null>((resolve) => first.child.once('exit', (code) => resolve(code)));
  for (let kill = 1; kill <= 4; kill++) {
    process.kill(await offlinePid(), 'SIGKILL');
    if (kill === 1) {
      const deadline = Date.now() + 10_000;
      while (!first.output().includes('serverless-offline was killed by SIGKILL; restarting it') && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(first.output()).toContain('[stack] serverless-offline was killed by SIGKILL; restarting it');
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  expect(await exited).toBe(1);
  expect(first.output()).toContain('cablecar: stopped, serverless-offline was killed by SIGKILL, the 4th time within 60 s');
  for (const port of Object.values(ports)) expect(await portIsClosed(port), `port ${port} is closed`).toBe(true);
  expect(processesUsing(dataDir), 'processes left behind').toBe('');
  // One start-up, three refused starts and four serverless-offline restarts.
}, 150_000);
