import type { Message, WebSocketLike } from '../src/index.js';

/**
 * Scripted stand-ins for the two things the client talks to, for tests under fake timers: a
 * WebSocket class whose instances the test opens, feeds and cuts, and a `fetch` serving history
 * from an in-memory channel log with the HTTP API's shape.
 */

export interface FakeSocket extends WebSocketLike {
  url: string;
  /** Frames the client sent, parsed. */
  sent: any[];
  closedByClient: boolean;
  open(): void;
  push(frame: unknown): void;
  /** The connection drops (as a network failure does): the client sees close 1006. */
  cut(): void;
  /** The upgrade is refused: an error event with `message`, then close, never open. */
  refuse(message: string): void;
}

/** A fresh WebSocket class per test; `sockets` lists every instance the client created, oldest first. */
export function fakeWebSocketClass(onSend?: (socket: FakeSocket, frame: any) => void) {
  const sockets: FakeSocket[] = [];
  class Socket implements FakeSocket {
    readyState = 0;
    sent: any[] = [];
    closedByClient = false;
    onopen: ((event: any) => void) | null = null;
    onmessage: ((event: { data: unknown }) => void) | null = null;
    onclose: ((event: any) => void) | null = null;
    onerror: ((event: any) => void) | null = null;
    constructor(readonly url: string) {
      sockets.push(this);
    }
    send(data: string) {
      if (this.readyState !== 1) throw new Error(`send on a socket in state ${this.readyState}`);
      const frame = JSON.parse(data);
      this.sent.push(frame);
      onSend?.(this, frame);
    }
    close() {
      if (this.readyState === 3) return;
      this.closedByClient = true;
      this.readyState = 3;
      this.onclose?.({ code: 1000 });
    }
    open() {
      this.readyState = 1;
      this.onopen?.({});
    }
    push(frame: unknown) {
      if (this.readyState === 1) this.onmessage?.({ data: JSON.stringify(frame) });
    }
    cut() {
      if (this.readyState === 3) return;
      this.readyState = 3;
      this.onclose?.({ code: 1006 });
    }
    refuse(message: string) {
      this.readyState = 3;
      this.onerror?.({ message });
      this.onclose?.({ code: 1006 });
    }
  }
  return { WebSocket: Socket, sockets, last: () => sockets.at(-1)! };
}

/** Messages published per channel, seq from 1, as the message store keeps them. */
export class ChannelLog {
  readonly channels = new Map<string, Message[]>();

  publish(channel: string, data: unknown = null): Message {
    const list = this.channels.get(channel) ?? [];
    this.channels.set(channel, list);
    const message = { channel, seq: list.length + 1, id: `${channel}-${list.length + 1}`, data, publishedAt: new Date().toISOString() };
    list.push(message);
    return message;
  }

  lastSeq(channel: string): number {
    return this.channels.get(channel)?.length ?? 0;
  }

  after(channel: string, after: number, limit = Infinity): Message[] {
    return (this.channels.get(channel) ?? []).slice(after, after + limit);
  }
}

export const messageFrame = (m: Message) => ({ type: 'message', ...m });

export interface HistoryRequest {
  channel: string;
  after: number;
  limit: number;
  authorization: string | null;
}

/**
 * A `fetch` answering `GET /channels/{channel}/messages?after&limit` from `log` as the HTTP API
 * does; `respond` may answer instead (an error status, say) by returning a Response.
 */
export function fakeHistoryFetch(log: ChannelLog, respond?: (request: HistoryRequest) => Response | undefined) {
  const requests: HistoryRequest[] = [];
  const fetch = async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    const channel = decodeURIComponent(url.pathname.split('/')[2]!);
    const request: HistoryRequest = {
      channel,
      after: Number(url.searchParams.get('after')),
      limit: Number(url.searchParams.get('limit')),
      authorization: new Headers(init?.headers).get('authorization'),
    };
    requests.push(request);
    const answer = respond?.(request);
    if (answer) return answer;
    const messages = log.after(channel, request.after, request.limit);
    const hasMore = log.lastSeq(channel) > request.after + messages.length;
    return Response.json({ channel, messages, hasMore });
  };
  return { fetch: fetch as typeof globalThis.fetch, requests };
}
