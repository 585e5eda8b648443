import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { createClient } from '../../client/src/index.js';
import { localDataDir, mintDevToken, readJwtSecret } from './devTokens.js';

/**
 * `npm run listen -- <channel>... [--after <seq>] [--token <jwt>] [--url ws://...] [--http-url http://...]`:
 * subscribes with the client package and prints every message, once and in seq order, as one JSON
 * line; the connection's state and errors go to stderr. A stand-in for a browser while trying
 * cablecar out: it reconnects, pings and fills gaps from history on its own. Without --token it
 * mints one for exactly those channels with the local stack's secret, afresh at every connection.
 */
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    after: { type: 'string' },
    token: { type: 'string' },
    url: { type: 'string', default: `ws://127.0.0.1:${process.env.CABLECAR_WS_PORT ?? 3001}` },
    'http-url': { type: 'string', default: `http://127.0.0.1:${process.env.CABLECAR_HTTP_PORT ?? 3000}` },
  },
});
const channels = positionals.length > 0 ? positionals : ['room-1'];
const after = values.after === undefined ? undefined : Number(values.after);

let secret: string | undefined;
if (!values.token) {
  try {
    secret = await readJwtSecret(localDataDir());
  } catch (error) {
    console.error(`${(error as Error).message}\n(or pass --token <jwt>)`);
    process.exit(1);
  }
}
const token = values.token ?? (() => mintDevToken(secret!, { sub: 'listen', subscribe: channels, publish: [] }));

let leaving = false;
const client = createClient({ url: values.url!, httpUrl: values['http-url']!, token, WebSocket });
client.on('state', (state) => {
  console.error(`connection ${state}`);
  // Closed on its own: the token can never work (expired or refused); the error said which.
  if (state === 'closed' && !leaving) process.exit(1);
});
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
  console.error(`${(error as Error).message}\nusage: npm run listen -- <channel>... [--after <seq>] [--token <jwt>] [--url ws://...] [--http-url http://...]`);
  process.exit(2);
}
console.error(`listening to ${channels.join(', ')} on ${values.url} (Ctrl-C to leave)`);
process.on('SIGINT', () => {
  leaving = true;
  client.close();
  process.exit(0);
});
