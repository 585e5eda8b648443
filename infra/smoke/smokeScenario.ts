import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { mintDevToken } from '../local/devTokens.js';

/**
 * The essential scenario against any stage, local or deployed (`npm run smoke`): connect, subscribe,
 * publish, receive, reconnect with `after` and replay, history, a refused token, a 413. Each step has
 * its own deadline; the first step that fails ends the run with a reason a person can act on.
 * It talks to the stage only through its public URLs, as a browser and a backend would.
 */
export interface SmokeOptions {
  websocketUrl: string;
  httpUrl: string;
  /** A token whose `subscribe` and `publish` patterns cover `smoke-*`… */
  token?: string;
  /** …or the stage's HS256 secret, to mint such tokens for this run. */
  secret?: string;
  audience?: string;
  issuer?: string;
  stepTimeoutMs?: number;
  /** Defaults to a new `smoke-<timestamp>-<random>` channel per run. */
  channel?: string;
}

export interface StepReport {
  step: string;
  ok: boolean;
  ms: number;
  /** What was seen (ok) or why the step failed. */
  detail: string;
}

/** Channels the token has to cover (subscribe and publish). */
export const SMOKE_CHANNEL_PATTERN = 'smoke-*';
const MESSAGES_WHILE_CONNECTED = 3;
const MESSAGES_WHILE_AWAY = 2;
// Over API Gateway's 128 KB per WebSocket message once wrapped in a message frame.
const OVERSIZE_BYTES = 130 * 1024;

class StepFailure extends Error {}

const fail = (reason: string): never => {
  throw new StepFailure(reason);
};

/** Signs a short-lived token for this run, covering the smoke channels only. */
export function mintSmokeToken({ secret, audience = 'cablecar', issuer }: { secret: string; audience?: string; issuer?: string }): Promise<string> {
  return mintDevToken(secret, { sub: 'cablecar-smoke', subscribe: [SMOKE_CHANNEL_PATTERN], publish: [SMOKE_CHANNEL_PATTERN], ttlSeconds: 600, audience, issuer });
}

/** The same token with a signature that no longer matches: any stage must refuse it. */
export function tamperedToken(token: string): string {
  const [header, payload, signature = ''] = token.split('.');
  const first = signature[0] === 'A' ? 'B' : 'A';
  return `${header}.${payload}.${first}${signature.slice(1)}`;
}

export function withToken(url: string, token: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('token', token);
  return parsed.toString();
}

interface Frame {
  type: string;
  [key: string]: any;
}

/** A socket that keeps every frame it received, read through a cursor with a deadline. */
class SmokeSocket {
  private readonly frames: Frame[] = [];
  private read = 0;
  private wake: (() => void) | undefined;
  private closedWith: string | undefined;

  private constructor(private readonly socket: WebSocket) {
    socket.on('message', (data) => {
      try {
        this.frames.push(JSON.parse(String(data)) as Frame);
      } catch {
        this.frames.push({ type: 'unparseable', text: String(data).slice(0, 200) });
      }
      this.wake?.();
    });
    socket.on('close', (code, reason) => {
      this.closedWith = `the socket closed (${code}${reason.length ? ` ${reason}` : ''})`;
      this.wake?.();
    });
  }

  /** Opens the socket, or says how the server refused it (HTTP status of the upgrade). */
  static open(url: string, signal: AbortSignal): Promise<SmokeSocket> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      const abort = () => {
        socket.terminate();
        reject(new StepFailure('the WebSocket did not open in time'));
      };
      signal.addEventListener('abort', abort, { once: true });
      socket.once('open', () => {
        signal.removeEventListener('abort', abort);
        resolve(new SmokeSocket(socket));
      });
      socket.once('unexpected-response', (_request, response) => {
        signal.removeEventListener('abort', abort);
        socket.terminate();
        reject(new StepFailure(`the WebSocket upgrade was refused with HTTP ${response.statusCode}`));
      });
      socket.once('error', (error) => {
        signal.removeEventListener('abort', abort);
        reject(new StepFailure(`cannot open the WebSocket: ${error.message}`));
      });
    });
  }

  send(frame: unknown): void {
    this.socket.send(JSON.stringify(frame));
  }

  /** The next frame not read yet; an `error` frame fails the step with its code. */
  async next(signal: AbortSignal): Promise<Frame> {
    while (this.read >= this.frames.length) {
      if (this.closedWith) fail(this.closedWith);
      if (signal.aborted) fail('no frame arrived in time');
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
      this.wake = undefined;
    }
    const frame = this.frames[this.read++]!;
    if (frame.type === 'error') fail(`the server answered error ${frame.code}: ${frame.message}`);
    return frame;
  }

  close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.close();
      setTimeout(() => {
        this.socket.terminate();
        resolve();
      }, 2000).unref();
    });
  }
}

