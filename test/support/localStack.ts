import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { freeStackPorts, startLocalStack, type LocalStack, type LocalStackOptions } from '../../infra/local/stack.js';
import { registerDefaultToken, SocketClient, unregisterDefaultToken } from './socketClient.js';

/**
 * The real local stack on free ports and a throw-away data folder, for one integration test file.
 * Its log is kept and printed only if start-up fails or CABLECAR_TEST_LOG=1.
 */
// The tests' own SDK clients talk to the local DynamoDB API, which accepts any credentials.
process.env.AWS_ACCESS_KEY_ID ??= 'local';
process.env.AWS_SECRET_ACCESS_KEY ??= 'local';

export async function startTestStack(options: Partial<LocalStackOptions> = {}): Promise<LocalStack & { logLines: string[] }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cablecar-test-'));
  const logLines: string[] = [];
  const echo = process.env.CABLECAR_TEST_LOG === '1';
  try {
    const stack = await startLocalStack({
      dataDir,
      ...(await freeStackPorts()),
      logLevel: 'WARN',
      ...options,
      log: (source, line) => {
        logLines.push(`[${source}] ${line}`);
        if (echo) console.log(`[${source}] ${line}`);
      },
    });
    registerDefaultToken(stack.websocketUrl, () => stack.mintToken());
    return {
      ...stack,
      logLines,
      async stop() {
        unregisterDefaultToken(stack.websocketUrl);
        await stack.stop();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    console.error(logLines.slice(-50).join('\n'));
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}

export type TestStack = Awaited<ReturnType<typeof startTestStack>>;

/**
 * For a test file that needs the stack and one connected client: both start before its tests and
 * stop after them. Read them from the returned object inside the tests.
 */
export function stackAndClientForThisFile(): { stack: TestStack; client: SocketClient } {
  const running = {} as { stack: TestStack; client: SocketClient };
  beforeAll(async () => {
    running.stack = await startTestStack();
    running.client = await SocketClient.connect(running.stack.websocketUrl);
  });
  afterAll(async () => {
    await running.client?.close();
    await running.stack?.stop();
  });
  return running;
}

/** Which token a request carries: a given one, none (null), or by default a full-access token of the stack. */
export interface TokenChoice {
  token?: string | null;
}

async function authorizationHeader(stack: LocalStack, { token }: TokenChoice): Promise<Record<string, string>> {
  const chosen = token === undefined ? await stack.mintToken() : token;
  return chosen === null ? {} : { authorization: `Bearer ${chosen}` };
}

export async function publish(
  stack: LocalStack,
  channel: string,
  data: unknown,
  headers: Record<string, string> = {},
  tokenChoice: TokenChoice = {},
) {
  const response = await fetch(`${stack.httpUrl}/channels/${encodeURIComponent(channel)}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(await authorizationHeader(stack, tokenChoice)), ...headers },
    body: JSON.stringify({ data }),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as any };
}

export async function history(stack: LocalStack, channel: string, query = '', tokenChoice: TokenChoice = {}) {
  const response = await fetch(`${stack.httpUrl}/channels/${encodeURIComponent(channel)}/messages${query}`, {
    headers: await authorizationHeader(stack, tokenChoice),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as any };
}
