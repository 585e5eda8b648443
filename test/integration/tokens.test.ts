import { QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { SignJWT, UnsecuredJWT, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTable, type TableRef } from '../../functions/lib/stores/dynamoTable.js';
import { CLOCK_TOLERANCE_SECONDS } from '../../functions/lib/tokens/tokenClaims.js';
import { history, publish, startTestStack, type TestStack } from '../support/localStack.js';
import { ConnectRefused, SocketClient } from '../support/socketClient.js';

/**
 * Who may do what, on the real local stack: the $connect authorizer run by serverless-offline,
 * channel authorization on subscribe, and Bearer tokens on publish and history.
 */
let stack: TestStack;
let table: TableRef;
const clients: SocketClient[] = [];
const connect = async (token?: string | null) => {
  const client = await SocketClient.connect(stack.websocketUrl, { token });
  clients.push(client);
  return client;
};

beforeAll(async () => {
  stack = await startTestStack();
  table = createTable({ tableName: stack.tableName, endpoint: stack.dynamodbUrl, region: 'us-east-1' });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  table?.client.destroy();
  await stack?.stop();
});

const now = () => Math.floor(Date.now() / 1000);
const secretKey = () => new TextEncoder().encode(stack.jwtSecret);
const claims = { sub: 'mallory', subscribe: ['*'], publish: ['*'] };

/** Every item in the table: what a refused connect must not have added to. */
async function storedItems(): Promise<string[]> {
  const { Items = [] } = await table.client.send(new ScanCommand({ TableName: stack.tableName, ConsistentRead: true }));
  return Items.map((item) => `${item.pk} ${item.sk}`).sort();
}

async function subscribersOf(channel: string): Promise<string[]> {
  const { Items = [] } = await table.client.send(
    new QueryCommand({ TableName: stack.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `CHAN#${channel}` }, ConsistentRead: true }),
  );
  return Items.map((item) => item.sk as string);
}

const refusals: Array<[string, () => Promise<string | null>]> = [
  ['no token', async () => null],
  ['an empty token', async () => ''],
  ['garbage', async () => 'not-a-jwt'],
  ['alg "none"', async () => new UnsecuredJWT(claims).setAudience('cablecar').setExpirationTime('1h').encode()],
  [
    'a wrong signature',
    async () =>
      new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setAudience('cablecar').setExpirationTime('1h').sign(new TextEncoder().encode('x'.repeat(43))),
  ],
  ['a wrong audience', async () => stack.mintToken({ audience: 'someone-else' })],
  ['an expired token', async () => stack.mintToken({ ttlSeconds: -60 })],
  [
    'a token not yet valid',
    async () => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setAudience('cablecar').setNotBefore(now() + 600).setExpirationTime(now() + 3600).sign(secretKey()),
  ],
  ['a token without exp', async () => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setAudience('cablecar').sign(secretKey())],
  [
    'an RS256 token (another algorithm than the stage verifies)',
    async () => {
      const { privateKey } = await generateKeyPair('RS256');
      return new SignJWT(claims).setProtectedHeader({ alg: 'RS256' }).setAudience('cablecar').setExpirationTime('1h').sign(privateKey);
    },
  ],
  ['a token whose patterns are not channel patterns', async () => stack.mintToken({ subscribe: ['room/*'] })],
];

describe('$connect', () => {
  it.each(refusals)('refuses %s at the upgrade with 401 and stores nothing', async (_name, token) => {
    const before = await storedItems();
    const refused = await connect(await token()).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(ConnectRefused);
    expect((refused as ConnectRefused).status).toBe(401);
    expect(await storedItems()).toEqual(before);
  });

  it('lets a valid token in and stores the connection with its holder and token expiry', async () => {
    const before = await storedItems();
    const client = await connect(await stack.mintToken({ sub: 'alice', subscribe: ['room-*'], ttlSeconds: 600 }));
    expect(await client.request({ action: 'ping' }, 'pong')).toEqual({ type: 'pong' });
    const added = (await storedItems()).filter((item) => !before.includes(item));
    expect(added).toHaveLength(1);
    const id = added[0]!.split(' ')[0]!.slice('CONN#'.length);
    const { Items = [] } = await table.client.send(new ScanCommand({ TableName: stack.tableName, ConsistentRead: true }));
    const item = Items.find((i) => i.pk === `CONN#${id}`)!;
    expect(item).toMatchObject({ v: 1, sub: 'alice', tokenExpiresAt: expect.any(Number) });
    expect(item.tokenExpiresAt).toBeGreaterThan(now() + 500);
  });
});

