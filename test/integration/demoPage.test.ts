import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemoServer, type DemoServer } from '../../infra/local/demo/demoServer.js';
import { freeStackPorts, startLocalStack, type LocalStack } from '../../infra/local/stack.js';
import { publish } from '../support/localStack.js';
import { SocketClient } from '../support/socketClient.js';

/**
 * The live demo page in a real browser (Debian's chromium, driven by playwright-core) against the
 * real local stack, composed as `npm start` composes it: the stack, then the demo server. The stack
 * is restarted on the same ports and data folder while the page stays open.
 */
const CHANNEL = 'demo-room';
let dataDir: string;
let ports: Omit<Awaited<ReturnType<typeof freeStackPorts>>, 'demoPort'>;
let demoPort: number;
let stack: LocalStack | undefined;
let demo: DemoServer | undefined;
let browser: Browser;
let page: Page;
const subscribers: SocketClient[] = [];
const logLines: string[] = [];

const startStack = async () => {
  stack = await startLocalStack({ dataDir, ...ports, logLevel: 'WARN', log: (source, line) => logLines.push(`[${source}] ${line}`) });
  return stack;
};
const startDemo = async () => {
  // As npm start does: the page's dev tokens are signed by the stack (the same secret across a restart).
  demo = await startDemoServer({
    port: demoPort,
    httpUrl: stack!.httpUrl,
    websocketUrl: stack!.websocketUrl,
    mintToken: (claims) => stack!.mintToken(claims),
  });
  return demo;
};

/** The seqs the page shows, in the order of its table (newest first), with their data. */
const shown = () =>
  page.$$eval('#messages tr[data-seq]', (rows) =>
    rows.map((row) => ({ seq: Number(row.getAttribute('data-seq')), data: JSON.parse(row.querySelector('td.data')!.textContent!) })),
  );
const waitForSeq = (seq: number, timeout = 15_000) => page.waitForSelector(`#messages tr[data-seq="${seq}"]`, { timeout });
const waitForState = (state: string, timeout = 15_000) => page.waitForSelector(`#state[data-state="${state}"]`, { timeout });

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'cablecar-demo-'));
  ({ demoPort, ...ports } = await freeStackPorts());
  try {
    await startStack();
    await startDemo();
  } catch (error) {
    console.error(logLines.slice(-50).join('\n'));
    throw error;
  }
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'],
  });
  page = await browser.newPage();
  await page.goto(`${demo!.url}?channel=${CHANNEL}&after=0`);
  await waitForState('open');
});
afterAll(async () => {
  await Promise.all(subscribers.map((s) => s.close()));
  await browser?.close();
  await demo?.stop();
  await stack?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('the live demo page in Chromium', () => {
  it('shows a message published over HTTP, with its seq, latency and the connection state', async () => {
    const { status, body } = await publish(stack!, CHANNEL, { text: 'hello from curl' });
    expect(status).toBe(202);
    await waitForSeq(body.seq);
    expect(await shown()).toEqual([{ seq: 1, data: { text: 'hello from curl' } }]);
    expect(await page.textContent(`#messages tr[data-seq="1"] td.latency`)).toMatch(/^\d+ ms$/);
    expect(await page.textContent('#state')).toBe('open');
    expect(await page.textContent('#channel-name')).toBe(CHANNEL);
  });

  it('publishes from its form with a dev token, and a ws subscriber receives it', async () => {
    const subscriber = await SocketClient.connect(stack!.websocketUrl, { token: await stack!.mintToken({ subscribe: [CHANNEL] }) });
    subscribers.push(subscriber);
    await subscriber.subscribe(CHANNEL);

    await page.fill('#text', 'typed in the page');
    await page.click('#publish button');

    await subscriber.waitUntil((frames) => frames.some((f) => f.type === 'message' && f.data?.text === 'typed in the page'), 'the page\'s message');
    expect(subscriber.messages(CHANNEL).map((m) => [m.seq, m.data])).toEqual([[2, { text: 'typed in the page', from: 'demo page' }]]);
    await waitForSeq(2);
    expect(await page.textContent('#log')).toMatch(/published seq 2/);
  });

  it('dev tokens are for one valid channel only', async () => {
    const refused = await fetch(`${demo!.url}dev-token?channel=${encodeURIComponent('bad#name')}`);
    expect(refused.status).toBe(400);
    const { token } = (await (await fetch(`${demo!.url}dev-token?channel=${CHANNEL}`)).json()) as { token: string };
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
    expect(claims).toMatchObject({ sub: 'demo-page', aud: 'cablecar', subscribe: [CHANNEL], publish: [CHANNEL], exp: expect.any(Number) });
  });

  it('recovers after the stack restarts (same data folder) and shows what was published while it was away', async () => {
    await demo!.stop();
    await stack!.stop();
    await waitForState('reconnecting');

    await startStack();
    // The page cannot be back yet: its tokens come from the demo server, which is still down.
    const meanwhile = [await publish(stack!, CHANNEL, { text: 'while away 1' }), await publish(stack!, CHANNEL, { text: 'while away 2' })];
    expect(meanwhile.map((r) => r.body.seq)).toEqual([3, 4]);
    expect(await page.textContent('#state')).toBe('reconnecting');

    await startDemo();
    await waitForSeq(4, 30_000);
    await waitForState('open');
    const { body } = await publish(stack!, CHANNEL, { text: 'after the restart' });
    await waitForSeq(body.seq);

    expect(await shown()).toEqual([
      { seq: 5, data: { text: 'after the restart' } },
      { seq: 4, data: { text: 'while away 2' } },
      { seq: 3, data: { text: 'while away 1' } },
      { seq: 2, data: { text: 'typed in the page', from: 'demo page' } },
      { seq: 1, data: { text: 'hello from curl' } },
    ]);
  }, 150_000);
});
