import { describe, expect, it } from 'vitest';
import { history, publish, stackAndClientForThisFile } from '../support/localStack.js';

/** Every bad input gets a clear error, loses nothing, and leaves the socket usable. */
const running = stackAndClientForThisFile();

describe('on the socket', () => {
  const cases: Array<[string, unknown, string]> = [
    ['a frame that is not JSON', '{"action": "subscribe", ', 'malformed_json'],
    ['a JSON value that is not an object', '[1,2,3]', 'invalid_frame'],
    ['an unknown action', { action: 'dance' }, 'unknown_action'],
    ['a frame without action', { channel: 'room-1' }, 'unknown_action'],
    ['subscribe without a channel', { action: 'subscribe' }, 'invalid_channel'],
    ['subscribe to an invalid channel name', { action: 'subscribe', channel: 'no spaces/or#hashes' }, 'invalid_channel'],
    ['subscribe to a channel name over 128 characters', { action: 'subscribe', channel: 'a'.repeat(129) }, 'invalid_channel'],
    ['subscribe with a negative after', { action: 'subscribe', channel: 'room-1', after: -1 }, 'invalid_frame'],
    ['subscribe with an unknown field', { action: 'subscribe', channel: 'room-1', since: 3 }, 'invalid_frame'],
    ['unsubscribe from an invalid channel', { action: 'unsubscribe', channel: '' }, 'invalid_channel'],
    ['an oversize frame', { action: 'ping', pad: 'x'.repeat(8 * 1024) }, 'frame_too_large'],
  ];

  it.each(cases)('answers %s with an error frame and keeps the connection usable', async (_name, frame, code) => {
    const error = await running.client.request(frame, 'error');
    // An error names the frame's channel when it has one (a string, valid or not).
    const channel = (frame as { channel?: unknown }).channel;
    expect(error).toEqual({ type: 'error', code, message: expect.any(String), ...(typeof channel === 'string' ? { channel } : {}) });
    expect(error.message.length).toBeGreaterThan(5);
    expect(await running.client.request({ action: 'ping' }, 'pong')).toEqual({ type: 'pong' });
  });

  it('still subscribes and receives after all of that', async () => {
    await running.client.subscribe('after-errors');
    await publish(running.stack, 'after-errors', { ok: true });
    await running.client.waitUntil((f) => f.some((x) => x.type === 'message' && x.channel === 'after-errors'), 'the message');
  });
});

describe('over HTTP', () => {
  const post = async (channel: string, body: string, contentType = 'application/json') =>
    fetch(`${running.stack.httpUrl}/channels/${channel}/messages`, {
      method: 'POST',
      headers: { 'content-type': contentType, authorization: `Bearer ${await running.stack.mintToken()}` },
      body,
    });

  it.each([
    ['a body that is not JSON', 'valid-channel', '{"data": ', 400, 'invalid_body'],
    ['a body without data', 'valid-channel', '{"text":"hi"}', 400, 'invalid_body'],
    ['a body with fields besides data', 'valid-channel', '{"data":1,"extra":2}', 400, 'invalid_body'],
    ['an empty body', 'valid-channel', '', 400, 'invalid_body'],
    ['an invalid channel name', 'bad%23name', '{"data":1}', 400, 'invalid_channel'],
    ['a channel name over 128 characters', 'c'.repeat(129), '{"data":1}', 400, 'invalid_channel'],
  ])('refuses %s with a JSON error', async (_name, channel, body, status, code) => {
    const response = await post(channel, body);
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toContain('application/json');
    expect(await response.json()).toEqual({ error: { code, message: expect.any(String), retryable: false } });
  });

  it('refuses data nested 2,000 levels deep with 400 invalid_body (the limit is 64)', async () => {
    const response = await post('valid-channel', `{"data":${'['.repeat(2000)}${']'.repeat(2000)}}`);
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: { code: 'invalid_body', message: expect.stringContaining('64'), retryable: false } });
  });

  it.each([
    ['text/plain', 'text/plain'],
    ['a form', 'application/x-www-form-urlencoded'],
    // (A body with no Content-Type at all is refused too on AWS, test/unit/publishing.test.ts;
    // serverless-offline fills in application/json for it, so the local stack takes it as JSON.)
  ])('refuses a JSON body sent as %s with 415 unsupported_media_type', async (_name, type) => {
    const response = await post('valid-channel', '{"data":1}', type);
    expect(response.status).toBe(415);
    expect(await response.json()).toEqual({ error: { code: 'unsupported_media_type', message: expect.any(String), retryable: false } });
  });

  it('refuses an oversize payload with 413', async () => {
    const { status, body } = await publish(running.stack, 'valid-channel', 'y'.repeat(200 * 1024));
    expect(status).toBe(413);
    expect(body.error.code).toBe('payload_too_large');
  });

  it('stored none of the refused publishes', async () => {
    expect((await history(running.stack, 'valid-channel')).body.messages).toEqual([]);
  });

  it.each([
    ['a negative after', '?after=-1'],
    ['a non-numeric after', '?after=abc'],
    ['a zero limit', '?limit=0'],
    ['a limit above the maximum', '?limit=100000'],
  ])('refuses history with %s', async (_name, query) => {
    const { status, body } = await history(running.stack, 'valid-channel', query);
    expect(status).toBe(400);
    expect(body.error.code).toBe('invalid_query');
  });
});
