import { parseArgs } from 'node:util';
import WebSocket from 'ws';

/**
 * `npm run listen -- <channel> [--after <seq>] [--url ws://...]`: subscribes and prints every frame,
 * a stand-in for a browser while trying cablecar out. Pings so API Gateway's idle timeout never
 * closes it.
 */
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    after: { type: 'string' },
    url: { type: 'string', default: `ws://127.0.0.1:${process.env.CABLECAR_WS_PORT ?? 3001}` },
  },
});
const channels = positionals.length > 0 ? positionals : ['room-1'];

const socket = new WebSocket(values.url!);
socket.on('open', () => {
  console.log(`connected to ${values.url}; subscribing to ${channels.join(', ')} (Ctrl-C to leave)`);
  for (const channel of channels) {
    socket.send(JSON.stringify({ action: 'subscribe', channel, ...(values.after ? { after: Number(values.after) } : {}) }));
  }
});
socket.on('message', (data) => console.log(String(data)));
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
