import fc from 'fast-check';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { createClient, type Message } from '../src/index.js';
import { ChannelLog, fakeHistoryFetch, fakeWebSocketClass, messageFrame, type FakeSocket } from './fakes.js';

/**
 * Property: whatever the wire does — duplicate, reorder, drop message frames (live and replayed),
 * cut the socket, fail history requests, renew the token — each subscription hands over exactly the
 * messages published after it started, once each, in seq order. The server side is a small model
 * of cablecar's (subscribe stores then replays after `after` and answers the last seq sent; fan-out
 * posts to each subscribed socket), with every frame it sends going through the fault schedule.
 */

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

const CHANNELS = ['room-a', 'room-b'];

type Fault = 'deliver' | 'drop' | 'duplicate' | 'delay';
interface Step {
  channel: number;
  fault: Fault;
  delayMs: number;
  cutAfter: boolean;
  waitMs: number;
}

const step = fc.record({
  channel: fc.integer({ min: 0, max: CHANNELS.length - 1 }),
  fault: fc.constantFrom<Fault>('deliver', 'deliver', 'drop', 'duplicate', 'delay'),
  delayMs: fc.integer({ min: 1, max: 2_000 }),
  cutAfter: fc.integer({ min: 0, max: 9 }).map((n) => n < 2),
  waitMs: fc.integer({ min: 0, max: 700 }),
});

it('each subscriber sees exactly 1..N in order under random fault schedules', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(step, { minLength: 1, maxLength: 40 }),
      fc.double({ min: 0, max: 0.5, noNaN: true }),
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      async (steps, replayDropRate, pageSize, seed) => {
        let random = seed;
        const rand = () => ((random = (random * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
        const log = new ChannelLog();
        const subscribed = new Map<FakeSocket, Set<string>>();

        // The server's frames for one socket, through the faults: replayed frames may be dropped too.
        const post = (socket: FakeSocket, frame: unknown, fault: Fault, delayMs = 0) => {
          if (fault === 'drop') return;
          if (fault === 'delay') return void setTimeout(() => socket.push(frame), delayMs);
          socket.push(frame);
          if (fault === 'duplicate') setTimeout(() => socket.push(frame), delayMs);
        };
        const sockets = fakeWebSocketClass((socket, frame) => {
          // Like API Gateway, each frame is handled a moment later by its own invocation.
          setTimeout(() => {
            if (socket.readyState !== 1) return;
            if (frame.action === 'ping') return socket.push({ type: 'pong', id: frame.id });
            if (frame.action === 'unsubscribe') return;
            subscribed.get(socket)!.add(frame.channel);
            let seq = log.lastSeq(frame.channel);
            if (frame.after !== undefined) {
              const replay = log.after(frame.channel, frame.after);
              replay.forEach((m) => post(socket, messageFrame(m), rand() < replayDropRate ? 'drop' : 'deliver'));
              seq = replay.at(-1)?.seq ?? Math.min(frame.after, seq);
            }
            socket.push({ type: 'subscribed', channel: frame.channel, seq, id: frame.id });
          }, 1);
        });
        // History fails now and then (a 503), as a database restart would make it.
        const history = fakeHistoryFetch(log, () =>
          rand() < 0.1 ? Response.json({ error: { code: 'unavailable', message: 'down' } }, { status: 503 }) : undefined,
        );
        let tokens = 0;
        const client = createClient({
          url: 'ws://cablecar.test',
          httpUrl: 'http://cablecar.test',
          WebSocket: sockets.WebSocket,
          fetch: history.fetch,
          token: async () => `token-${++tokens}`,
          gapWaitMs: 300,
          historyPageSize: pageSize,
          backoff: { initialMs: 50, maxMs: 1_000 },
        });
        const errors: string[] = [];
        client.on('error', (e) => errors.push(e.code));
        const received = new Map<string, number[]>(CHANNELS.map((c) => [c, []]));
        for (const channel of CHANNELS) {
          client.subscribe(channel, { onMessage: (m: Message) => received.get(channel)!.push(m.seq) });
        }
        // The server side opens every socket the client makes, a moment after.
        const openNew = () => {
          for (const socket of sockets.sockets) {
            if (!subscribed.has(socket)) {
              subscribed.set(socket, new Set());
              setTimeout(() => socket.readyState === 0 && socket.open(), 5);
            }
          }
        };
        const tick = async (ms: number) => {
          for (let t = 0; t < ms; t += 50) {
            openNew();
            await vi.advanceTimersByTimeAsync(Math.min(50, ms - t));
          }
          openNew();
        };
        await tick(100); // both subscriptions stored: everything from here on is theirs

        for (const [i, s] of steps.entries()) {
          const channel = CHANNELS[s.channel]!;
          const message = log.publish(channel, { i });
          for (const socket of sockets.sockets) {
            if (socket.readyState !== 1 || !subscribed.get(socket)?.has(channel)) continue;
            post(socket, messageFrame(message), s.fault, s.delayMs);
          }
          if (s.cutAfter) sockets.last().cut();
          await tick(s.waitMs);
        }
        // The wire is at least once: a dropped post is redriven, or a later message shows the gap. Model
        // that with one last message per channel that reaches an open socket (a closed one replays it).
        for (const channel of CHANNELS) {
          const message = log.publish(channel, { final: true });
          for (const socket of sockets.sockets) {
            if (socket.readyState === 1 && subscribed.get(socket)?.has(channel)) socket.push(messageFrame(message));
          }
        }
        // Let every timer (gap waits, history retries, backoff) play out: up to a minute of fake time,
        // stopping as soon as every channel is complete.
        const complete = () => CHANNELS.every((c) => received.get(c)!.length >= log.lastSeq(c));
        for (let t = 0; t < 60_000 && !complete(); t += 500) await tick(500);
        await tick(2_000); // and a little more, for a duplicate that would come late

        for (const channel of CHANNELS) {
          const n = log.lastSeq(channel);
          expect(received.get(channel), `${channel}; errors ${errors.join(',')}`).toEqual(Array.from({ length: n }, (_, k) => k + 1));
        }
        // Every new socket asked for a fresh token.
        expect(sockets.sockets.map((s) => new URL(s.url).searchParams.get('token'))).toEqual(
          sockets.sockets.map((_, k) => `token-${k + 1}`),
        );
        client.close();
      },
    ),
    { numRuns: 150 },
  );
  // 150 schedules of simulated minutes: CPU-bound, about 2 s on an idle machine.
}, 30_000);
