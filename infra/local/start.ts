import { resolve } from 'node:path';
import { startDemoServer, type DemoServer } from './demo/demoServer.js';
import { localDataDir } from './devTokens.js';
import { StackPreflightError } from './preflight.js';
import { startLocalStack, type PortOption } from './stack.js';
import { stopOnSignals } from './stopSignals.js';

/** `npm start`: the whole stack on this machine until Ctrl-C, or until a part fails for good. */
const env = process.env;
const portVariables = {
  httpPort: 'CABLECAR_HTTP_PORT',
  websocketPort: 'CABLECAR_WS_PORT',
  lambdaPort: 'CABLECAR_LAMBDA_PORT',
  postgresPort: 'CABLECAR_PG_PORT',
  dynamodbPort: 'CABLECAR_DYNAMODB_PORT',
  healthPort: 'CABLECAR_HEALTH_PORT',
} satisfies Record<PortOption, string>;
const defaults: Record<PortOption, number> = {
  httpPort: 3000,
  websocketPort: 3001,
  lambdaPort: 3002,
  postgresPort: 54329,
  dynamodbPort: 4567,
  healthPort: 3004,
};
const portFrom = (variable: string, fallback: number) => {
  const text = env[variable];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    console.error(`cablecar: ${variable}=${text} is not a port number (1-65535)`);
    process.exit(2);
  }
  return value;
};
const port = (key: PortOption) => portFrom(portVariables[key], defaults[key]);
// The demo page is started after the stack (it needs its URLs), but its port is checked with the
// stack's, before anything starts.
const demoPort = portFrom('CABLECAR_DEMO_PORT', 3003);

const options = {
  dataDir: resolve(localDataDir()),
  httpPort: port('httpPort'),
  websocketPort: port('websocketPort'),
  lambdaPort: port('lambdaPort'),
  postgresPort: port('postgresPort'),
  dynamodbPort: port('dynamodbPort'),
  healthPort: port('healthPort'),
  portVariables,
  callerPorts: [{ port: demoPort, what: 'demo', variable: 'CABLECAR_DEMO_PORT' }],
  logLevel: env.LOG_LEVEL ?? 'INFO',
};

const verbose = env.CABLECAR_VERBOSE === '1';
const quiet = new Set(['postgres']);
const log = (source: string, line: string) => {
  if (verbose || !quiet.has(source)) console.log(`[${source}] ${line}`);
};

console.log(`cablecar: starting the local stack (data in ${options.dataDir}) ...`);
const started = Date.now();
const starting = startLocalStack({
  ...options,
  log,
  // The stack has already stopped everything it started; never leave a stack that pretends to run.
  onFatal: (error) => {
    console.error(`cablecar: stopped, ${error.message}. See the lines above; \`npm start\` starts it again.`);
    process.exit(1);
  },
});
let demo: Promise<DemoServer> | undefined;
// Registered before start-up ends, so that a Ctrl-C during it also stops what has started.
stopOnSignals(async (signal) => {
  console.log(`\ncablecar: ${signal}, stopping every process it started ...`);
  await (await demo?.catch(() => undefined))?.stop();
  await (await starting.catch(() => undefined))?.stop();
  console.log('cablecar: stopped');
});
const stack = await starting.catch((error: Error) => {
  if (error instanceof StackPreflightError) console.error(`cablecar: ${error.message}`);
  else console.error(`cablecar: could not start: ${error.message}`);
  process.exit(1);
});
// Ready to paste: every channel, for a day. `npm run token` makes narrower ones.
const token = await stack.mintToken({ sub: 'dev', subscribe: ['*'], publish: ['*'], ttlSeconds: 24 * 3600 });
// The live demo page, on the client package; its dev tokens (one channel each) exist only here.
demo = startDemoServer({ port: demoPort, httpUrl: stack.httpUrl, websocketUrl: stack.websocketUrl, mintToken: (claims) => stack.mintToken(claims) });
const demoServer = await demo.catch(async (error: Error) => {
  console.error(`cablecar: the demo page could not start on port ${demoPort}: ${error.message}; set CABLECAR_DEMO_PORT to move it`);
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
  Health       ${stack.healthUrl}   (which parts are up)

Every request carries a token (README, "Who may do what"). This one allows every channel for 24 h;
narrower ones: npm run token -- --sub alice --subscribe 'room-*' --publish 'room-*'
  export TOKEN=${token}

Try it — in one terminal (a WebSocket client subscribed to room-1; it mints its own token):
  npm run listen -- room-1

and in another:
  curl -s -X POST ${stack.httpUrl}/channels/room-1/messages -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"data":{"text":"hello"}}'
  curl -s '${stack.httpUrl}/channels/room-1/messages?after=0' -H "Authorization: Bearer $TOKEN"

Ctrl-C stops everything; a part that fails is restarted, or the stack stops and says why.`);