describe('subscribe', () => {
  it('answers forbidden for a channel no subscribe pattern covers, stores nothing, and the socket stays usable', async () => {
    const client = await connect(await stack.mintToken({ sub: 'alice', subscribe: ['room-*', 'user:alice'], publish: [] }));
    expect(await client.subscribe('room-1')).toEqual({ type: 'subscribed', channel: 'room-1', seq: 0 });

    const refused = await client.request({ action: 'subscribe', channel: 'admin-private-channel' }, 'error');
    expect(refused).toEqual({ type: 'error', code: 'forbidden', message: expect.stringContaining('admin-private-channel'), channel: 'admin-private-channel' });
    expect(await subscribersOf('admin-private-channel')).toEqual([]);
    expect((await client.request({ action: 'subscribe', channel: 'user:bob' }, 'error')).code).toBe('forbidden');

    expect(await client.request({ action: 'ping' }, 'pong')).toEqual({ type: 'pong' });
    expect(await client.subscribe('user:alice')).toMatchObject({ type: 'subscribed', channel: 'user:alice' });
  });

  it('never lets what is published on a channel reach a socket that may not read it (the reported case)', async () => {
    const outsider = await connect(await stack.mintToken({ sub: 'outsider', subscribe: ['public-*'] }));
    const admin = await connect(await stack.mintToken({ sub: 'admin', subscribe: ['admin-*'] }));
    expect((await outsider.request({ action: 'subscribe', channel: 'admin-private-channel' }, 'error')).code).toBe('forbidden');
    await admin.subscribe('admin-private-channel');

    const anonymous = await publish(stack, 'admin-private-channel', { secret: 1 }, {}, { token: null });
    expect(anonymous.status).toBe(401);
    const published = await publish(stack, 'admin-private-channel', { secret: 2 });
    expect(published.status).toBe(202);
    await admin.waitUntil((f) => f.some((x) => x.type === 'message'), 'the admin message');
    await stack.dispatchIdle();
    expect(admin.messages().map((m) => m.data)).toEqual([{ secret: 2 }]);
    expect(outsider.messages()).toEqual([]);
  });

  it('refuses new subscriptions once the token has expired, while the ones made before keep receiving', async () => {
    const ttlSeconds = 4;
    const client = await connect(await stack.mintToken({ sub: 'short-lived', subscribe: ['expiring-*'], ttlSeconds }));
    const expiresAt = now() + ttlSeconds;
    await client.subscribe('expiring-a');
    // Past exp and the clock tolerance the verifier allows.
    while (now() <= expiresAt + CLOCK_TOLERANCE_SECONDS) await new Promise((resolve) => setTimeout(resolve, 250));

    const refused = await client.request({ action: 'subscribe', channel: 'expiring-b' }, 'error');
    expect(refused).toMatchObject({ type: 'error', code: 'token_expired' });
    expect(await subscribersOf('expiring-b')).toEqual([]);

    await publish(stack, 'expiring-a', { still: 'delivered' });
    await client.waitUntil((f) => f.some((x) => x.type === 'message'), 'the message on the earlier subscription');
    expect(client.messages('expiring-a').map((m) => m.data)).toEqual([{ still: 'delivered' }]);
  }, 30_000);
});

describe('publish and history over HTTP', () => {
  it('answer 401 unauthorized without a token or with an invalid one, with the JSON error body', async () => {
    for (const [, token] of refusals.filter(([name]) => name !== 'an expired token')) {
      const chosen = await token();
      const published = await publish(stack, 'http-room', { n: 1 }, {}, { token: chosen });
      expect(published.status).toBe(401);
      expect(published.body).toEqual({ error: { code: 'unauthorized', message: expect.any(String), retryable: false } });
      expect(published.headers.get('www-authenticate')).toMatch(/^Bearer realm="cablecar"/);
      const read = await history(stack, 'http-room', '', { token: chosen });
      expect(read.status).toBe(401);
      expect(read.body.error.code).toBe('unauthorized');
    }
    expect((await publish(stack, 'http-room', 1, { authorization: 'Basic YWxpY2U6c2VjcmV0' }, { token: null })).body.error.code).toBe('unauthorized');
    expect((await history(stack, 'http-room')).body.messages).toEqual([]);
  });

  it('answer 401 token_expired for an expired token', async () => {
    const expired = await stack.mintToken({ ttlSeconds: -60 });
    const published = await publish(stack, 'http-room', { n: 1 }, {}, { token: expired });
    expect(published.status).toBe(401);
    expect(published.body.error).toMatchObject({ code: 'token_expired', retryable: false });
    expect(published.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect((await history(stack, 'http-room', '', { token: expired })).body.error.code).toBe('token_expired');
  });

  it('answer 403 forbidden when the token does not cover the channel, and store nothing', async () => {
    const reader = await stack.mintToken({ sub: 'reader', subscribe: ['news-*'], publish: [] });
    const writer = await stack.mintToken({ sub: 'writer', subscribe: [], publish: ['news-*'] });

    const byReader = await publish(stack, 'news-1', { n: 1 }, {}, { token: reader });
    expect(byReader.status).toBe(403);
    expect(byReader.body).toEqual({ error: { code: 'forbidden', message: expect.stringContaining('news-1'), retryable: false } });
    expect((await publish(stack, 'sports-1', { n: 1 }, {}, { token: writer })).status).toBe(403);
    expect((await history(stack, 'news-1', '', { token: writer })).status).toBe(403);
    expect((await history(stack, 'sports-1', '', { token: reader })).status).toBe(403);
    expect((await history(stack, 'news-1')).body.messages).toEqual([]);
    expect((await history(stack, 'sports-1')).body.messages).toEqual([]);
  });

  it('let a token through to exactly the channels its patterns cover (the happy path, end to end)', async () => {
    const alice = await stack.mintToken({ sub: 'alice', subscribe: ['room-*'], publish: ['room-*'] });
    const client = await connect(alice);
    await client.subscribe('room-happy');
    const published = await publish(stack, 'room-happy', { text: 'hello' }, {}, { token: alice });
    expect(published).toMatchObject({ status: 202, body: { channel: 'room-happy', seq: 1 } });
    await client.waitUntil((f) => f.some((x) => x.type === 'message'), 'the message');
    expect(client.messages('room-happy').map((m) => m.data)).toEqual([{ text: 'hello' }]);
    const read = await history(stack, 'room-happy', '?after=0', { token: alice });
    expect(read.status).toBe(200);
    expect(read.body.messages.map((m: any) => m.data)).toEqual([{ text: 'hello' }]);
  });
});
