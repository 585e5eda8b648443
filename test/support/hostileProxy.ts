import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';

/**
 * A WebSocket proxy on 127.0.0.1 that forwards every connection to `upstreamUrl` (path and query,
 * so `?token=` too) and mistreats the `message` frames coming back: it drops some, duplicates some,
 * holds some back so that later ones overtake them, and cuts each connection after a random
 * lifetime. A refused upgrade (the authorizer's 401/403) is refused to the client alike. Control
 * frames (`subscribed`, `pong`, `error`) pass untouched and in order. All choices come from one
 * seeded generator, so a failing seed can be named (timings still vary run to run).
 */
export interface HostileProxyOptions {
  upstreamUrl: string;
  seed: number;
  dropRate?: number;
  duplicateRate?: number;
  /** Share of message frames held back for up to `maxDelayMs`. */
  delayRate?: number;
  maxDelayMs?: number;
  /** Each connection is cut after a random time in this range (ms). */
  lifetimeMs?: [number, number];
}

export interface HostileProxy {
  url: string;
  counts: { connections: number; forwarded: number; dropped: number; duplicated: number; delayed: number; cut: number };
  /** Stops cutting and mistreating: frames pass as they are from now on. */
  calm(): void;
  close(): Promise<void>;
}

export async function startHostileProxy(options: HostileProxyOptions): Promise<HostileProxy> {
  const { dropRate = 0.1, duplicateRate = 0.1, delayRate = 0.2, maxDelayMs = 400, lifetimeMs = [500, 2500] } = options;
  let state = options.seed >>> 0 || 1;
  // xorshift32: small, seedable, good enough to pick faults.
  const random = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  const counts = { connections: 0, forwarded: 0, dropped: 0, duplicated: 0, delayed: 0, cut: 0 };
  let hostile = true;
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };

  // The upstream socket is opened before the client's upgrade is accepted, so that a refusal (401
  // or 403 from the authorizer) reaches the client as the same refused upgrade.
  const upstreams = new WeakMap<object, WebSocket>();
  const opened = new Set<WebSocket>();
  const server = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    verifyClient: (info, accept) => {
      const upstream = new WebSocket(`${options.upstreamUrl}${info.req.url ?? ''}`);
      opened.add(upstream);
      upstream.once('close', () => opened.delete(upstream));
      upstream.once('open', () => {
        upstreams.set(info.req, upstream);
        accept(true);
      });
      upstream.once('unexpected-response', (_request, response) => {
        response.resume();
        accept(false, response.statusCode ?? 502);
      });
      upstream.once('error', () => accept(false, 502));
    },
  });
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));

  server.on('connection', (client, request) => {
    counts.connections++;
    const upstream = upstreams.get(request)!;
    const closeBoth = () => {
      client.terminate();
      upstream.terminate();
    };
    upstream.on('error', closeBoth);
    upstream.on('close', closeBoth);
    if (upstream.readyState !== WebSocket.OPEN) closeBoth();
    client.on('error', closeBoth);
    client.on('close', closeBoth);
    client.on('message', (data) => upstream.readyState === WebSocket.OPEN && upstream.send(String(data)));

    const toClient = (frame: string) => {
      if (client.readyState === WebSocket.OPEN) client.send(frame);
    };
    upstream.on('message', (data) => {
      const frame = String(data);
      counts.forwarded++;
      if (!hostile || !frame.startsWith('{"type":"message"')) return toClient(frame);
      const roll = random();
      if (roll < dropRate) counts.dropped++;
      else if (roll < dropRate + duplicateRate) {
        counts.duplicated++;
        toClient(frame);
        later(random() * maxDelayMs, () => toClient(frame));
      } else if (roll < dropRate + duplicateRate + delayRate) {
        counts.delayed++;
        later(random() * maxDelayMs, () => toClient(frame));
      } else toClient(frame);
    });

    const [min, max] = lifetimeMs;
    later(min + random() * (max - min), () => {
      if (!hostile || client.readyState !== WebSocket.OPEN) return;
      counts.cut++;
      closeBoth();
    });
  });

  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
    counts,
    calm() {
      hostile = false;
    },
    async close() {
      hostile = false;
      timers.forEach(clearTimeout);
      server.clients.forEach((socket) => socket.terminate());
      opened.forEach((socket) => socket.terminate());
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
