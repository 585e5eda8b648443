import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { createClient } from '../../client/src/index.js';

/**
 * `npm run listen -- <channel>... [--after <seq>] [--url ws://...] [--http-url http://...]`: subscribes
 * with the client package and prints every message, once and in seq order, as one JSON line; the
 * connection's state and errors go to stderr. A stand-in for a browser while trying cablecar out:
 * it reconnects, pings and fills gaps from history on its own.
 */
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    after: { type: 'string' },
    url: { type: 'string', default: `ws://127.0.0.1:${process.env.CABLECAR_WS_PORT ?? 3001}` },
    'http-url': { type: 'string', default: `http://127.0.0.1:${process.env.CABLECAR_HTTP_PORT ?? 3000}` },
  },
});
const channels = positionals.length > 0 ? positionals : ['room-1'];
const after = values.after === undefined ? undefined : Number(values.after);

const client = createClient({ url: values.url!, httpUrl: values['http-url']!, WebSocket });
client.on('state', (state) => console.error(`connection ${state}`));
client.on('error', (error) => console.error(`error ${error.code}${error.channel ? ` on ${error.channel}` : ''}: ${error.message}`));
try {
  for (const channel of channels) {
    client.subscribe(channel, {
      after,
      onMessage: (message) => console.log(JSON.stringify(message)),
      onSubscribed: (seq) => console.error(`subscribed to ${channel} at seq ${seq}`),
    });
  }
} catch (error) {
  console.error(`${(error as Error).message}\nusage: npm run listen -- <channel>... [--after <seq>] [--url ws://...] [--http-url http://...]`);
  process.exit(2);
}
console.error(`listening to ${channels.join(', ')} on ${values.url} (Ctrl-C to leave)`);
process.on('SIGINT', () => {
  client.close();
  process.exit(0);
});
