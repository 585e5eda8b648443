import { parseArgs } from 'node:util';
import { CHANNEL_PATTERN_PATTERN } from '../../functions/lib/tokens/channelPatterns.js';
import { localDataDir, mintDevToken, parseTtl, readJwtSecret } from './devTokens.js';

/**
 * `npm run token -- --sub alice --subscribe 'room-*' --publish 'room-*' [--ttl 1h]`: prints a token
 * signed with the local stack's secret (CABLECAR_JWT_SECRET or the data folder's), what your
 * backend would hand a user. Only the token goes to stdout, so `TOKEN=$(npm run -s token -- …)` works.
 */
const HELP = `Usage: npm run token -- --sub <who> [--subscribe <pattern>]... [--publish <pattern>]... [--ttl 1h]

  --sub        who holds the token (its "sub" claim)                        default: dev
  --subscribe  a channel pattern it may subscribe to and read history of;   repeat, or separate with commas
  --publish    a channel pattern it may publish to;                         repeat, or separate with commas
  --ttl        how long it is valid: seconds, or 90s, 30m, 1h, 2d           default: 1h
  --aud        its audience                                                 default: cablecar

A pattern is a channel name in which * matches any run of characters: room-*, user:alice, *.
The secret is CABLECAR_JWT_SECRET, else <CABLECAR_DATA_DIR or .cablecar>/jwt-secret (npm start makes it).`;

function fail(message: string): never {
  console.error(`${message}\n\n${HELP}`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    options: {
      sub: { type: 'string', default: 'dev' },
      subscribe: { type: 'string', multiple: true, default: [] },
      publish: { type: 'string', multiple: true, default: [] },
      ttl: { type: 'string', default: '1h' },
      aud: { type: 'string', default: 'cablecar' },
      help: { type: 'boolean', short: 'h' },
    },
  });
} catch (error) {
  fail((error as Error).message);
}
const { values } = parsed;
if (values.help) {
  console.log(HELP);
  process.exit(0);
}

const patterns = (list: string[], flag: string) => {
  const all = list.flatMap((item) => item.split(',')).map((p) => p.trim()).filter(Boolean);
  const bad = all.find((p) => !CHANNEL_PATTERN_PATTERN.test(p));
  if (bad !== undefined) fail(`--${flag} "${bad}" is not a channel pattern (letters, digits, "_-.:" and "*", at most 128)`);
  return all;
};
const subscribe = patterns(values.subscribe, 'subscribe');
const publish = patterns(values.publish, 'publish');
let ttlSeconds: number;
try {
  ttlSeconds = parseTtl(values.ttl);
} catch (error) {
  fail((error as Error).message);
}
if (subscribe.length === 0 && publish.length === 0) {
  console.error('note: this token allows no channel; add --subscribe and/or --publish');
}

try {
  const secret = await readJwtSecret(localDataDir());
  console.log(await mintDevToken(secret, { sub: values.sub, subscribe, publish, ttlSeconds, audience: values.aud }));
} catch (error) {
  console.error((error as Error).message);
  process.exit(1);
}
