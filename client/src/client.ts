import type {
  Client,
  ClientError,
  ClientOptions,
  ConnectionState,
  Message,
  SubscribeOptions,
  Subscription,
  WebSocketConstructor,
  WebSocketLike,
} from './types.js';

/** Same rule as the server's (functions/lib/protocol/protocol.ts), so a bad name fails at the call. */
const CHANNEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

/** Server codes after which a subscription may succeed if asked again: the server had a bad moment. */
const RETRYABLE = ['unavailable', 'internal_error'];

type Timer = ReturnType<typeof setTimeout>;

/** One channel's delivery: what was handed over (`last`), what is held past a gap, what is known to exist. */
interface ChannelSub {
  channel: string;
  onMessage: (message: Message<any>) => void;
  onSubscribed?: (seq: number) => void;
  active: boolean;
  /** The last seq handed to onMessage; undefined until the server says where the subscription starts. */
  last: number | undefined;
  /** The highest seq known to exist (held messages, the `subscribed` reply). */
  known: number;
  held: Map<number, Message>;
  gapTimer?: Timer;
  filling: boolean;
  fillFailures: number;
  /** The id and `after` of the subscribe frame awaiting its reply on the current socket. */
  pendingId?: string;
  sentAfter?: number;
  replyTimer?: Timer;
  retryTimer?: Timer;
  retries: number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Creates a client and starts connecting. Per channel it hands each message to `onMessage` exactly
 * once and in seq order, without gaps, whatever the socket does (see the README, "The client").
 */
export function createClient(options: ClientOptions): Client {
  const gapWaitMs = options.gapWaitMs ?? 300;
  const pageSize = options.historyPageSize ?? 100;
  const initialMs = options.backoff?.initialMs ?? 500;
  const maxMs = options.backoff?.maxMs ?? 30_000;
  const pingIntervalMs = options.pingIntervalMs ?? 5 * 60_000;
  const replyTimeoutMs = options.replyTimeoutMs ?? 15_000;
  const maxConnectionMs = options.maxConnectionMs ?? 110 * 60_000;
  const WS: WebSocketConstructor | undefined = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!WS) throw new TypeError('cablecar: no global WebSocket; pass createClient({ WebSocket }) (in Node 20, the ws package)');
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const httpUrl = options.httpUrl.replace(/\/+$/, '');

  const listeners = { state: new Set<(state: ConnectionState) => void>(), error: new Set<(error: ClientError) => void>() };
  const subs = new Map<string, ChannelSub>();
  let state: ConnectionState = 'connecting';
  let socket: WebSocketLike | undefined;
  let isOpen = false;
  let everOpened = false;
  let closed = false;
  let attempt = 0;
  /** Sockets replaced because the server answered token_expired or not_connected, since the last confirmed subscription. */
  let refusedInARow = 0;
  let frameIds = 0;
  let token: string | undefined;
  let reconnectTimer: Timer | undefined;
  let pingTimer: Timer | undefined;
  let pongTimer: Timer | undefined;
  /** The socket's deadline: to open, then to be renewed before API Gateway's cap. */
  let socketTimer: Timer | undefined;

  const emitError = (error: ClientError) => listeners.error.forEach((listener) => listener(error));
  const setState = (next: ConnectionState) => {
    if (state === next) return;
    state = next;
    listeners.state.forEach((listener) => listener(next));
  };
  const backoff = (n: number) => Math.random() * Math.min(maxMs, initialMs * 2 ** n);

  /**
   * Sends a frame with an `id` that replies echo. Subscription changes also carry `rev`, the same
   * ever-growing number: the server applies a connection's changes in rev order, whatever order its
   * concurrent invocations run in (README, "The order of subscription changes").
   */
  function send(frame: Record<string, unknown>): string {
    const n = ++frameIds;
    socket!.send(JSON.stringify({ ...frame, ...(frame.action === 'ping' ? {} : { rev: n }), id: String(n) }));
    return String(n);
  }

  async function freshToken(): Promise<string | undefined> {
    token = typeof options.token === 'function' ? await options.token() : options.token;
    return token;
  }

  // ---- the socket ----

