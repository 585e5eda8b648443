import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../functions/lib/stores/database.js';
import { CablecarError } from '../../functions/lib/protocol/errors.js';
import { messageStore, type MessageStore } from '../../functions/lib/stores/messageStore.js';
import { jsonNestingDepth, MAX_DATA_DEPTH, MAX_OUTBOUND_FRAME_BYTES, messageFrame, outboundFrameBytes } from '../../functions/lib/protocol/protocol.js';
import { parseIdempotencyKey, parsePublishBody, publish, requireJsonContentType } from '../../functions/lib/channels/publishing.js';
import { migrate } from '../../infra/migrate.js';
import { startPostgres, type TestPostgres } from '../support/databases.js';
import { thrownCablecarError, rejectedCablecarError } from '../support/cablecarErrors.js';

/** Publishing: request parsing, and the size check in front of the real messageStore on embedded PostgreSQL. */
let postgres: TestPostgres;
let pool: pg.Pool;
let store: MessageStore;

beforeAll(async () => {
  postgres = await startPostgres();
  await migrate(postgres.url, { kind: 'local' });
  pool = createPool({ connectionString: postgres.url });
  store = messageStore(pool);
});
afterAll(async () => {
  await pool?.end();
  await postgres?.stop();
});



describe('parsePublishBody', () => {
  it.each([
    ['an object', '{"data":{"text":"hi","n":[1,2]}}', { text: 'hi', n: [1, 2] }],
    ['null', '{"data":null}', null],
    ['an array', '{"data":[1,"two",{"three":3}]}', [1, 'two', { three: 3 }]],
    ['a string', '{"data":"hello"}', 'hello'],
    ['a number', '{"data":-1.5e3}', -1500],
    ['false', '{"data":false}', false],
    ['an empty object', '{"data":{}}', {}],
  ])('accepts data that is %s', (_label, body, data) => {
    const parsed = parsePublishBody(body);
    expect(parsed).toEqual({ data });
    expect('data' in parsed).toBe(true);
  });

  it('keeps the key order of the data', () => {
    const { data } = parsePublishBody('{"data":{"zebra":1,"apple":2,"mango":{"z":0,"a":1}}}');
    expect(JSON.stringify(data)).toBe('{"zebra":1,"apple":2,"mango":{"z":0,"a":1}}');
  });

  it('keeps every key of the data, "__proto__" included (JSON has no prototype)', () => {
    const body = '{"data":{"__proto__":{"admin":true},"constructor":1,"name":"x"}}';
    const { data } = parsePublishBody(body);
    expect(JSON.stringify({ data })).toBe(body);
    expect(Object.getPrototypeOf(data)).toBe(Object.prototype);
  });

  it.each([
    ['not JSON', '{"data": '],
    ['empty', ''],
    ['missing', undefined],
    ['plain text', 'hello'],
  ])('refuses a body that is %s with invalid_body (400)', (_label, body) => {
    const error = thrownCablecarError(() => parsePublishBody(body));
    expect(error.code).toBe('invalid_body');
    expect(error.httpStatus).toBe(400);
    expect(error.message).toMatch(/JSON/);
  });

  it.each([
    ['without data', '{}'],
    ['with data under another name', '{"payload":{"x":1}}'],
    ['with an extra field', '{"data":1,"channel":"room-1"}'],
    ['that is an array', '[{"data":1}]'],
    ['that is a bare string', '"data"'],
    ['that is null', 'null'],
    ['with a number too large for JSON numbers in JavaScript', '{"data":1e400}'],
  ])('refuses a body %s with invalid_body', (_label, body) => {
    const error = thrownCablecarError(() => parsePublishBody(body));
    expect(error.code).toBe('invalid_body');
    expect(error.httpStatus).toBe(400);
  });
});

