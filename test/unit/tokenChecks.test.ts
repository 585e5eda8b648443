import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, APIGatewayRequestAuthorizerEvent, Context } from 'aws-lambda';
import { SignJWT } from 'jose';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { bearerToken, channelAuthorization } from '../../functions/lib/middleware/channelAuthorization.js';
import { httpErrors, jsonResponse } from '../../functions/lib/middleware/httpErrors.js';
import { claimsFromAuthorizerContext, toAuthorizerContext } from '../../functions/lib/tokens/authorizerContext.js';
import { authorizeConnect } from '../../functions/lib/tokens/connectAuthorization.js';
import { connectionClaims } from '../../functions/lib/tokens/connectionClaims.js';
import { requireChannelAccess, type TokenClaims } from '../../functions/lib/tokens/tokenClaims.js';
import { createTokenVerifier } from '../../functions/lib/tokens/tokenVerifier.js';
import { rejectedCablecarError, thrownCablecarError } from '../support/cablecarErrors.js';

/**
 * The checks around verification: channel access for claims, the authorizer's answer and the
 * context it hands to later frames, and the HTTP middleware's answers (never counted as server errors).
 */
const SECRET = 'unit-test-secret-of-more-than-32-characters';
const verify = createTokenVerifier({ keys: { kind: 'secret', secret: async () => SECRET }, audience: 'cablecar' });
const now = () => Math.floor(Date.now() / 1000);
const mint = (claims: Record<string, unknown>, ttlSeconds = 600) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setAudience('cablecar').setExpirationTime(now() + ttlSeconds).sign(new TextEncoder().encode(SECRET));

describe('requireChannelAccess', () => {
  const claims: TokenClaims = { sub: 'alice', exp: now() + 600, subscribe: ['room-*'], publish: ['room-1'] };

  it('allows what a pattern of the action covers and forbids the rest, naming the channel', () => {
    expect(() => requireChannelAccess(claims, 'subscribe', 'room-42')).not.toThrow();
    expect(() => requireChannelAccess(claims, 'publish', 'room-1')).not.toThrow();
    const forbidden = thrownCablecarError(() => requireChannelAccess(claims, 'publish', 'room-2'));
    expect({ code: forbidden.code, status: forbidden.httpStatus, channel: forbidden.channel }).toEqual({ code: 'forbidden', status: 403, channel: 'room-2' });
    expect(thrownCablecarError(() => requireChannelAccess(claims, 'subscribe', 'admin')).code).toBe('forbidden');
  });

  it('says token_expired once exp (plus the clock tolerance) has passed, before looking at patterns', () => {
    const expired = { ...claims, exp: now() - 6 };
    expect(thrownCablecarError(() => requireChannelAccess(expired, 'subscribe', 'room-1')).code).toBe('token_expired');
    expect(thrownCablecarError(() => requireChannelAccess(expired, 'subscribe', 'admin')).code).toBe('token_expired');
  });
});

describe('the $connect authorizer and its context', () => {
  const methodArn = 'arn:aws:execute-api:us-east-1:123456789012:abcdef/prod/$connect';

  it('allows exactly this connect, with the claims as context that later frames read back', async () => {
    const token = await mint({ subscribe: ['room-*', 'user:alice'], publish: [] });
    const result = await authorizeConnect(token, methodArn, verify);
    expect(result.principalId).toBe('alice');
    expect(result.policyDocument.Statement).toEqual([{ Effect: 'Allow', Action: 'execute-api:Invoke', Resource: methodArn }]);
    // Context values must be strings, numbers or booleans (API Gateway's rule).
    for (const value of Object.values(result.context!)) expect(['string', 'number', 'boolean']).toContain(typeof value);
    // serverless-offline hands them back as strings; API Gateway as they were.
    const stringified = Object.fromEntries(Object.entries(result.context!).map(([k, v]) => [k, String(v)]));
    for (const context of [result.context, stringified]) {
      expect(connectionClaims({ ...context, principalId: 'alice', integrationLatency: 42 })).toEqual({
        sub: 'alice',
        exp: expect.any(Number),
        subscribe: ['room-*', 'user:alice'],
        publish: [],
      });
    }
  });

  it('refuses with a 401 error that the handler turns into "Unauthorized"', async () => {
    expect((await rejectedCablecarError(authorizeConnect(undefined, methodArn, verify))).httpStatus).toBe(401);
    expect((await rejectedCablecarError(authorizeConnect(await mint({}, -60), methodArn, verify))).code).toBe('token_expired');
  });

  it('treats a frame without (or with a foreign) authorizer context as unauthorized', () => {
    for (const context of [undefined, {}, { principalId: 'x' }, { sub: 'a', exp: 'soon', subscribe: '[]', publish: '[]' }, { sub: 'a', exp: 1, subscribe: 'room-*', publish: '[]' }]) {
      expect(claimsFromAuthorizerContext(context)).toBeUndefined();
      expect(thrownCablecarError(() => connectionClaims(context)).code).toBe('unauthorized');
    }
    expect(claimsFromAuthorizerContext(toAuthorizerContext({ sub: 'a', exp: 1, subscribe: ['*'], publish: [] }))).toEqual({ sub: 'a', exp: 1, subscribe: ['*'], publish: [] });
  });

  it('the Lambda handler answers API Gateway\'s "Unauthorized" for a refused token, a policy for a valid one', async () => {
    vi.stubEnv('CABLECAR_JWT_SECRET', SECRET);
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true); // its log lines
    try {
      const { handler } = await import('../../functions/ws/authorize.js');
      const run = (token?: string) =>
        new Promise<{ error: unknown; result: unknown }>((resolve) => {
          const event = { type: 'REQUEST', methodArn, queryStringParameters: token === undefined ? null : { token } } as unknown as APIGatewayRequestAuthorizerEvent;
          handler(event, {} as Context, (error, result) => resolve({ error, result }));
        });
      expect(await run()).toEqual({ error: 'Unauthorized', result: undefined });
      expect(await run('garbage')).toEqual({ error: 'Unauthorized', result: undefined });
      const allowed = await run(await mint({ subscribe: ['*'] }));
      expect(allowed.error).toBeNull();
      expect(allowed.result).toMatchObject({ principalId: 'alice', context: { sub: 'alice', subscribe: '["*"]' } });
    } finally {
      vi.unstubAllEnvs();
      vi.restoreAllMocks();
    }
  });
});

