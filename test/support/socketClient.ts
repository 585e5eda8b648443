import WebSocket from 'ws';

/**
 * Where SocketClient.connect gets a token when the test gives none: each test stack registers a
 * full-access token for its WebSocket URL (test/support/localStack.ts), so that tests that are not
 * about authorization need not think about it.
 */
const defaultTokens = new Map<string, () => Promise<string>>();

export function registerDefaultToken(websocketUrl: string, mint: () => Promise<string>): void {
  defaultTokens.set(websocketUrl, mint);
}

export function unregisterDefaultToken(websocketUrl: string): void {
  defaultTokens.delete(websocketUrl);
}

/** What refused a connect: the status of the upgrade response (401, 403, 500 …). */
export class ConnectRefused extends Error {
  constructor(readonly status: number) {
    super(`the server refused the WebSocket upgrade with ${status}`);
  }
}

export interface Frame {
  type: string;
  [key: string]: any;
}

/**
 * A real `ws` client that records every frame it receives, with waits that fail with a readable
 * message (what arrived) instead of hanging.
 */
export class SocketClient {
  readonly frames: Frame[] = [];
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      this.frames.push(JSON.parse(String(data)) as Frame);
      this.waiters.forEach((wake) => wake());
    });
  }

  /**
   * Opens a socket to `url` with `?token=`: `token` when given, none when it is null, else the
   * stack's default full-access token. A refused upgrade rejects with ConnectRefused (its status).
   */
  static async connect(url: string, { token }: { token?: string | null } = {}): Promise<SocketClient> {
    const chosen = token === undefined ? await defaultTokens.get(url)?.() : token;
    const target = new URL(url);
    if (chosen !== null && chosen !== undefined) target.searchParams.set('token', chosen);
    const socket = new WebSocket(target);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('unexpected-response', (_request, response) => {
        response.resume();
        reject(new ConnectRefused(response.statusCode ?? 0));
      });
      socket.once('error', reject);
    });
    return new SocketClient(socket);
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  messages(channel?: string): Frame[] {
    return this.frames.filter((f) => f.type === 'message' && (channel === undefined || f.channel === channel));
  }

  /** Waits until `predicate` holds for the frames received so far. */
  async waitUntil(predicate: (frames: Frame[]) => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    if (predicate(this.frames)) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`timed out waiting for ${what}; received: ${JSON.stringify(this.frames).slice(0, 2000)}`));
      }, timeoutMs);
      const check = () => {
        if (!predicate(this.frames)) return;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        resolve();
      };
      this.waiters.push(check);
    });
  }

  /** Sends a frame and waits for the next frame of `type` after it. */
  async request(frame: unknown, type: string): Promise<Frame> {
    const before = this.frames.length;
    this.send(frame);
    await this.waitUntil((frames) => frames.slice(before).some((f) => f.type === type), `a "${type}" frame`);
    return this.frames.slice(before).find((f) => f.type === type)!;
  }

  async subscribe(channel: string, after?: number): Promise<Frame> {
    return this.request({ action: 'subscribe', channel, ...(after === undefined ? {} : { after }) }, 'subscribed');
  }

  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.close();
    });
  }
}

/** The sockets a test file opens, all closed by `closeAll` in its afterAll. */
export function socketsOfThisFile(url: () => string) {
  const open: SocketClient[] = [];
  return {
    async connect(): Promise<SocketClient> {
      const client = await SocketClient.connect(url());
      open.push(client);
      return client;
    },
    closeAll: () => Promise.all(open.map((client) => client.close())),
  };
}