/** `data` as a JSON text nested `depth` levels deep: arrays and objects in turn, with a bracket in a string at the bottom. */
const nested = (depth: number) => {
  let text = '"] not a bracket ["';
  for (let level = 0; level < depth; level++) text = level % 2 ? `{"k":${text}}` : `[${text}]`;
  return text;
};

describe('nesting', () => {
  it.each([
    ['a scalar', '1', 0],
    ['an empty array', '[]', 1],
    ['brackets inside strings', '["[[[{{{", {"a":"]]]\\"}]', 2],
    ['an escaped quote before a bracket in a string', '["\\"[["]', 1],
    ['siblings', '[[1],[2],{"a":[3]}]', 3],
  ])('measures %s without parsing', (_label, text, depth) => {
    expect(jsonNestingDepth(text)).toBe(depth);
  });

  it(`accepts data nested ${MAX_DATA_DEPTH} levels, and publishes and reads it back unchanged`, async () => {
    const text = nested(MAX_DATA_DEPTH);
    expect(jsonNestingDepth(text)).toBe(MAX_DATA_DEPTH);
    const { data } = parsePublishBody(`{"data":${text}}`);
    const published = await publish({ channel: 'nesting-ok', data }, store);
    const [message] = (await store.history('nesting-ok', published.seq - 1, 1)).messages;
    expect(JSON.stringify(message!.data)).toBe(text);
  });

  it.each([MAX_DATA_DEPTH + 1, 2_000, 100_000])('refuses data nested %i levels with invalid_body (400), before parsing it', (depth) => {
    const error = thrownCablecarError(() => parsePublishBody(`{"data":${nested(depth)}}`));
    expect(error).toMatchObject({ code: 'invalid_body', httpStatus: 400 });
    expect(error.message).toContain(String(MAX_DATA_DEPTH));
  });
});

describe('requireJsonContentType', () => {
  it.each(['application/json', 'Application/JSON', 'application/json; charset=utf-8', 'application/json;charset="UTF-8"'])('accepts %s', (type) => {
    expect(() => requireJsonContentType(type)).not.toThrow();
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['text/plain', 'text/plain'],
    ['a form', 'application/x-www-form-urlencoded'],
    ['multipart', 'multipart/form-data; boundary=x'],
    ['JSON in another charset', 'application/json; charset=latin1'],
    ['a JSON look-alike', 'application/jsonp'],
  ])('refuses a content type that is %s with unsupported_media_type (415)', (_label, type) => {
    const error = thrownCablecarError(() => requireJsonContentType(type));
    expect(error).toMatchObject({ code: 'unsupported_media_type', httpStatus: 415, retryable: false });
  });
});

describe('parseIdempotencyKey', () => {
  it('is optional', () => {
    expect(parseIdempotencyKey(undefined)).toBeUndefined();
  });

  it.each([
    ['one character', 'k'],
    ['punctuation', 'order-2026-11-24/42:retry#1'],
    ['200 characters', 'x'.repeat(200)],
  ])('accepts a key of %s', (_label, key) => {
    expect(parseIdempotencyKey(key)).toBe(key);
  });

  it.each([
    ['empty', ''],
    ['201 characters', 'x'.repeat(201)],
  ])('refuses a key that is %s with invalid_body', (_label, key) => {
    const error = thrownCablecarError(() => parseIdempotencyKey(key));
    expect(error.code).toBe('invalid_body');
    expect(error.message).toMatch(/Idempotency-Key/);
  });
});