  async function connect(): Promise<void> {
    reconnectTimer = undefined;
    if (closed) return;
    setState(everOpened ? 'reconnecting' : 'connecting');
    let current: string | undefined;
    try {
      current = await freshToken();
    } catch (cause) {
      emitError({ code: 'token_failed', message: 'token() failed; retrying', cause });
      return retryLater();
    }
    if (closed) return;
    if (current !== undefined && jwtExpired(current)) {
      emitError({ code: 'token_expired', message: 'the token has expired' });
      return typeof options.token === 'function' ? retryLater() : shutdown();
    }
    const ws = new WS!(current === undefined ? options.url : `${options.url}${options.url.includes('?') ? '&' : '?'}token=${encodeURIComponent(current)}`);
    socket = ws;
    let failure = '';
    // An upgrade that never completes (a black-holed network) counts as a failed attempt.
    socketTimer = setTimeout(() => {
      emitError({ code: 'connect_failed', message: 'the socket did not open in time' });
      replaceSocket();
    }, replyTimeoutMs);
    ws.onopen = () => {
      if (socket !== ws) return;
      isOpen = everOpened = true;
      attempt = 0;
      setState('open');
      pingTimer = setInterval(ping, pingIntervalMs);
      // Renew before API Gateway's 2-hour cap, spread so that a fleet does not reconnect at once.
      clearTimeout(socketTimer);
      socketTimer = setTimeout(() => replaceSocket(0), maxConnectionMs * (0.9 + Math.random() * 0.1));
      subs.forEach(sendSubscribe);
    };
    ws.onmessage = (event) => {
      if (socket !== ws) return;
      clearTimeout(pongTimer);
      let frame: any;
      try {
        frame = JSON.parse(typeof event.data === 'string' ? event.data : String(event.data));
      } catch {
        return;
      }
      if (frame && typeof frame === 'object') receiveFrame(frame);
    };
    ws.onerror = (event) => {
      failure = String(event?.message ?? event?.error?.message ?? '');
    };
    ws.onclose = () => {
      if (socket !== ws) return;
      const opened = isOpen;
      dropSocket();
      if (!opened) {
        // Browsers hide the HTTP status of a refused upgrade; `ws` puts it in the error message.
        const status = /\b(401|403)\b/.exec(failure)?.[1];
        const code = status === '401' ? 'unauthorized' : status === '403' ? 'forbidden' : 'connect_failed';
        emitError({ code, message: `cannot open the socket${failure ? `: ${failure}` : ''}`, ...(status ? { status: Number(status) } : {}) });
        if (status && typeof options.token !== 'function') return shutdown();
      }
      retryLater();
    };
  }

