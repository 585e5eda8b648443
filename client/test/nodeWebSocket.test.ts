import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { afterEach, expect, it } from 'vitest';
import { createClient, type ClientError } from '../src/index.js';

/**
 * The client with the real `ws` package (what Node 20 users pass in) against a server that accepts
 * TCP connections and never answers the upgrade: `ws` reports a socket closed while connecting as
 * an error event, which must not become an uncaught exception (vitest fails the run on one).
 */
let server: Server | undefined;
const held: Socket[] = [];
afterEach(async () => {
  held.forEach((socket) => socket.destroy());
  await new Promise((resolve) => server?.close(resolve));
});

async function silentServer(): Promise<string> {
  server = createServer((socket) => held.push(socket));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

it('gives up on an upgrade that never completes, retries, and closes cleanly while connecting', async () => {
  const url = await silentServer();
  const client = createClient({ url, httpUrl: 'http://127.0.0.1:9', WebSocket, replyTimeoutMs: 200, backoff: { initialMs: 10, maxMs: 10 } });
  const errors: ClientError[] = [];
  client.on('error', (error) => errors.push(error));
  await sleep(500);
  expect(errors.length).toBeGreaterThanOrEqual(2);
  expect(new Set(errors.map((e) => e.code))).toEqual(new Set(['connect_failed']));
  expect(held.length).toBeGreaterThanOrEqual(2);
  client.close();
  await sleep(100);
  expect(client.state).toBe('closed');
});
