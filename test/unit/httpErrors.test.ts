import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CablecarError } from '../../functions/lib/protocol/errors.js';
import { httpErrors } from '../../functions/lib/middleware/httpErrors.js';
import { wsErrorFrames } from '../../functions/lib/middleware/wsReplies.js';

/**
 * The HTTP error answer and the WebSocket error frame, and the `ServerErrors` metric the release's rollback alarm watches: its
 * dimensions must be exactly those the alarm names (test/deploy checks the alarm's side).
 */
let written: string[];
beforeEach(() => {
  written = [];
  vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'cablecar-prod-publish');
  vi.stubEnv('AWS_LAMBDA_FUNCTION_VERSION', '7');
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    written.push(String(chunk));
    return true;
  });
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

async function answer(error: unknown) {
  const request = { event: {}, context: {}, error, response: undefined, internal: {} } as any;
  await httpErrors().onError!(request);
  return request.response;
}

const serverErrorMetrics = () =>
  written
    .flatMap((chunk) => chunk.split('\n'))
    .filter((line) => line.includes('"ServerErrors"'))
    .map((line) => JSON.parse(line));

describe('httpErrors', () => {
  it('answers a client error with its code and status, and counts no server error', async () => {
    const response = await answer(new CablecarError('invalid_channel', 'bad name'));
    expect(response.statusCode).toBe(400);
    expect(JSON.parse(response.body)).toEqual({ error: { code: 'invalid_channel', message: 'bad name', retryable: false } });
    expect(serverErrorMetrics()).toEqual([]);
  });

  it('answers 503 with Retry-After and counts one ServerErrors for this function version', async () => {
    const response = await answer(new CablecarError('unavailable', 'database down', 503));
    expect(response.statusCode).toBe(503);
    expect(response.headers['retry-after']).toBe('1');
    const [metric, ...more] = serverErrorMetrics();
    expect(more).toEqual([]);
    expect(metric).toMatchObject({ service: 'cablecar', FunctionName: 'cablecar-prod-publish', FunctionVersion: '7', ServerErrors: 1 });
    expect(metric._aws.CloudWatchMetrics).toEqual([
      { Namespace: 'cablecar', Dimensions: [['service', 'FunctionName', 'FunctionVersion']], Metrics: [{ Name: 'ServerErrors', Unit: 'Count' }] },
    ]);
  });

  it('answers an unexpected error with a generic 500, without its details, and counts it', async () => {
    const response = await answer(new Error('secret connection string in here'));
    expect(response.statusCode).toBe(500);
    expect(response.body).not.toContain('secret');
    expect(JSON.parse(response.body).error).toMatchObject({ code: 'internal_error', retryable: true });
    expect(serverErrorMetrics()).toHaveLength(1);
  });
});

describe('wsErrorFrames', () => {
  async function frameFor(error: unknown) {
    const request = { event: { body: '{"action":"subscribe","channel":"room-1","id":"f1"}' }, context: {}, error, response: undefined, internal: {} } as any;
    await wsErrorFrames().onError!(request);
    return { statusCode: request.response.statusCode, frame: JSON.parse(request.response.body) };
  }

  it("answers a client's error with its error frame and counts no server error", async () => {
    const { frame } = await frameFor(new CablecarError('forbidden', 'not yours', 403, { channel: 'room-1' }));
    expect(frame).toEqual({ type: 'error', code: 'forbidden', message: 'not yours', channel: 'room-1', id: 'f1' });
    expect(serverErrorMetrics()).toEqual([]);
  });

  it('counts a server fault (an error frame is a 200 to Lambda, so nothing else would see it) for this function version', async () => {
    for (const error of [new Error('boom'), new CablecarError('unavailable', 'database down', 503)]) {
      const { statusCode, frame } = await frameFor(error);
      expect(statusCode).toBe(200);
      expect(frame).toMatchObject({ type: 'error', channel: 'room-1', id: 'f1' });
    }
    const metrics = serverErrorMetrics();
    expect(metrics).toHaveLength(2);
    for (const metric of metrics) expect(metric).toMatchObject({ FunctionName: 'cablecar-prod-publish', FunctionVersion: '7', ServerErrors: 1 });
  });
});
