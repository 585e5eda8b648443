import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createClient, type ClientError, type ClientOptions, type ConnectionState, type Message } from '../src/index.js';
import { ChannelLog, fakeHistoryFetch, fakeWebSocketClass, messageFrame, type HistoryRequest } from './fakes.js';

/**
 * The client against a scripted WebSocket and an in-memory history, under fake timers: each test
 * plays the server's side frame by frame and checks what the application was handed.
 */
const URL_WS = 'ws://cablecar.test';
const URL_HTTP = 'http://cablecar.test';

let log: ChannelLog;
beforeEach(() => {
  vi.useFakeTimers();
  log = new ChannelLog();
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

function setUp(options: Partial<ClientOptions> = {}, respond?: (request: HistoryRequest) => Response | undefined) {
  const sockets = fakeWebSocketClass();
  const history = fakeHistoryFetch(log, respond);
  const client = createClient({ url: URL_WS, httpUrl: URL_HTTP, WebSocket: sockets.WebSocket, fetch: history.fetch, ...options });
  const states: ConnectionState[] = [];
  const errors: ClientError[] = [];
  client.on('state', (s) => states.push(s));
  client.on('error', (e) => errors.push(e));
  const received: Message[] = [];
  const seqs = () => received.map((m) => m.seq);
  const onMessage = (m: Message) => received.push(m);
  /** Lets the client create its socket, then opens it. */
  const openSocket = async () => {
    await vi.advanceTimersByTimeAsync(0);
    sockets.last().open();
    return sockets.last();
  };
  const publish = (channel: string, deliver = true) => {
    const message = log.publish(channel, { n: log.lastSeq(channel) + 1 });
    if (deliver) sockets.last().push(messageFrame(message));
    return message;
  };
  return { client, sockets, history, states, errors, received, seqs, onMessage, openSocket, publish };
}

const subscribeFrames = (frames: any[]) => frames.filter((f) => f.action === 'subscribe');

describe('connecting', () => {
  it('reports connecting then open, sends the token in the URL, and sends subscriptions made before the socket opened', async () => {
    const t = setUp({ token: 'tok en' });
    t.client.subscribe('room-1', { onMessage: t.onMessage });
    await vi.advanceTimersByTimeAsync(0);
    expect(t.client.state).toBe('connecting');
    const socket = t.sockets.last();
    expect(socket.url).toBe(`${URL_WS}?token=tok%20en`);
    expect(socket.sent).toEqual([]);
    socket.open();
    expect(t.states).toEqual(['open']);
    expect(socket.sent).toEqual([{ action: 'subscribe', channel: 'room-1', rev: 1, id: expect.stringMatching(/^.{1,64}$/) }]);
  });

  it('checks arguments at the call', () => {
    const t = setUp();
    expect(() => t.client.subscribe('bad/name', { onMessage: t.onMessage })).toThrow(TypeError);
    expect(() => t.client.subscribe('room-1', { after: -1, onMessage: t.onMessage })).toThrow(TypeError);
    t.client.subscribe('room-1', { onMessage: t.onMessage });
    expect(() => t.client.subscribe('room-1', { onMessage: t.onMessage })).toThrow(/already subscribed/);
    expect(() => createClient({ url: URL_WS, httpUrl: URL_HTTP })).toThrow(/WebSocket/);
  });

  it('stops for good on an expired static token, with token_expired', async () => {
    const expired = `x.${btoa(JSON.stringify({ exp: Math.floor(Date.now() / 1000) - 10 }))}.y`;
    const t = setUp({ token: expired });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(t.sockets.sockets).toHaveLength(0);
    expect(t.errors.map((e) => e.code)).toEqual(['token_expired']);
    expect(t.client.state).toBe('closed');
  });

  it('reports a refused upgrade by its status and stops when the token cannot change', async () => {
    const t = setUp({ token: 'static' });
    await vi.advanceTimersByTimeAsync(0);
    t.sockets.last().refuse('Unexpected server response: 401');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(t.errors).toEqual([expect.objectContaining({ code: 'unauthorized', status: 401 })]);
    expect(t.client.state).toBe('closed');
    expect(t.sockets.sockets).toHaveLength(1);
  });

  it('asks token() again at every connection attempt and retries a refusal with a fresh token', async () => {
    let n = 0;
    const t = setUp({ token: async () => `token-${++n}` });
    await vi.advanceTimersByTimeAsync(0);
    t.sockets.last().refuse('Unexpected server response: 403');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(t.errors[0]).toMatchObject({ code: 'forbidden', status: 403 });
    expect(t.sockets.sockets.map((s) => new URL(s.url).searchParams.get('token'))).toEqual(['token-1', 'token-2']);
  });

  it('backs off when the server keeps answering token_expired to fresh tokens (clock skew), instead of spinning', async () => {
    const t = setUp({ token: async () => 'fresh', backoff: { initialMs: 1_000, maxMs: 30_000 } });
    t.client.subscribe('room-1', { onMessage: t.onMessage });
    for (let round = 0; round < 40; round++) {
      await vi.advanceTimersByTimeAsync(0);
      const socket = t.sockets.last();
      if (socket.readyState === 0) socket.open();
      socket.push({ type: 'error', code: 'token_expired', message: 'the token has expired' });
      await vi.advanceTimersByTimeAsync(100);
    }
    // 40 refusals within 4 s of client time: the first is answered at once, the others back off.
    expect(t.sockets.sockets.length).toBeLessThan(10);
  });

  it('gives up on an upgrade that never completes and tries again', async () => {
    const t = setUp({ replyTimeoutMs: 5_000, backoff: { initialMs: 10, maxMs: 10 } });
    await vi.advanceTimersByTimeAsync(4_999);
    expect(t.sockets.sockets).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(t.sockets.sockets[0]!.closedByClient).toBe(true);
    expect(t.errors.map((e) => e.code)).toEqual(['connect_failed']);
    await vi.advanceTimersByTimeAsync(20);
    expect(t.sockets.sockets).toHaveLength(2);
    t.sockets.last().open();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(t.client.state).toBe('open');
    expect(t.sockets.sockets).toHaveLength(2);
  });

  it('reports a failing token() and retries it', async () => {
    let calls = 0;
    const t = setUp({
      token: async () => {
        if (++calls === 1) throw new Error('auth server down');
        return 'fresh';
      },
    });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(t.errors.map((e) => e.code)).toEqual(['token_failed']);
    expect(t.sockets.last().url).toContain('token=fresh');
  });
});

describe('one channel in order, exactly once', () => {
  it('without after, starts at the seq the subscribed reply names and drops what came before it', async () => {
    const t = setUp();
    const starts: number[] = [];
    t.client.subscribe('room-1', { onMessage: t.onMessage, onSubscribed: (seq) => starts.push(seq) });
    const socket = await t.openSocket();
    t.publish('room-1');
    t.publish('room-1');
    expect(starts).toEqual([]);
    socket.push({ type: 'subscribed', channel: 'room-1', seq: 1, id: socket.sent[0].id });
    expect(starts).toEqual([1]);
    t.publish('room-1');
    expect(t.seqs()).toEqual([2, 3]);
    expect(t.received[0]).toEqual({ channel: 'room-1', seq: 2, id: 'room-1-2', data: { n: 2 }, publishedAt: expect.any(String) });
  });

  it('drops duplicates and restores the order of close messages without asking history', async () => {
    const t = setUp();
    t.client.subscribe('room-1', { onMessage: t.onMessage });
    const socket = await t.openSocket();
    socket.push({ type: 'subscribed', channel: 'room-1', seq: 0 });
    const [m1, m2, m3] = [t.publish('room-1', false), t.publish('room-1', false), t.publish('room-1', false)];
    for (const m of [m2, m1, m1, m3, m2, m3]) socket.push(messageFrame(m));
    await vi.advanceTimersByTimeAsync(5_000);
    expect(t.seqs()).toEqual([1, 2, 3]);
    expect(t.history.requests).toEqual([]);
  });

  it('holds a message past a gap for gapWaitMs, then fills the gap from history, paging, with the token', async () => {
    const t = setUp({ token: 'secret', gapWaitMs: 400, historyPageSize: 2 });
    t.client.subscribe('room-1', { onMessage: t.onMessage });
    const socket = await t.openSocket();
    socket.push({ type: 'subscribed', channel: 'room-1', seq: 0 });
    t.publish('room-1');
    for (let i = 0; i < 4; i++) t.publish('room-1', false);
    t.publish('room-1');
    expect(t.seqs()).toEqual([1]);
    await vi.advanceTimersByTimeAsync(399);
    expect(t.history.requests).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(t.seqs()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(t.history.requests).toEqual([
      { channel: 'room-1', after: 1, limit: 2, authorization: 'Bearer secret' },
      { channel: 'room-1', after: 3, limit: 2, authorization: 'Bearer secret' },
    ]);
  });

  it('cancels the fill when the missing message arrives within the window', async () => {
    const t = setUp();
    t.client.subscribe('room-1', { onMessage: t.onMessage });
    const socket = await t.openSocket();
    socket.push({ type: 'subscribed', channel: 'room-1', seq: 0 });
    const m1 = t.publish('room-1', false);
    t.publish('room-1');
    await vi.advanceTimersByTimeAsync(100);
    socket.push(messageFrame(m1));
    await vi.advanceTimersByTimeAsync(5_000);
    expect(t.seqs()).toEqual([1, 2]);
    expect(t.history.requests).toEqual([]);
  });

  it('with after, delivers the replay and fills at once when the subscribed reply is past what arrived', async () => {
    const t = setUp();
    for (let i = 0; i < 5; i++) t.publish('room-1', false);
    t.client.subscribe('room-1', { after: 1, onMessage: t.onMessage });
    const socket = await t.openSocket();
    expect(socket.sent[0]).toMatchObject({ action: 'subscribe', channel: 'room-1', after: 1 });
    socket.push(messageFrame(log.after('room-1', 1)[0]!)); // seq 2; 3..5 lost on the way
    socket.push({ type: 'subscribed', channel: 'room-1', seq: 5, id: socket.sent[0].id });
    await vi.advanceTimersByTimeAsync(0);
    expect(t.seqs()).toEqual([2, 3, 4, 5]);
    expect(t.history.requests.map((r) => r.after)).toEqual([2]);
  });

  it('follows a channel reset (reply seq below after): reports channel_reset and continues from the channel', async () => {
    const t = setUp();
    t.client.subscribe('room-1', { after: 7, onMessage: t.onMessage });
    const socket = await t.openSocket();
    t.publish('room-1', false);
    t.publish('room-1', false);
    socket.push({ type: 'subscribed', channel: 'room-1', seq: 2 });
    t.publish('room-1');
    expect(t.errors).toEqual([expect.objectContaining({ code: 'channel_reset', channel: 'room-1' })]);
    expect(t.seqs()).toEqual([3]);
  });

  it('skips what retention deleted when the reply says truncated: reports messages_pruned and goes on from oldestSeq', async () => {
    const t = setUp();
    for (let i = 0; i < 6; i++) t.publish('room-1', false);
    t.client.subscribe('room-1', { after: 1, onMessage: t.onMessage });
    const socket = await t.openSocket();
    // Seq 2..4 were pruned: the replay starts at 5, and history starts there too.
    const pruned = (request: HistoryRequest) => request.after < 4;
    t.history.requests.length = 0;
    socket.push(messageFrame(log.after('room-1', 4)[0]!));
    socket.push(messageFrame(log.after('room-1', 5)[0]!));
    socket.push({ type: 'subscribed', channel: 'room-1', seq: 6, truncated: true, oldestSeq: 5, id: socket.sent[0].id, rev: 1 });
    t.publish('room-1');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(t.errors).toEqual([expect.objectContaining({ code: 'messages_pruned', channel: 'room-1', message: expect.stringContaining('seq 2..4') })]);
    expect(t.seqs()).toEqual([5, 6, 7]);
    expect(t.history.requests.filter(pruned)).toEqual([]);
  });

  it('skips what retention deleted when history says truncated (the gap timer fired before the reply)', async () => {
    for (let i = 0; i < 6; i++) log.publish('room-1');
    const t = setUp({}, (request) => {
      if (request.after >= 4) return undefined;
      return Response.json({ channel: 'room-1', messages: log.after('room-1', 4, request.limit), hasMore: false, truncated: true, oldestSeq: 5 });
    });
    t.client.subscribe('room-1', { after: 1, onMessage: t.onMessage });
    const socket = await t.openSocket();
    socket.push(messageFrame(log.after('room-1', 5)[0]!));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(t.errors.map((e) => e.code)).toEqual(['messages_pruned']);
    expect(t.seqs()).toEqual([5, 6]);
  });

  it('does not take a reply below after for a reset when a live message arrived before it', async () => {
    const t = setUp();
    for (let i = 0; i < 5; i++) t.publish('room-1', false);
    t.client.subscribe('room-1', { after: 5, onMessage: t.onMessage });
    const socket = await t.openSocket();
    t.publish('room-1'); // fanned out before the (empty) replay's reply
    socket.push({ type: 'subscribed', channel: 'room-1', seq: 5 });
    t.publish('room-1');
    expect(t.errors).toEqual([]);
    expect(t.seqs()).toEqual([6, 7]);
  });

  it('retries a failing history with backoff, reporting history_failed, and refreshes an expired token once', async () => {
    let n = 0;
    let failures = 2;
    const t = setUp({ token: async () => `t${++n}` }, (request) => {
      if (failures-- > 0) return Response.json({ error: { code: 'unavailable', message: 'down' } }, { status: 503 });
      if (request.authorization === 'Bearer t1') return Response.json({ error: { code: 'token_expired' } }, { status: 401 });
      return undefined;
    });
    t.client.subscribe('room-1', { onMessage: t.onMessage });
    const socket = await t.openSocket();
    socket.push({ type: 'subscribed', channel: 'room-1', seq: 0 });
    t.publish('room-1', false);
    t.publish('room-1');
    await vi.advanceTimersByTimeAsync(120_000);
    expect(t.errors.map((e) => e.code)).toEqual(['history_failed', 'history_failed']);
    expect(t.seqs()).toEqual([1, 2]);
    expect(t.history.requests.map((r) => r.authorization)).toEqual(['Bearer t1', 'Bearer t1', 'Bearer t1', 'Bearer t2']);
  });

  it('ends the subscription when history refuses it for good, instead of skipping', async () => {
    const t = setUp({}, () => Response.json({ error: { code: 'forbidden', message: 'not yours' } }, { status: 403 }));
    t.client.subscribe('room-1', { onMessage: t.onMessage });
    const socket = await t.openSocket();
    socket.push({ type: 'subscribed', channel: 'room-1', seq: 0 });
    t.publish('room-1', false);
    t.publish('room-1');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(t.errors).toEqual([{ code: 'forbidden', channel: 'room-1', status: 403, message: 'not yours' }]);
    t.publish('room-1');
    expect(t.seqs()).toEqual([]);
    expect(t.history.requests).toHaveLength(1);
  });

  it('reports an onMessage that throws and goes on with the next message', async () => {
    const t = setUp();
    t.client.subscribe('room-1', {
      onMessage: (m) => {
        t.received.push(m);
        if (m.seq === 1) throw new Error('app bug');
      },
    });
    const socket = await t.openSocket();
    socket.push({ type: 'subscribed', channel: 'room-1', seq: 0 });
    t.publish('room-1');
    t.publish('room-1');
    expect(t.seqs()).toEqual([1, 2]);
    expect(t.errors).toEqual([expect.objectContaining({ code: 'on_message_failed', channel: 'room-1' })]);
  });
});

describe('reconnecting', () => {
  it('after a cut, reconnects with backoff and full jitter, a fresh token, and after = the last seq handed over', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999);
    let n = 0;
    const t = setUp({ token: () => `t${++n}`, backoff: { initialMs: 1000, maxMs: 4000 } });
    t.client.subscribe('room-1', { onMessage: t.onMessage });
    let socket = await t.openSocket();
    socket.push({ type: 'subscribed', channel: 'room-1', seq: 0 });
    t.publish('room-1');
    t.publish('room-1');

    // Three failed attempts: waits of ~1 s, ~2 s, ~4 s (capped), each at most initial·2^attempt.
    socket.cut();
    expect(t.client.state).toBe('reconnecting');
    const waits: number[] = [];
    for (let attempt = 0; attempt < 4; attempt++) {
      const before = t.sockets.sockets.length;
      let waited = 0;
      while (t.sockets.sockets.length === before) {
        await vi.advanceTimersByTimeAsync(100);
        waited += 100;
      }
      waits.push(waited);
      if (attempt < 3) t.sockets.last().refuse('connect ECONNREFUSED');
    }
    expect(waits).toEqual([1000, 2000, 4000, 4000]);
    expect(t.errors.map((e) => e.code)).toEqual(['connect_failed', 'connect_failed', 'connect_failed']);

    t.publish('room-1', false); // published while away
    socket = t.sockets.last();
    expect(new URL(socket.url).searchParams.get('token')).toBe('t5');
    socket.open();
    expect(t.states).toEqual(['open', 'reconnecting', 'open']);
    expect(subscribeFrames(socket.sent)).toEqual([{ action: 'subscribe', channel: 'room-1', after: 2, rev: expect.any(Number), id: expect.any(String) }]);
    socket.push(messageFrame(log.after('room-1', 2)[0]!));
    socket.push({ type: 'subscribed', channel: 'room-1', seq: 3 });
    expect(t.seqs()).toEqual([1, 2, 3]);
  });

  it('pings within the idle timeout and replaces a socket that does not answer', async () => {
    const t = setUp({ pingIntervalMs: 60_000, replyTimeoutMs: 5_000, backoff: { initialMs: 10, maxMs: 10 } });
    const socket = await t.openSocket();
    await vi.advanceTimersByTimeAsync(60_000);
    const ping = socket.sent.find((f) => f.action === 'ping');
    expect(ping).toEqual({ action: 'ping', id: expect.any(String) });
    socket.push({ type: 'pong', id: ping.id });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(t.sockets.sockets).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(50_000); // second ping, no pong
    expect(socket.sent.filter((f) => f.action === 'ping')).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(4_999);
    expect(socket.closedByClient).toBe(false);
    await vi.advanceTimersByTimeAsync(1 + 20);
    expect(socket.closedByClient).toBe(true);
    expect(t.sockets.sockets).toHaveLength(2);
  });

  it('renews the socket on its own before maxConnectionMs, and resubscribes from the last seq', async () => {
    const t = setUp({ maxConnectionMs: 100_000, pingIntervalMs: 1e9 });
    t.client.subscribe('room-1', { onMessage: t.onMessage });
    const socket = await t.openSocket();
    socket.push({ type: 'subscribed', channel: 'room-1', seq: 0 });
    t.publish('room-1');
    await vi.advanceTimersByTimeAsync(89_999);
    expect(t.sockets.sockets).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(10_001);
    expect(socket.closedByClient).toBe(true);
    expect(t.sockets.sockets).toHaveLength(2);
    t.sockets.last().open();
    expect(subscribeFrames(t.sockets.last().sent)).toEqual([expect.objectContaining({ after: 1 })]);
  });

  it('replaces a socket that never answers a subscribe', async () => {
    const t = setUp({ replyTimeoutMs: 3_000, backoff: { initialMs: 10, maxMs: 10 } });
    t.client.subscribe('room-1', { onMessage: t.onMessage });
    const socket = await t.openSocket();
    await vi.advanceTimersByTimeAsync(3_000);
    expect(socket.closedByClient).toBe(true);
    await vi.advanceTimersByTimeAsync(100);
    expect(t.sockets.sockets).toHaveLength(2);
  });

  it('keeps waiting for the subscribe reply while a long replay is arriving', async () => {
    const t = setUp({ replyTimeoutMs: 3_000 });
    for (let i = 0; i < 5; i++) t.publish('room-1', false);
    t.client.subscribe('room-1', { after: 0, onMessage: t.onMessage });
    const socket = await t.openSocket();
    for (const m of log.after('room-1', 0)) {
      await vi.advanceTimersByTimeAsync(2_000);
      socket.push(messageFrame(m));
    }
    await vi.advanceTimersByTimeAsync(2_000);
    socket.push({ type: 'subscribed', channel: 'room-1', seq: 5 });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(socket.closedByClient).toBe(false);
    expect(t.seqs()).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('server errors and unsubscribing', () => {
  it('ends a subscription the server refuses (forbidden), matched by the echoed id, and never asks for it again', async () => {
    const t = setUp({ backoff: { initialMs: 10, maxMs: 10 } });
    t.client.subscribe('secret', { onMessage: t.onMessage });
    t.client.subscribe('room-1', { onMessage: t.onMessage });
    const socket = await t.openSocket();
    const [secret] = subscribeFrames(socket.sent);
    socket.push({ type: 'error', code: 'forbidden', message: 'not allowed', id: secret.id });
    expect(t.errors).toEqual([{ code: 'forbidden', message: 'not allowed', channel: 'secret' }]);
    socket.push(messageFrame(log.publish('secret')));
    socket.cut();
    await vi.advanceTimersByTimeAsync(1_000);
    t.sockets.last().open();
    expect(subscribeFrames(t.sockets.last().sent).map((f) => f.channel)).toEqual(['room-1']);
    expect(t.seqs()).toEqual([]);
  });

  it('asks again after a retryable refusal (unavailable)', async () => {
    const t = setUp({ backoff: { initialMs: 100, maxMs: 100 } });
    t.client.subscribe('room-1', { onMessage: t.onMessage });
    const socket = await t.openSocket();
    socket.push({ type: 'error', code: 'unavailable', message: 'database down', channel: 'room-1', id: socket.sent[0].id });
    await vi.advanceTimersByTimeAsync(100);
    expect(subscribeFrames(socket.sent)).toHaveLength(2);
    socket.push({ type: 'subscribed', channel: 'room-1', seq: 0, id: socket.sent[1].id });
    t.publish('room-1');
    expect(t.seqs()).toEqual([1]);
    expect(t.errors).toEqual([expect.objectContaining({ code: 'unavailable', channel: 'room-1' })]);
  });

  it('unsubscribe stops delivery at once; a stale reply to an earlier subscribe is not taken for the new one', async () => {
    const t = setUp();
    const first = t.client.subscribe('room-1', { onMessage: t.onMessage });
    const socket = await t.openSocket();
    const oldId = socket.sent[0].id;
    first.unsubscribe();
    first.unsubscribe();
    expect(socket.sent.filter((f) => f.action === 'unsubscribe')).toEqual([{ action: 'unsubscribe', channel: 'room-1', rev: expect.any(Number), id: expect.any(String) }]);
    t.publish('room-1');
    expect(t.seqs()).toEqual([]);

    const later: Message[] = [];
    t.client.subscribe('room-1', { onMessage: (m) => later.push(m) });
    const newId = subscribeFrames(socket.sent)[1].id;
    // Subscription changes carry a rev that only grows, so the server applies them in this order.
    expect(socket.sent.map((f) => f.rev)).toEqual([1, 2, 3]);
    socket.push({ type: 'subscribed', channel: 'room-1', seq: 0, id: oldId }); // the first subscribe's reply, late
    socket.push({ type: 'subscribed', channel: 'room-1', seq: 0, id: newId, superseded: true }); // not a confirmation
    socket.push({ type: 'subscribed', channel: 'room-1', seq: 1, id: newId });
    t.publish('room-1');
    expect(later.map((m) => m.seq)).toEqual([2]);
  });

  it('close() closes the socket, reports closed, and never reconnects', async () => {
    const t = setUp();
    t.client.subscribe('room-1', { onMessage: t.onMessage });
    const socket = await t.openSocket();
    t.client.close();
    expect(socket.closedByClient).toBe(true);
    expect(t.client.state).toBe('closed');
    await vi.advanceTimersByTimeAsync(600_000);
    expect(t.sockets.sockets).toHaveLength(1);
    expect(() => t.client.subscribe('room-2', { onMessage: t.onMessage })).toThrow(/closed/);
  });
});