describe('publish', () => {
  /** The longest string of `unit` whose message frame still fits API Gateway's 128 KB. */
  const longestFitting = (channel: string, unit: string) => {
    const overhead = outboundFrameBytes(channel, '""');
    return Math.floor((MAX_OUTBOUND_FRAME_BYTES - overhead) / Buffer.byteLength(unit));
  };

  it('accepts a payload whose frame is exactly 128 KB at the widest, and the delivered frame fits', async () => {
    const channel = 'size-limit';
    const data = 'x'.repeat(longestFitting(channel, 'x'));
    expect(outboundFrameBytes(channel, JSON.stringify(data))).toBe(MAX_OUTBOUND_FRAME_BYTES);

    const published = await publish({ channel, data }, store);
    expect(published).toMatchObject({ channel, seq: 1, duplicate: false });

    const [message] = (await store.history(channel, 0, 1)).messages;
    expect(message!.data).toBe(data);
    const frameBytes = Buffer.byteLength(JSON.stringify(messageFrame(message!)));
    expect(frameBytes).toBeLessThanOrEqual(MAX_OUTBOUND_FRAME_BYTES);
    // The estimate counted the seq at 16 digits; everything else is exact.
    expect(outboundFrameBytes(channel, JSON.stringify(data)) - frameBytes).toBe(16 - String(message!.seq).length);
  });

  it('refuses a payload one byte over with payload_too_large (413) and stores nothing', async () => {
    const channel = 'size-limit-over';
    await publish({ channel, data: 'first' }, store);
    const data = 'x'.repeat(longestFitting(channel, 'x') + 1);

    const error = await rejectedCablecarError(publish({ channel, data }, store));
    expect(error).toMatchObject({ code: 'payload_too_large', httpStatus: 413, retryable: false });
    expect(error.message).toContain(String(MAX_OUTBOUND_FRAME_BYTES + 1));
    expect(await store.lastSeq(channel)).toBe(1);
    expect((await store.history(channel, 0, 10)).messages).toHaveLength(1);
  });

  it('counts UTF-8 bytes, not characters: multibyte data over the limit is refused, just under is accepted', async () => {
    const channel = 'size-multibyte';
    const fits = longestFitting(channel, '☕'); // 3 bytes each
    const error = await rejectedCablecarError(publish({ channel, data: '☕'.repeat(fits + 1) }, store));
    expect(error.code).toBe('payload_too_large');
    expect('☕'.repeat(fits + 1).length).toBeLessThan(MAX_OUTBOUND_FRAME_BYTES / 2);

    await publish({ channel, data: '☕'.repeat(fits) }, store);
    const [message] = (await store.history(channel, 0, 1)).messages;
    expect(message!.data).toBe('☕'.repeat(fits));
    expect(Buffer.byteLength(JSON.stringify(messageFrame(message!)))).toBeLessThanOrEqual(MAX_OUTBOUND_FRAME_BYTES);
  });

  it('counts the JSON escapes of the data (a quote costs two bytes on the wire)', async () => {
    const channel = 'size-escapes';
    const fits = longestFitting(channel, '\\"');
    expect((await rejectedCablecarError(publish({ channel, data: '"'.repeat(fits + 1) }, store))).code).toBe('payload_too_large');
    await expect(publish({ channel, data: '"'.repeat(fits) }, store)).resolves.toMatchObject({ seq: 1 });
  });

  it('stores what it is given, as given, and honours the idempotency key', async () => {
    const { data } = parsePublishBody('{"data":{"b":[1,{"y":2,"x":1}],"a":null}}');
    const first = await publish({ channel: 'publish-idem', data, idempotencyKey: 'k1' }, store);
    const again = await publish({ channel: 'publish-idem', data, idempotencyKey: 'k1' }, store);
    expect(again).toEqual({ ...first, duplicate: true });
    const page = await store.history('publish-idem', 0, 10);
    expect(page.messages).toHaveLength(1);
    expect(JSON.stringify(page.messages[0]!.data)).toBe('{"b":[1,{"y":2,"x":1}],"a":null}');
  });

  it('stores a "__proto__" key of the data like any other key', async () => {
    const { data } = parsePublishBody('{"data":{"__proto__":{"admin":true},"text":"hi"}}');
    await publish({ channel: 'publish-proto', data }, store);
    const [message] = (await store.history('publish-proto', 0, 1)).messages;
    expect(JSON.stringify(message!.data)).toBe('{"__proto__":{"admin":true},"text":"hi"}');
  });
});
