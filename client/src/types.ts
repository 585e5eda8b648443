/** A message as the application receives it: `seq` is gap-free per channel, `id` is unique. */
export interface Message<T = unknown> {
  channel: string;
  seq: number;
  id: string;
  data: T;
  publishedAt: string;
}

/**
 * `connecting`: the first socket is being opened. `open`: a socket is up (subscriptions are being
 * confirmed or are live). `reconnecting`: the socket was lost or is being renewed; subscriptions
 * stay and catch up once it is back. `closed`: `close()` was called or the token can never work.
 */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/**
 * What an `error` event carries. `channel` is set when the error concerns one subscription.
 * Codes the client decides on its own are listed; the server's codes (functions/lib/protocol/errors.ts)
 * come through as they are.
 */
export type ClientErrorCode =
  /** The token does not allow this channel: the subscription is ended (also for other non-retryable refusals). */
  | 'forbidden'
  /** The token's `exp` has passed; with a `token()` function the client asks it again and retries. */
  | 'token_expired'
  /** The server refused the token (HTTP 401 on connect or history). */
  | 'unauthorized'
  /** `token()` threw or rejected; the client retries with backoff. */
  | 'token_failed'
  /** A history request failed (network or 5xx); the client retries with backoff. */
  | 'history_failed'
  /** The channel is behind what the client had (a restored database): delivery continues from the channel's seq. */
  | 'channel_reset'
  /** Retention deleted messages before this client had them (the message names the seqs): delivery continues from the oldest kept. */
  | 'messages_pruned'
  /** The socket could not be opened; the client retries with backoff. */
  | 'connect_failed'
  /** The application's `onMessage` threw; the message counts as delivered. */
  | 'on_message_failed'
  | (string & {});

export interface ClientError {
  code: ClientErrorCode;
  message: string;
  channel?: string;
  /** The HTTP status, for errors from HTTP. */
  status?: number;
  cause?: unknown;
}

/** The part of the WebSocket API the client uses: the browser's, Node 22's global, or the `ws` package's. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface ClientOptions {
  /** The WebSocket API, e.g. `wss://ws.example.com/live` (locally `ws://127.0.0.1:3001`). */
  url: string;
  /** The HTTP API, for history, e.g. `https://api.example.com` (locally `http://127.0.0.1:3000`). */
  httpUrl: string;
  /** A JWT, or a function returning a fresh one; called again at every reconnect. */
  token?: string | (() => string | Promise<string>);
  /** The WebSocket class; optional where there is a global one (browsers, Node ≥ 22). In Node 20 pass `ws`. */
  WebSocket?: WebSocketConstructor;
  /** `fetch` for history; defaults to the global one. */
  fetch?: typeof fetch;
  /** How long a message past a gap is held before the gap is filled from history (ms). */
  gapWaitMs?: number;
  /** Messages asked per history page. */
  historyPageSize?: number;
  /** Reconnect delays: full jitter, a random wait in [0, min(maxMs, initialMs · 2^attempt)]. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Ping period, under API Gateway's 10-minute idle timeout (ms). */
  pingIntervalMs?: number;
  /** A socket that answers neither a ping nor a subscribe within this time is replaced (ms). */
  replyTimeoutMs?: number;
  /** A socket is renewed after this long, before API Gateway's 2-hour cap; spread by up to -10 % (ms). */
  maxConnectionMs?: number;
}

export interface SubscribeOptions<T = unknown> {
  /** Deliver the messages after this seq (replayed from history); without it, the ones published from now on. */
  after?: number;
  onMessage: (message: Message<T>) => void;
  /** Called each time the server confirms the subscription (again after every reconnect), with the seq it starts from. */
  onSubscribed?: (seq: number) => void;
}

export interface Subscription {
  readonly channel: string;
  /** Stops delivery at once and tells the server; safe to call twice. */
  unsubscribe(): void;
}

export interface Client {
  subscribe<T = unknown>(channel: string, options: SubscribeOptions<T>): Subscription;
  on(event: 'state', listener: (state: ConnectionState) => void): () => void;
  on(event: 'error', listener: (error: ClientError) => void): () => void;
  readonly state: ConnectionState;
  /** Closes the socket and ends every subscription; the client cannot be reused. */
  close(): void;
}
