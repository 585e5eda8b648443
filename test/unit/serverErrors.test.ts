import fc from 'fast-check';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { handler as historyHandler } from '../../functions/http/history.js';
import { handler as publishHandler } from '../../functions/http/publish.js';
import pg from 'pg';
import { mintDevToken } from '../../infra/local/devTokens.js';
import { migrate } from '../../infra/migrate.js';
import { startPostgres, type TestPostgres } from '../support/databases.js';

/**
 * `ServerErrors` rolls a release back (serverless.yml, ServerErrorsAlarm), so it must count only the
 * server's own faults: no request a client can craft may move it. The real publish and history
 * handlers, on a real PostgreSQL, get generated requests (bodies of any shape, nesting and
 * encoding, any content type, channel, key and query); each must be answered below 500 and none may
 * write a ServerErrors metric.
 */
// The refusals and the one genuine fault below are logged; nobody reads that here.
vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
});

let postgres: TestPostgres;
let written: string[];
let authorizations: fc.Arbitrary<string | undefined>;
let tokens: { valid: string; expired: string; narrow: string };

beforeAll(async () => {
  postgres = await startPostgres();
  await migrate(postgres.url, { kind: 'local' });
  process.env.DATABASE_URL = postgres.url;
  process.env.TABLE_NAME ??= 'cablecar-test';
  process.env.WEBSOCKET_API_ENDPOINT ??= 'http://127.0.0.1:1';
  process.env.CABLECAR_JWT_SECRET = 'server-errors-test-secret-of-at-least-32-characters';
  const valid = `Bearer ${await mintDevToken(process.env.CABLECAR_JWT_SECRET)}`;
  const expired = `Bearer ${await mintDevToken(process.env.CABLECAR_JWT_SECRET, { ttlSeconds: -60 })}`;
  const narrow = `Bearer ${await mintDevToken(process.env.CABLECAR_JWT_SECRET, { subscribe: ['other'], publish: ['other'] })}`;
  tokens = { valid, expired, narrow };
  // A token that covers everything is weighted up, so that most requests get past authorization.
  authorizations = fc.oneof(
    { arbitrary: fc.constant(valid), weight: 6 },
    fc.constantFrom(expired, narrow, 'Bearer', 'Basic x', `Bearer ${'x'.repeat(5000)}`),
    fc.string().map((text) => `Bearer ${text}`),
    fc.constant(undefined),
  );
});
afterAll(async () => {
  await postgres?.stop();
});
beforeEach(() => {
  written = [];
  vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'cablecar-test-publish');
  vi.stubEnv('AWS_LAMBDA_FUNCTION_VERSION', '1');
  vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    written.push(String(chunk));
    return true;
  });
  // The handlers log what they refuse at warn/error level; keep the test output readable.
  vi.spyOn(console, 'error').mockImplementation(() => {});
  vi.spyOn(console, 'warn').mockImplementation(() => {});
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

const serverErrorsCounted = () => written.filter((chunk) => chunk.includes('"ServerErrors"')).length;

type Handler = (event: APIGatewayProxyEventV2, context: Context) => Promise<APIGatewayProxyStructuredResultV2>;
const invoke = (handler: unknown, event: Partial<APIGatewayProxyEventV2>) => (handler as Handler)(event as APIGatewayProxyEventV2, {} as Context);

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
// Valid channels and content types are weighted up, so that most requests get past those checks.
const channel = fc.oneof(
  { arbitrary: fc.constantFrom('room-1', 'a', 'c'.repeat(128)), weight: 4 },
  fc.constantFrom('c'.repeat(129), '', 'no/slash', 'x#y', '\u0000', '😀'),
  fc.string(),
);
const contentType = fc.oneof(
  { arbitrary: fc.constantFrom('application/json', 'application/json; charset=utf-8'), weight: 4 },
  fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', '', 'application/json; charset=latin1'),
  fc.string(),
  fc.constant(undefined),
);
const body = fc.oneof(
  fc.json().map((data) => `{"data":${data}}`),
  fc.jsonValue().map((value) => JSON.stringify(value)),
  fc.string(),
  fc.integer({ min: 60, max: 20_000 }).map((depth) => `{"data":${nested(depth)}}`),
  fc.integer({ min: 1, max: 20_000 }).map(nested),
  fc.constant(`{"data":"${'y'.repeat(140_000)}"}`),
  fc.constantFrom('{"data":1e400}', '{"data":"\\ud800"}', '{"data":"\\u0000"}', '{"data":1,"data":2}', '{"data":{"__proto__":1}}'),
  fc.constant(undefined),
);

