import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type Client, type ClientError } from '../../client/src/index.js';
import { mintDevToken } from '../../infra/local/devTokens.js';
import { startHostileProxy, type HostileProxy } from '../support/hostileProxy.js';
import { publish, startTestStack, type TestStack } from '../support/localStack.js';

/**
 * The client package against the real local stack, through a hostile proxy that drops, duplicates
 * and reorders message frames and cuts every socket after a second or two, while messages are
 * published over HTTP: each subscriber must hand its application exactly 1..N, in order. Its tokens
 * are real and short-lived, so they also expire under it: on open sockets (a later subscribe is
 * refused with token_expired), and on history requests (401). The stack replays at most
 * REPLAY_LIMIT = 20 messages on subscribe, so longer absences take the history path too.
 */
const REPLAY_LIMIT = 20;
const seed = Number(process.env.CABLECAR_PROXY_SEED ?? Math.floor(Math.random() * 2 ** 31));

let stack: TestStack;
let proxy: HostileProxy;
const clients: Client[] = [];

beforeAll(async () => {
  stack = await startTestStack({ functionEnv: { REPLAY_LIMIT: String(REPLAY_LIMIT) } });
  proxy = await startHostileProxy({ upstreamUrl: stack.websocketUrl, seed });
});
afterAll(async () => {
  clients.forEach((client) => client.close());
  await proxy?.close();
  await stack?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the client through a hostile proxy', () => {
  it(`hands every subscriber exactly 1..N in order (proxy seed ${seed})`, async () => {
    const N = 60;
    const channels = ['recover-a', 'recover-b'];
    const received = new Map<string, number[]>();
    const errors: ClientError[] = [];
    let minted = 0;
    const options = {
      url: proxy.url,
      httpUrl: stack.httpUrl,
      WebSocket,
      // A fresh token for every connection, good for 3 s and for reading the recover-* channels only.
      token: () => (minted++, stack.mintToken({ sub: 'recovery', subscribe: ['recover-*'], publish: [], ttlSeconds: 3 })),
      gapWaitMs: 250,
      backoff: { initialMs: 100, maxMs: 1_000 },
    };
    for (let i = 0; i < 3; i++) {
      const client = createClient(options);
      client.on('error', (error) => errors.push(error));
      clients.push(client);
      // Client 0 listens to both channels, the others to one each.
      for (const channel of i === 0 ? channels : [channels[i - 1]!]) {
        const seqs: number[] = [];
        received.set(`${i}:${channel}`, seqs);
        client.subscribe(channel, { after: 0, onMessage: (m) => seqs.push(m.seq) });
      }
    }

    // One more subscriber without `after`: its stream starts where the server says it subscribed.
    const live = createClient(options);
    live.on('error', (error) => errors.push(error));
    clients.push(live);
    const liveSeqs: number[] = [];
    received.set('live:recover-a', liveSeqs);
    const started = new Promise<number>((resolve) => {
      live.subscribe('recover-a', { onMessage: (m) => liveSeqs.push(m.seq), onSubscribed: resolve });
    });
    expect(await started).toBe(0);

    // Publish while the proxy misbehaves: one after another with small pauses, and some in bursts.
    for (let k = 0; k < N; k += 5) {
      await Promise.all(
        channels.flatMap((channel) => Array.from({ length: 5 }, (_, j) => publish(stack, channel, { k: k + j }))),
      ).then((results) => expect(results.map((r) => r.status)).toEqual(Array(10).fill(202)));
      await sleep(50 + Math.random() * 150);
    }

    const expected = Array.from({ length: N }, (_, k) => k + 1);
    const complete = () => [...received.values()].every((seqs) => seqs.length >= N);
    const deadline = Date.now() + 40_000;
    while (!complete() && Date.now() < deadline) await sleep(100);
    const report = `seed ${seed}, proxy ${JSON.stringify(proxy.counts)}, errors ${JSON.stringify(errors.map((e) => e.code))}`;
    for (const [who, seqs] of received) expect(seqs, `${who}: ${report}`).toEqual(expected);

    // The run really was hostile: frames were lost, doubled and overtaken, and sockets were cut.
    expect(proxy.counts.dropped, report).toBeGreaterThan(0);
    expect(proxy.counts.duplicated, report).toBeGreaterThan(0);
    expect(proxy.counts.delayed, report).toBeGreaterThan(0);
    expect(proxy.counts.cut, report).toBeGreaterThan(0);
    expect(minted, report).toBeGreaterThan(clients.length);
    expect(errors.filter((e) => !['history_failed', 'token_expired'].includes(e.code)), report).toEqual([]);

    // Nothing more arrives later: no duplicate slips through after the fact.
    await sleep(1_000);
    for (const [who, seqs] of received) expect(seqs, `${who}: ${report}`).toEqual(expected);
  });

  it('hands over everything missed beyond REPLAY_LIMIT on a quiet channel, with no later message to reveal the gap', async () => {
    const missed = REPLAY_LIMIT * 2 + 5;
    for (let i = 0; i < missed; i++) expect((await publish(stack, 'quiet-1', { i })).status).toBe(202);
    const client = createClient({ url: stack.websocketUrl, httpUrl: stack.httpUrl, WebSocket, token: () => stack.mintToken({ subscribe: ['quiet-*'], publish: [] }) });
    clients.push(client);
    const seqs: number[] = [];
    const replyNamed = new Promise<number>((resolve) => client.subscribe('quiet-1', { after: 0, onMessage: (m) => seqs.push(m.seq), onSubscribed: resolve }));
    // The reply names the channel's newest seq, not the last one replayed: the rest comes from history.
    expect(await replyNamed).toBe(missed);
    const deadline = Date.now() + 10_000;
    while (seqs.length < missed && Date.now() < deadline) await sleep(50);
    expect(seqs).toEqual(Array.from({ length: missed }, (_, i) => i + 1));
  });

  it('ends a subscription the token does not cover with forbidden, naming the channel, and keeps the others', async () => {
    const client = createClient({
      url: stack.websocketUrl,
      httpUrl: stack.httpUrl,
      WebSocket,
      token: () => stack.mintToken({ subscribe: ['open-*'], publish: [] }),
    });
    clients.push(client);
    const errors: ClientError[] = [];
    client.on('error', (error) => errors.push(error));
    const seqs: number[] = [];
    const started = new Promise((resolve) => client.subscribe('open-1', { onMessage: (m) => seqs.push(m.seq), onSubscribed: resolve }));
    const refused = new Promise((resolve) => client.on('error', resolve));
    client.subscribe('closed-1', { onMessage: () => expect.fail('no message from a forbidden channel') });
    expect(await refused).toMatchObject({ code: 'forbidden', channel: 'closed-1' });
    await started;
    await publish(stack, 'closed-1', 'not for you');
    await publish(stack, 'open-1', 'for you');
    const deadline = Date.now() + 10_000;
    while (seqs.length < 1 && Date.now() < deadline) await sleep(50);
    expect(seqs).toEqual([1]);
    expect(errors.map((e) => e.code)).toEqual(['forbidden']);
  });

  it.each<[string, { ttlSeconds?: number; secret?: string }, string]>([
    ['an expired token, told by the client before it connects', { ttlSeconds: -10 }, 'token_expired'],
    ['a token signed with another secret, refused at the upgrade', { secret: 'not-the-stack-secret' }, 'unauthorized'],
  ])('stops for good on %s', async (_label, { ttlSeconds, secret }, code) => {
    const token = await mintDevToken(secret ?? stack.jwtSecret, { ttlSeconds });
    const client = createClient({ url: proxy.url, httpUrl: stack.httpUrl, WebSocket, token });
    clients.push(client);
    const errors: ClientError[] = [];
    client.on('error', (error) => errors.push(error));
    const closed = new Promise((resolve) => client.on('state', (state) => state === 'closed' && resolve(state)));
    await closed;
    expect(errors).toEqual([expect.objectContaining({ code })]);
  });
});