describe('HTTP channel authorization (middleware)', () => {
  let written: string[];
  beforeEach(() => {
    written = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });
  });
  afterEach(() => vi.restoreAllMocks());

  const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>()
    .use(httpErrors())
    .use(channelAuthorization('publish', () => verify))
    .handler(async () => jsonResponse(202, { ok: true }));
  const call = async (channel: string, authorization?: string) => {
    const event = { pathParameters: { channel }, headers: authorization === undefined ? {} : { authorization } } as unknown as APIGatewayProxyEventV2;
    const response = (await handler(event, {} as Context)) as APIGatewayProxyStructuredResultV2;
    return { status: response.statusCode, headers: response.headers ?? {}, body: JSON.parse(String(response.body)) };
  };

  it('answers 401 unauthorized (with WWW-Authenticate), 401 token_expired and 403 forbidden, and counts none as a server error', async () => {
    const missing = await call('room-1');
    expect(missing).toMatchObject({ status: 401, body: { error: { code: 'unauthorized', retryable: false } } });
    expect(missing.headers['www-authenticate']).toBe('Bearer realm="cablecar"');
    expect((await call('room-1', 'Bearer garbage')).body.error.code).toBe('unauthorized');
    const expired = await call('room-1', `Bearer ${await mint({ publish: ['*'] }, -60)}`);
    expect(expired).toMatchObject({ status: 401, body: { error: { code: 'token_expired' } } });
    expect(expired.headers['www-authenticate']).toContain('error="invalid_token"');
    const forbidden = await call('room-2', `Bearer ${await mint({ publish: ['room-1'], subscribe: ['*'] })}`);
    expect(forbidden).toMatchObject({ status: 403, body: { error: { code: 'forbidden', retryable: false } } });
    expect(written.filter((line) => line.includes('"ServerErrors"'))).toEqual([]);
  });

  it('lets a covering token through to the handler', async () => {
    expect(await call('room-1', `bearer  ${await mint({ publish: ['room-*'] })}`)).toMatchObject({ status: 202, body: { ok: true } });
  });

  it('reads only "Bearer <token>" from the Authorization header', () => {
    expect(bearerToken({ authorization: 'Bearer abc.def.ghi' })).toBe('abc.def.ghi');
    for (const value of [undefined, '', 'Basic YWxpY2U6c2VjcmV0', 'Bearer', 'Bearer a b', 'abc.def.ghi']) {
      expect(thrownCablecarError(() => bearerToken({ authorization: value })).code).toBe('unauthorized');
    }
  });
});

describe('$connect without the authorizer\'s claims', () => {
  it('is refused with 401 before anything is stored (the route deployed without its authorizer)', async () => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true); // its error log line
    try {
      const { handler } = await import('../../functions/ws/connect.js');
      // No store is configured here: reaching one would throw instead of answering 401.
      const event = { requestContext: { connectionId: 'c-1', routeKey: '$connect', eventType: 'CONNECT' } };
      expect(await handler(event as never, {} as Context)).toEqual({ statusCode: 401 });
    } finally {
      vi.restoreAllMocks();
    }
  });
});