  /** Forgets the current socket (closing it if it is still there) and every timer tied to it. */
  function dropSocket(): void {
    const ws = socket;
    socket = undefined;
    isOpen = false;
    clearInterval(pingTimer);
    clearTimeout(pongTimer);
    clearTimeout(socketTimer);
    subs.forEach((sub) => {
      clearTimeout(sub.replyTimer);
      clearTimeout(sub.retryTimer);
      sub.pendingId = undefined;
    });
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      // `ws` reports closing a socket that is still connecting as an error event, which Node would
      // throw if nothing listened.
      ws.onerror = () => {};
      try {
        ws.close();
      } catch {
        // already closed
      }
    }
  }

  function retryLater(): void {
    if (closed || reconnectTimer) return;
    setState(everOpened ? 'reconnecting' : 'connecting');
    reconnectTimer = setTimeout(connect, backoff(attempt++));
  }

  /** A socket that stopped answering, or one about to reach its time limit, is replaced. */
  function replaceSocket(delay?: number): void {
    dropSocket();
    if (delay !== undefined && !closed) {
      setState('reconnecting');
      clearTimeout(reconnectTimer);
      reconnectTimer = setTimeout(connect, delay);
    } else retryLater();
  }

  function ping(): void {
    send({ action: 'ping' });
    clearTimeout(pongTimer);
    pongTimer = setTimeout(() => replaceSocket(), replyTimeoutMs);
  }

  function shutdown(): void {
    closed = true;
    clearTimeout(reconnectTimer);
    dropSocket();
    subs.forEach(endSub);
    setState('closed');
  }

  // ---- frames from the server ----

  function receiveFrame(frame: any): void {
    if (frame.type === 'message') {
      const sub = subs.get(frame.channel);
      if (sub && typeof frame.seq === 'number') {
        // A long replay is progress, not silence: the subscribe's reply may come after it.
        if (sub.pendingId !== undefined) awaitReply(sub);
        const { channel, seq, id, data, publishedAt } = frame;
        receive(sub, { channel, seq, id, data, publishedAt });
      }
      return;
    }
    if (frame.type !== 'subscribed' && frame.type !== 'error') return;
    // An error may name no channel this client holds (one it refused as invalid): its id says whose it is.
    const sub =
      subs.get(frame.channel) ?? (frame.type === 'error' && frame.id !== undefined ? [...subs.values()].find((s) => s.pendingId === frame.id) : undefined);
    // A reply that names another frame than the one awaited belongs to an earlier subscription.
    const awaited = sub?.pendingId !== undefined && (frame.id === undefined || frame.id === sub.pendingId) ? sub : undefined;
    if (frame.type === 'error') return serverError(frame, awaited);
    // A superseded `subscribed` answers a change that a later one overtook, whose own reply is still to come.
    if (awaited && !frame.superseded) confirmed(awaited, frame.seq, frame.truncated && frame.oldestSeq);
  }

  function serverError(frame: { code: string; message: string }, sub: ChannelSub | undefined): void {
    const error: ClientError = { code: frame.code, message: frame.message, ...(sub ? { channel: sub.channel } : {}) };
    emitError(error);
    // The first refusal is answered at once with a new socket (and a fresh token); more in a row
    // (a server clock ahead of the token's issuer, say) back off, or the client would spin.
    if (frame.code === 'not_connected' || frame.code === 'token_expired') return replaceSocket(refusedInARow++ ? backoff(refusedInARow) : 0);
    if (!sub) return;
    clearTimeout(sub.replyTimer);
    sub.pendingId = undefined;
    if (RETRYABLE.includes(frame.code)) {
      sub.retryTimer = setTimeout(() => isOpen && sendSubscribe(sub), backoff(sub.retries++));
    } else {
      // forbidden, invalid_channel, a subscription limit: asking again would get the same answer.
      endSub(sub);
    }
  }

  function sendSubscribe(sub: ChannelSub): void {
    sub.sentAfter = sub.last;
    sub.pendingId = send({ action: 'subscribe', channel: sub.channel, ...(sub.last === undefined ? {} : { after: sub.last }) });
    awaitReply(sub);
  }

  function awaitReply(sub: ChannelSub): void {
    clearTimeout(sub.replyTimer);
    sub.replyTimer = setTimeout(() => replaceSocket(), replyTimeoutMs);
  }

  // ---- one channel's order ----

  function confirmed(sub: ChannelSub, seq: number, oldestSeq?: number): void {
    refusedInARow = 0;
    clearTimeout(sub.replyTimer);
    sub.pendingId = undefined;
    sub.retries = 0;
    if (oldestSeq) skipPruned(sub, oldestSeq);
    if (sub.last === undefined) {
      // Without `after`, the subscription starts at the channel's newest seq: older held ones go.
      sub.last = seq;
      sub.held.forEach((_, s) => s <= seq && sub.held.delete(s));
    } else if (sub.sentAfter !== undefined && seq < sub.sentAfter) {
      // The channel is behind what this client had (README: reset to it), so new messages continue from seq.
      emitError({
        code: 'channel_reset',
        channel: sub.channel,
        message: `channel ${sub.channel} is at seq ${seq}, behind the ${sub.sentAfter} this client had; continuing from ${seq}`,
      });
      sub.last = sub.known = seq;
      sub.held.clear();
    }
    sub.known = Math.max(sub.known, seq);
    drain(sub);
    sub.onSubscribed?.(seq);
    // The reply says more exists than arrived: frames were lost, or the replay stopped at its limit.
    if (sub.known > sub.last!) {
      clearTimeout(sub.gapTimer);
      sub.gapTimer = undefined;
      void fill(sub);
    }
  }

  /**
   * Retention deleted messages this subscription has not had (the reply or history says
   * `truncated`, `oldestSeq`): no one can hand them over any more, so waiting for them would stall
   * the channel for good. The application is told which seqs are gone, and delivery goes on from
   * the oldest one kept.
   */
  function skipPruned(sub: ChannelSub, oldestSeq: number): void {
    if (sub.last === undefined || oldestSeq <= sub.last + 1) return;
    emitError({
      code: 'messages_pruned',
      channel: sub.channel,
      message: `seq ${sub.last + 1}..${oldestSeq - 1} of ${sub.channel} were deleted by retention before this client had them; continuing from ${oldestSeq}`,
    });
    sub.last = oldestSeq - 1;
    sub.known = Math.max(sub.known, sub.last);
    sub.held.forEach((_, s) => s <= sub.last! && sub.held.delete(s));
    drain(sub);
  }

  function receive(sub: ChannelSub, message: Message): void {
    if (!sub.active || (sub.last !== undefined && message.seq <= sub.last)) return;
    sub.held.set(message.seq, message);
    sub.known = Math.max(sub.known, message.seq);
    if (sub.last !== undefined) drain(sub);
  }

  function drain(sub: ChannelSub): void {
    let next: Message | undefined;
    while (sub.active && (next = sub.held.get(sub.last! + 1))) {
      sub.held.delete(next.seq);
      sub.last = next.seq;
      try {
        sub.onMessage(next);
      } catch (cause) {
        emitError({ code: 'on_message_failed', channel: sub.channel, message: `onMessage threw on seq ${next.seq}`, cause });
      }
    }
    if (!sub.active) return;
    if (sub.known <= sub.last!) {
      clearTimeout(sub.gapTimer);
      sub.gapTimer = undefined;
    } else if (!sub.gapTimer && !sub.filling) {
      // A later message came first: give the missing one a moment to arrive on its own.
      sub.gapTimer = setTimeout(() => fill(sub), gapWaitMs);
    }
  }

  async function fill(sub: ChannelSub): Promise<void> {
    sub.gapTimer = undefined;
    if (!sub.active || sub.filling || sub.last === undefined) return;
    sub.filling = true;
    let retryIn = 0;
    const from = sub.last;
    try {
      while (sub.active && sub.known > sub.last) {
        const page = await history(sub.channel, sub.last);
        if (page.truncated) skipPruned(sub, page.oldestSeq!);
        page.messages.forEach((message) => receive(sub, message));
        if (!page.hasMore || page.messages.length === 0) break;
      }
      // History had nothing yet for the gap (a reply racing its commit, say): ask again, less and less often.
      retryIn = sub.last > from ? (sub.fillFailures = 0) : backoff(++sub.fillFailures);
    } catch (error) {
      if (error instanceof HttpError && error.status < 500 && error.status !== 429) {
        // The history refuses this channel or seq for good (forbidden, no longer kept): skipping would break
        // the promise silently, so the subscription ends and says why.
        emitError({ code: error.code ?? 'history_failed', channel: sub.channel, status: error.status, message: error.message });
        return endSub(sub);
      }
      emitError({ code: 'history_failed', channel: sub.channel, message: `history of ${sub.channel} failed; retrying`, cause: error });
      retryIn = Math.max(gapWaitMs, backoff(++sub.fillFailures));
    } finally {
      sub.filling = false;
    }
    if (sub.active && sub.known > sub.last && !sub.gapTimer) sub.gapTimer = setTimeout(() => fill(sub), retryIn || gapWaitMs);
  }

  async function history(channel: string, after: number): Promise<{ messages: Message[]; hasMore: boolean; truncated?: boolean; oldestSeq?: number }> {
    const url = `${httpUrl}/channels/${encodeURIComponent(channel)}/messages?after=${after}&limit=${pageSize}`;
    const get = () => doFetch(url, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
    let response = await get();
    // A token that expired since the socket opened: ask for a fresh one once.
    if (response.status === 401 && typeof options.token === 'function') {
      await freshToken();
      response = await get();
    }
    const body: any = await response.json().catch(() => undefined);
    if (!response.ok) {
      throw new HttpError(response.status, body?.error?.code, body?.error?.message ?? `history answered ${response.status}`);
    }
    return body;
  }

  function endSub(sub: ChannelSub): void {
    sub.active = false;
    clearTimeout(sub.gapTimer);
    clearTimeout(sub.replyTimer);
    clearTimeout(sub.retryTimer);
    if (subs.get(sub.channel) === sub) subs.delete(sub.channel);
  }

  // Connect once the caller has had the chance to add listeners.
  reconnectTimer = setTimeout(connect, 0);

  return {
    get state() {
      return state;
    },
    subscribe<T>(channel: string, { after, onMessage, onSubscribed }: SubscribeOptions<T>): Subscription {
      if (!CHANNEL_NAME.test(channel)) throw new TypeError(`cablecar: invalid channel name "${channel}"`);
      if (after !== undefined && !(Number.isSafeInteger(after) && after >= 0)) throw new TypeError('cablecar: after must be a seq (an integer >= 0)');
      if (subs.has(channel)) throw new Error(`cablecar: already subscribed to ${channel}; unsubscribe first`);
      if (closed) throw new Error('cablecar: the client is closed');
      const sub: ChannelSub = {
        channel,
        onMessage,
        onSubscribed,
        active: true,
        last: after,
        known: after ?? 0,
        held: new Map(),
        filling: false,
        fillFailures: 0,
        retries: 0,
      };
      subs.set(channel, sub);
      // Frames wait for the socket: an open socket gets it now, the next one gets every subscription.
      if (isOpen) sendSubscribe(sub);
      return {
        channel,
        unsubscribe() {
          if (!sub.active) return;
          endSub(sub);
          if (isOpen) send({ action: 'unsubscribe', channel });
        },
      };
    },
    on(event: 'state' | 'error', listener: (value: any) => void) {
      const set: Set<(value: any) => void> = listeners[event];
      set.add(listener);
      return () => set.delete(listener);
    },
    close: shutdown,
  };
}

/** True when `token` is a JWT whose `exp` has passed (a token that is not a JWT is left to the server). */
function jwtExpired(token: string): boolean {
  try {
    const payload = JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/')));
    return typeof payload.exp === 'number' && payload.exp * 1000 <= Date.now();
  } catch {
    return false;
  }
}