describe('no crafted request counts as a server error', () => {
  it('publish answers every generated request below 500 and counts no ServerErrors', async () => {
    const answers = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        channel,
        contentType,
        body,
        fc.boolean(),
        fc.option(fc.string({ maxLength: 300 }), { nil: undefined }),
        authorizations,
        async (channelName, type, text, base64, idempotencyKey, authorization) => {
          const headers: Record<string, string> = {};
          if (authorization !== undefined) headers.authorization = authorization;
          if (type !== undefined) headers['content-type'] = type;
          if (idempotencyKey !== undefined) headers['idempotency-key'] = idempotencyKey;
          const response = await invoke(publishHandler, {
            pathParameters: { channel: channelName },
            headers,
            body: base64 && text !== undefined ? Buffer.from(text).toString('base64') : text,
            isBase64Encoded: base64,
          });
          expect(response.statusCode, `${response.statusCode} ${response.body}`).toBeLessThan(500);
          const key = `${response.statusCode} ${response.statusCode === 202 ? '' : JSON.parse(response.body!).error.code}`;
          answers.set(key, (answers.get(key) ?? 0) + 1);
        },
      ),
      {
        numRuns: 300,
        // One request known to reach each answer, besides the generated ones: some refusals need a
        // rare combination (a narrow token on a valid channel with a valid body), which 300 random
        // runs do not always draw.
        examples: [
          ['room-1', 'application/json', '{"data":1}', false, undefined, tokens.valid],
          ['room-1', 'application/json', '{"data":', false, undefined, tokens.valid],
          ['no/slash', 'application/json', '{"data":1}', false, undefined, tokens.valid],
          ['room-1', 'application/json', '{"data":1}', false, undefined, undefined],
          ['room-1', 'application/json', '{"data":1}', false, undefined, tokens.expired],
          ['room-1', 'application/json', '{"data":1}', false, undefined, tokens.narrow],
          ['room-1', 'application/json', `{"data":"${'y'.repeat(140_000)}"}`, false, undefined, tokens.valid],
          ['room-1', 'text/plain', '{"data":1}', false, undefined, tokens.valid],
        ],
      },
    );
    expect(serverErrorsCounted()).toBe(0);
    // Every refusal and the database were reached, not only the first check.
    expect([...answers.keys()].sort()).toEqual(expect.arrayContaining(['202 ', '400 invalid_body', '400 invalid_channel', '401 unauthorized', '401 token_expired', '403 forbidden', '413 payload_too_large', '415 unsupported_media_type']));
  });

  it('history answers every generated query below 500 and counts no ServerErrors', async () => {
    await fc.assert(
      fc.asyncProperty(channel, fc.dictionary(fc.constantFrom('after', 'limit', 'x', ''), fc.oneof(fc.string(), fc.integer().map(String), fc.constant('1e400'))), authorizations, async (channelName, query, authorization) => {
        const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
        const response = await invoke(historyHandler, { pathParameters: { channel: channelName }, queryStringParameters: query, headers });
        expect(response.statusCode, `${response.statusCode} ${response.body}`).toBeLessThan(500);
      }),
      { numRuns: 300 },
    );
    expect(serverErrorsCounted()).toBe(0);
  });

  it('still counts a genuine server fault (so the checks above can fail)', async () => {
    // The server's own fault: its table is gone.
    const admin = new pg.Client(postgres.url);
    await admin.connect();
    await admin.query('ALTER TABLE cablecar.messages RENAME TO messages_elsewhere');
    await admin.end();
    const authorization = `Bearer ${await mintDevToken(process.env.CABLECAR_JWT_SECRET!)}`;
    const response = await invoke(publishHandler, { pathParameters: { channel: 'room-1' }, headers: { 'content-type': 'application/json', authorization }, body: '{"data":1}' });
    expect(response.statusCode).toBe(500);
    expect(serverErrorsCounted()).toBe(1);
  });
});
