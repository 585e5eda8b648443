import { resolve } from 'node:path';
import { startDemoServer, type DemoServer } from './demo/demoServer.js';
import { localDataDir } from './devTokens.js';
import { startLocalStack } from './stack.js';
import { stopOnSignals } from './stopSignals.js';

/** `npm start`: the whole stack on this machine until Ctrl-C. */
const env = process.env;
const port = (name: string, fallback: number) => Number(env[name] ?? fallback);

const options = {
  dataDir: resolve(localDataDir()),
  httpPort: port('CABLECAR_HTTP_PORT', 3000),
  websocketPort: port('CABLECAR_WS_PORT', 3001),
  lambdaPort: port('CABLECAR_LAMBDA_PORT', 3002),
  postgresPort: port('CABLECAR_PG_PORT', 54329),
  dynamodbPort: port('CABLECAR_DYNAMODB_PORT', 4567),
  logLevel: env.LOG_LEVEL ?? 'INFO',
};
const demoPort = port('CABLECAR_DEMO_PORT', 3003);

const verbose = env.CABLECAR_VERBOSE === '1';
const quiet = new Set(['postgres']);
const log = (source: string, line: string) => {
  if (verbose || !quiet.has(source)) console.log(`[${source}] ${line}`);
};

console.log(`cablecar: starting the local stack (data in ${options.dataDir}) ...`);
const started = Date.now();
const starting = startLocalStack({ ...options, log });
let demo: Promise<DemoServer> | undefined;
// Registered before start-up ends, so that a Ctrl-C during it also stops what has started.
stopOnSignals(async (signal) => {
  console.log(`\ncablecar: ${signal}, stopping every process it started ...`);
  await (await demo?.catch(() => undefined))?.stop();
  await (await starting.catch(() => undefined))?.stop();
  console.log('cablecar: stopped');
});
const stack = await starting;
// Ready to paste: every channel, for a day. `npm run token` makes narrower ones.
const token = await stack.mintToken({ sub: 'dev', subscribe: ['*'], publish: ['*'], ttlSeconds: 24 * 3600 });
// The live demo page, on the client package; its dev tokens (one channel each) exist only here.
demo = startDemoServer({ port: demoPort, httpUrl: stack.httpUrl, websocketUrl: stack.websocketUrl, mintToken: (claims) => stack.mintToken(claims) });
const demoServer = await demo.catch(async (error: Error) => {
  console.error(`cablecar: the demo page could not start on port ${demoPort}: ${error.message}`);
  await stack.stop();
  process.exit(1);
});

console.log(`
cablecar is running (ready in ${((Date.now() - started) / 1000).toFixed(1)} s)

  Demo page    ${demoServer.url}?channel=room-1   (live messages, latency, publish form)
  HTTP API     ${stack.httpUrl}   POST/GET /channels/{channel}/messages
  WebSocket    ${stack.websocketUrl}
  Lambda       ${stack.lambdaUrl}   (the dispatch bridge invokes fanout here)
  PostgreSQL   ${stack.appDatabaseUrl}   your app's database: publish with cablecar.publish() / cablecar.broadcast_changes()
               (cablecar's own role, for migrations and inspection: ${stack.databaseUrl})
  DynamoDB     ${stack.dynamodbUrl}   table ${stack.tableName}

Every request carries a token (README, "Who may do what"). This one allows every channel for 24 h;
narrower ones: npm run token -- --sub alice --subscribe 'room-*' --publish 'room-*'
  export TOKEN=${token}

Try it — in one terminal (a WebSocket client subscribed to room-1; it mints its own token):
  npm run listen -- room-1

and in another:
  curl -s -X POST ${stack.httpUrl}/channels/room-1/messages -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"data":{"text":"hello"}}'
  curl -s '${stack.httpUrl}/channels/room-1/messages?after=0' -H "Authorization: Bearer $TOKEN"

Ctrl-C stops everything.`);