/**
 * Runs the scenario, reporting each step as it ends. Resolves with every report; the last one is
 * the failure if a step failed (and nothing after it ran).
 */
export async function runSmoke(options: SmokeOptions, report: (step: StepReport) => void = () => {}): Promise<StepReport[]> {
  const { websocketUrl, httpUrl, stepTimeoutMs = 10_000 } = options;
  if (!options.token && !options.secret) throw new Error('give a token (--token) or the stage secret (--secret)');
  const channel = options.channel ?? `smoke-${Date.now()}-${randomBytes(3).toString('hex')}`;
  const token = options.token ?? (await mintSmokeToken({ secret: options.secret!, audience: options.audience, issuer: options.issuer }));
  const reports: StepReport[] = [];
  const sockets: SmokeSocket[] = [];
  const messagesUrl = `${httpUrl.replace(/\/+$/, '')}/channels/${encodeURIComponent(channel)}/messages`;

  const step = async (name: string, run: (signal: AbortSignal) => Promise<string>): Promise<boolean> => {
    const started = performance.now();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), stepTimeoutMs);
    let entry: StepReport;
    try {
      const detail = await Promise.race([
        run(controller.signal),
        new Promise<never>((_, reject) => controller.signal.addEventListener('abort', () => reject(new StepFailure(`no answer within ${stepTimeoutMs} ms`)), { once: true })),
      ]);
      entry = { step: name, ok: true, ms: Math.round(performance.now() - started), detail };
    } catch (error) {
      const reason = error instanceof StepFailure ? error.message : `unexpected: ${(error as Error).message}`;
      entry = { step: name, ok: false, ms: Math.round(performance.now() - started), detail: reason };
    } finally {
      clearTimeout(timer);
    }
    reports.push(entry);
    report(entry);
    return entry.ok;
  };

  const connect = async (signal: AbortSignal) => {
    const socket = await SmokeSocket.open(withToken(websocketUrl, token), signal);
    sockets.push(socket);
    return socket;
  };

  const post = async (data: unknown, signal: AbortSignal, bearer = token) => {
    let response: Response;
    try {
      response = await fetch(messagesUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
        body: JSON.stringify({ data }),
        signal,
      });
    } catch (error) {
      return fail(`POST ${messagesUrl} failed: ${(error as Error).cause ?? (error as Error).message}`);
    }
    const text = await response.text();
    let body: any;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: response.status, body, text };
  };

  const publishOne = async (n: number, signal: AbortSignal): Promise<number> => {
    const { status, body, text } = await post({ smoke: channel, n }, signal);
    if (status !== 202) fail(`publish answered ${status}: ${text.slice(0, 300)}`);
    return body.seq as number;
  };

  /** Publishes messages n = from..to one after the other; returns their seqs. */
  const publishRange = async (from: number, to: number, signal: AbortSignal) => {
    const seqs: number[] = [];
    for (let n = from; n <= to; n++) seqs.push(await publishOne(n, signal));
    const expected = Array.from({ length: to - from + 1 }, (_, i) => from + i);
    if (seqs.join() !== expected.join()) fail(`expected seqs ${expected.join(',')} on a new channel, got ${seqs.join(',')}`);
    return `seq ${seqs.join(', ')}`;
  };

  const checkMessage = (frame: Frame) => {
    if (frame.type !== 'message' || frame.channel !== channel) fail(`expected a message on ${channel}, got ${JSON.stringify(frame).slice(0, 300)}`);
    if (frame.data?.n !== frame.seq) fail(`message seq ${frame.seq} carries ${JSON.stringify(frame.data)}, published as n = ${frame.seq}`);
  };

  try {
    let socket: SmokeSocket | undefined;
    const steps: Array<[string, (signal: AbortSignal) => Promise<string>]> = [
      [
        'connect',
        async (signal) => {
          socket = await connect(signal);
          return websocketUrl;
        },
      ],
      [
        'subscribe',
        async (signal) => {
          socket!.send({ action: 'subscribe', channel });
          const frame = await socket!.next(signal);
          if (frame.type !== 'subscribed' || frame.channel !== channel) fail(`expected "subscribed", got ${JSON.stringify(frame).slice(0, 300)}`);
          if (frame.seq !== 0) fail(`the new channel ${channel} says seq ${frame.seq}, expected 0`);
          return channel;
        },
      ],
      [`publish ${MESSAGES_WHILE_CONNECTED} messages`, (signal) => publishRange(1, MESSAGES_WHILE_CONNECTED, signal)],
      [
        'receive in order',
        async (signal) => {
          // On AWS each dispatch is its own asynchronous invocation: messages may arrive out of
          // order (DESIGN.md); what must hold is that every one arrives and the seqs have no gap.
          const arrived: number[] = [];
          while (new Set(arrived).size < MESSAGES_WHILE_CONNECTED) {
            const frame = await socket!.next(signal);
            checkMessage(frame);
            arrived.push(frame.seq);
          }
          const inOrder = arrived.every((seq, i) => i === 0 || seq > arrived[i - 1]!);
          return `arrived ${arrived.join(', ')}${inOrder ? '' : ' (reordered on the wire: clients restore seq order)'}`;
        },
      ],
      [
        'disconnect',
        async () => {
          await socket!.close();
          return 'closed';
        },
      ],
      [`publish ${MESSAGES_WHILE_AWAY} while away`, (signal) => publishRange(MESSAGES_WHILE_CONNECTED + 1, MESSAGES_WHILE_CONNECTED + MESSAGES_WHILE_AWAY, signal)],
      [
        `reconnect, replay after ${MESSAGES_WHILE_CONNECTED}`,
        async (signal) => {
          socket = await connect(signal);
          socket.send({ action: 'subscribe', channel, after: MESSAGES_WHILE_CONNECTED });
          const replayed: number[] = [];
          for (;;) {
            const frame = await socket.next(signal);
            if (frame.type === 'subscribed') {
              const last = MESSAGES_WHILE_CONNECTED + MESSAGES_WHILE_AWAY;
              const expected = Array.from({ length: MESSAGES_WHILE_AWAY }, (_, i) => MESSAGES_WHILE_CONNECTED + 1 + i);
              // A fan-out of a message published while away may still be in flight when the socket
              // subscribes again, and post it beside the replay: at-least-once delivery, which the
              // client dedupes and orders by seq. What must hold is that every missed seq came.
              const distinct = [...new Set(replayed)].sort((a, b) => a - b);
              if (distinct.join() !== expected.join()) fail(`replayed seq ${replayed.join(', ') || 'nothing'}, expected ${expected.join(', ')}`);
              if (frame.seq !== last) fail(`"subscribed" says seq ${frame.seq} after the replay, expected ${last}`);
              const exact = replayed.join() === expected.join();
              return `replayed ${replayed.join(', ')}${exact ? '' : ' (a live fan-out overlapped the replay: clients drop the duplicate)'}, then subscribed at ${frame.seq}`;
            }
            checkMessage(frame);
            replayed.push(frame.seq);
          }
        },
      ],
      [
        'history',
        async (signal) => {
          const url = `${messagesUrl}?after=0&limit=100`;
          let response: Response;
          try {
            response = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal });
          } catch (error) {
            return fail(`GET ${url} failed: ${(error as Error).cause ?? (error as Error).message}`);
          }
          const text = await response.text();
          if (response.status !== 200) fail(`history answered ${response.status}: ${text.slice(0, 300)}`);
          const body = JSON.parse(text);
          const seqs = (body.messages as Frame[]).map((m) => m.seq);
          const total = MESSAGES_WHILE_CONNECTED + MESSAGES_WHILE_AWAY;
          const expected = Array.from({ length: total }, (_, i) => i + 1);
          if (seqs.join() !== expected.join()) fail(`history holds seq ${seqs.join(', ')}, expected ${expected.join(', ')}`);
          for (const message of body.messages as Frame[]) checkMessage({ ...message, type: 'message' });
          return `${seqs.length} messages, seq 1..${total}`;
        },
      ],
      [
        'bad token refused (WebSocket)',
        async (signal) => {
          let refused: string;
          try {
            const intruder = await SmokeSocket.open(withToken(websocketUrl, tamperedToken(token)), signal);
            await intruder.close();
            return fail('a WebSocket with a tampered token was accepted');
          } catch (error) {
            if (!(error instanceof StepFailure) || !/refused with HTTP 40[13]/.test(error.message)) throw error;
            refused = error.message;
          }
          return refused.replace('the WebSocket upgrade was ', '');
        },
      ],
      [
        'bad token refused (HTTP)',
        async (signal) => {
          const { status, body, text } = await post({ smoke: channel, n: 0 }, signal, tamperedToken(token));
          if (status !== 401) fail(`publish with a tampered token answered ${status}, expected 401: ${text.slice(0, 300)}`);
          return `401 ${body?.error?.code ?? ''}`.trim();
        },
      ],
      [
        'oversize publish refused',
        async (signal) => {
          const { status, body, text } = await post({ smoke: channel, filler: 'x'.repeat(OVERSIZE_BYTES) }, signal);
          if (status !== 413 || body?.error?.code !== 'payload_too_large') fail(`a ${OVERSIZE_BYTES}-byte message answered ${status}, expected 413 payload_too_large: ${text.slice(0, 300)}`);
          return '413 payload_too_large';
        },
      ],
    ];
    for (const [name, run] of steps) {
      if (!(await step(name, run))) break;
    }
  } finally {
    await Promise.all(sockets.map((socket) => socket.close()));
  }
  return reports;
}
