import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostToConnection, RetryablePostError } from '../../functions/lib/delivery/connectionGateway.js';
import { freePort } from '../../infra/local/stack.js';
import { startStubGateway, type StubGateway } from '../support/stubGateway.js';

/**
 * The delivery engine against a stub management API on 127.0.0.1 that checks each request's SigV4
 * signature with its own implementation (test/support/stubGateway.ts). serverless-offline's real
 * @connections endpoint is exercised by the integration tests (test/integration/messagePath.test.ts).
 */
const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const region = 'eu-central-1';
let stub: StubGateway;

beforeAll(async () => {
  stub = await startStubGateway({
    verifyWith: { ...credentials, region },
    gone: new Set(['gone-1']),
    answer: (id) => ({ 'throttled-1': 429, 'broken-1': 502, 'bad-1': 400 })[id],
  });
});
afterAll(async () => stub?.close());

const engine = (options: Partial<Parameters<typeof createPostToConnection>[0]> = {}) =>
  createPostToConnection({ endpoint: stub.endpoint, region, maxSockets: 4, credentials, ...options });

describe('createPostToConnection (SigV4 over a keep-alive pool) against a stub gateway', () => {
  it('posts the frame, signed so that an independent SigV4 check accepts it, to the id-encoded path', async () => {
    const post = engine();
    const id = 'Ja8d/RfH+BoAMCE5Q=';
    const frame = '{"type":"message","data":"é☕"}';
    expect(await post(id, frame)).toBe('delivered');
    expect(stub.delivered.get(id)).toBe(1);
    expect(stub.lastBodies.get(id)).toBe(frame);
    expect(stub.counts.rejected).toBe(0);
  });

  it('is refused (403, not retryable) when signed with the wrong secret', async () => {
    const post = engine({ credentials: { ...credentials, secretAccessKey: 'wrong' } });
    const failure = await post('someone', 'x').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Error);
    expect(failure).not.toBeInstanceOf(RetryablePostError);
    expect(String((failure as Error).message)).toContain('403');
  });

  it('signs with credentials from a provider (the default chain is one), including a session token', async () => {
    let calls = 0;
    const post = engine({
      credentials: async () => {
        calls++;
        return { ...credentials, sessionToken: 'token-1' };
      },
    });
    expect(await post('with-provider', 'x')).toBe('delivered');
    expect(calls).toBeGreaterThan(0);
  });

  it('answers gone for 410, and RetryablePostError with the status for 429 and 5xx', async () => {
    const post = engine();
    expect(await post('gone-1', 'x')).toBe('gone');
    await expect(post('throttled-1', 'x')).rejects.toMatchObject({ name: 'RetryablePostError', status: 429 });
    await expect(post('broken-1', 'x')).rejects.toMatchObject({ name: 'RetryablePostError', status: 502 });
    await expect(post('bad-1', 'x')).rejects.toThrow(/answered 400: .*status 400/);
  });

  it('reuses keep-alive sockets: 200 posts open at most maxSockets connections', async () => {
    const before = stub.sockets;
    const post = engine({ maxSockets: 3 });
    const outcomes = await Promise.all(Array.from({ length: 200 }, (_, i) => post(`pooled-${i}`, 'x')));
    expect(outcomes.every((outcome) => outcome === 'delivered')).toBe(true);
    expect(stub.sockets - before).toBeLessThanOrEqual(3);
  });

  it('turns a refused connection into a retryable network error', async () => {
    const post = createPostToConnection({ endpoint: `http://127.0.0.1:${await freePort()}/prod`, region, maxSockets: 1, credentials });
    await expect(post('anyone', 'x')).rejects.toMatchObject({ name: 'RetryablePostError', status: undefined });
  });

  it('turns a connection reset before the answer into a retryable network error', async () => {
    const resetting = createServer((request) => request.socket.destroy());
    await new Promise<void>((resolve) => resetting.listen(0, '127.0.0.1', resolve));
    try {
      const endpoint = `http://127.0.0.1:${(resetting.address() as AddressInfo).port}/prod`;
      const post = createPostToConnection({ endpoint, region, maxSockets: 1, credentials });
      await expect(post('anyone', 'x')).rejects.toMatchObject({ name: 'RetryablePostError', status: undefined });
    } finally {
      await new Promise((resolve) => resetting.close(resolve));
    }
  });

  it('does not pass a request it could not even send (an invalid header) off as a retryable network error', async () => {
    const post = engine({ credentials: { ...credentials, sessionToken: 'line\nbreak' } });
    const failure = await post('someone', 'x').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Error);
    expect(failure).not.toBeInstanceOf(RetryablePostError);
  });

  it('gives up on a gateway that does not answer within the timeout, retryably', async () => {
    const silent = createServer(() => {}); // accepts, never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const endpoint = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/prod`;
      const post = createPostToConnection({ endpoint, region, maxSockets: 1, credentials, timeoutMs: 200 });
      const started = Date.now();
      await expect(post('anyone', 'x')).rejects.toMatchObject({ name: 'RetryablePostError' });
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
