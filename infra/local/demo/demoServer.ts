import { readFile } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { build } from 'esbuild';
import { CHANNEL_NAME_PATTERN } from '../../../functions/lib/protocol/protocol.js';
import type { DevTokenClaims } from '../devTokens.js';

/**
 * The live demo page of the local stack (`npm start`, http://127.0.0.1:3003/): plain HTML and the
 * client package, bundled here for the browser. Besides the page it has `GET /dev-token?channel=`,
 * a token that may subscribe and publish to that one channel: a route that exists only here, in the
 * local stack, never on AWS (a real app gets its tokens from its own backend).
 */
export interface DemoServerOptions {
  port: number;
  httpUrl: string;
  websocketUrl: string;
  /** The local stack's `mintToken` (devTokens.ts). */
  mintToken: (claims: DevTokenClaims) => Promise<string>;
}

export interface DemoServer {
  url: string;
  stop(): Promise<void>;
}

const ROOT = join(import.meta.dirname, '..', '..', '..');

/** The client package as one ES module, built from its source (the page imports it as ./cablecar.js). */
async function bundleClient(): Promise<string> {
  const result = await build({
    entryPoints: [join(ROOT, 'client', 'src', 'index.ts')],
    bundle: true,
    format: 'esm',
    target: 'es2020',
    minify: true,
    write: false,
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

export async function startDemoServer(options: DemoServerOptions): Promise<DemoServer> {
  const [page, client] = await Promise.all([readFile(join(import.meta.dirname, 'index.html'), 'utf8'), bundleClient()]);
  const config = JSON.stringify({ httpUrl: options.httpUrl, websocketUrl: options.websocketUrl });

  const send = (response: ServerResponse, status: number, type: string, body: string) => {
    response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
    response.end(body);
  };
  const server = createServer(async (request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    try {
      if (request.method !== 'GET') return send(response, 405, 'text/plain', 'GET only');
      if (url.pathname === '/' || url.pathname === '/index.html') return send(response, 200, 'text/html; charset=utf-8', page);
      if (url.pathname === '/cablecar.js') return send(response, 200, 'text/javascript; charset=utf-8', client);
      if (url.pathname === '/config.json') return send(response, 200, 'application/json', config);
      if (url.pathname === '/dev-token') {
        const channel = url.searchParams.get('channel') ?? '';
        if (!CHANNEL_NAME_PATTERN.test(channel)) {
          return send(response, 400, 'application/json', JSON.stringify({ error: { code: 'invalid_channel', message: 'channel must be a valid channel name' } }));
        }
        const token = await options.mintToken({ sub: 'demo-page', subscribe: [channel], publish: [channel] });
        return send(response, 200, 'application/json', JSON.stringify({ token }));
      }
      send(response, 404, 'text/plain', 'not found');
    } catch (error) {
      send(response, 500, 'text/plain', `demo server: ${(error as Error).message}`);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', resolve);
  });
  return {
    url: `http://127.0.0.1:${options.port}/`,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
