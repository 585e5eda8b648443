import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { localDataDir, mintDevToken, readJwtSecret } from './devTokens.js';

/**
 * `npm run listen -- <channel>... [--after <seq>] [--token <jwt>] [--url ws://...]`: subscribes and
 * prints every frame, a stand-in for a browser while trying cablecar out. Without --token it mints
 * one for exactly those channels with the local stack's secret. Pings so API Gateway's idle timeout
 * never closes it.
 */
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    after: { type: 'string' },
    token: { type: 'string' },
    url: { type: 'string', default: `ws://127.0.0.1:${process.env.CABLECAR_WS_PORT ?? 3001}` },
  },
});
const channels = positionals.length > 0 ? positionals : ['room-1'];

let token = values.token;
if (!token) {
  try {
    token = await mintDevToken(await readJwtSecret(localDataDir()), { sub: 'listen', subscribe: channels, publish: [] });
  } catch (error) {
    console.error(`${(error as Error).message}\n(or pass --token <jwt>)`);
    process.exit(1);
  }
}

const url = new URL(values.url!);
url.searchParams.set('token', token);
const socket = new WebSocket(url);
socket.on('open', () => {
  console.log(`connected to ${values.url}; subscribing to ${channels.join(', ')} (Ctrl-C to leave)`);
  for (const channel of channels) {
    socket.send(JSON.stringify({ action: 'subscribe', channel, ...(values.after ? { after: Number(values.after) } : {}) }));
  }
});
socket.on('message', (data) => console.log(String(data)));
socket.on('unexpected-response', (_request, response) => {
  console.error(`${values.url} refused the connection: ${response.statusCode} ${response.statusMessage ?? ''} (is the token valid and unexpired?)`);
  process.exit(1);
});
socket.on('close', (code) => {
  console.log(`closed (${code})`);
  process.exit(0);
});
socket.on('error', (error) => {
  console.error(`cannot connect to ${values.url}: ${error.message}`);
  process.exit(1);
});
const ping = setInterval(() => socket.send('{"action":"ping"}'), 5 * 60 * 1000);
process.on('SIGINT', () => {
  clearInterval(ping);
  socket.close();
});
