import { createServer, type Server } from 'node:http';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TokenConfig } from '../../functions/lib/config.js';
import { tokenVerifierOptions } from '../../functions/lib/tokens/tokenKeys.js';
import { createTokenVerifier, type VerifyToken } from '../../functions/lib/tokens/tokenVerifier.js';
import { rejectedCablecarError } from '../support/cablecarErrors.js';

/**
 * Token verification with jose: HS256 with a shared secret, and RS256/ES256 from a JWKS served by a
 * small HTTP server on 127.0.0.1 (as an identity provider would), with each refusal's code.
 */
// Node 20 here (Lambda runs 22): the SDK's notice about it is noise.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const SECRET = 'local-test-secret-of-more-than-32-characters';
const secretBytes = new TextEncoder().encode(SECRET);
const now = () => Math.floor(Date.now() / 1000);
const grants = { subscribe: ['room-*'], publish: ['room-1'] };

const hs256 = (claims: Record<string, unknown> = grants, key: Uint8Array = secretBytes) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setAudience('cablecar');

const secretVerifier = (extra: { issuer?: string } = {}) =>
  createTokenVerifier({ keys: { kind: 'secret', secret: async () => SECRET }, audience: 'cablecar', ...extra });

async function expectRefused(verify: VerifyToken, token: string, code = 'unauthorized', status = 401) {
  const error = await rejectedCablecarError(verify(token));
  expect({ code: error.code, status: error.httpStatus }).toEqual({ code, status });
  return error;
}

describe('HS256 with a shared secret', () => {
  const verify = secretVerifier();

  it('returns the claims of a valid token', async () => {
    const exp = now() + 600;
    expect(await verify(await hs256().setExpirationTime(exp).sign(secretBytes))).toEqual({ sub: 'alice', exp, ...grants });
  });

  it('grants nothing for a list the token leaves out', async () => {
    const token = await hs256({}).setExpirationTime('10m').sign(secretBytes);
    expect(await verify(token)).toMatchObject({ subscribe: [], publish: [] });
  });

  it('refuses no token, garbage and a token cut short', async () => {
    await expectRefused(verify, '');
    await expectRefused(verify, 'not-a-jwt');
    const valid = await hs256().setExpirationTime('10m').sign(secretBytes);
    await expectRefused(verify, valid.slice(0, -5));
  });

  it('refuses alg "none"', async () => {
    const token = new UnsecuredJWT(grants).setSubject('alice').setAudience('cablecar').setExpirationTime('10m').encode();
    const error = await expectRefused(verify, token);
    expect(error.message).toContain('algorithm');
  });

  it('refuses a wrong signature', async () => {
    const token = await hs256().setExpirationTime('10m').sign(new TextEncoder().encode('another-secret-of-more-than-32-characters'));
    expect((await expectRefused(verify, token)).message).toContain('signature');
  });

  it('refuses a wrong audience, and a missing one', async () => {
    await expectRefused(verify, await hs256().setAudience('someone-else').setExpirationTime('10m').sign(secretBytes));
    const noAudience = await new SignJWT(grants).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setExpirationTime('10m').sign(secretBytes);
    await expectRefused(verify, noAudience);
  });

  it('refuses an expired token with token_expired, beyond the 5 s clock tolerance only', async () => {
    await expectRefused(verify, await hs256().setExpirationTime(now() - 10).sign(secretBytes), 'token_expired');
    expect(await verify(await hs256().setExpirationTime(now() - 2).sign(secretBytes))).toMatchObject({ sub: 'alice' });
  });

  it('refuses a token not yet valid, and one without exp or sub', async () => {
    await expectRefused(verify, await hs256().setNotBefore(now() + 60).setExpirationTime('10m').sign(secretBytes));
    await expectRefused(verify, await hs256().sign(secretBytes));
    const noSub = await new SignJWT(grants).setProtectedHeader({ alg: 'HS256' }).setAudience('cablecar').setExpirationTime('10m').sign(secretBytes);
    await expectRefused(verify, noSub);
  });

  it('refuses claims of the wrong shape: patterns that are not channel patterns, too many, not a list', async () => {
    for (const claims of [{ subscribe: ['room/*'] }, { publish: 'room-*' }, { subscribe: Array.from({ length: 65 }, (_, i) => `r${i}`) }, { subscribe: [''] }]) {
      const error = await expectRefused(verify, await hs256(claims).setExpirationTime('10m').sign(secretBytes));
      expect(error.message).toMatch(/claims are invalid/);
    }
  });

  it('checks the issuer when one is configured', async () => {
    const withIssuer = secretVerifier({ issuer: 'https://backend.example' });
    expect(await withIssuer(await hs256().setIssuer('https://backend.example').setExpirationTime('10m').sign(secretBytes))).toMatchObject({ sub: 'alice' });
    await expectRefused(withIssuer, await hs256().setIssuer('https://elsewhere.example').setExpirationTime('10m').sign(secretBytes));
    await expectRefused(withIssuer, await hs256().setExpirationTime('10m').sign(secretBytes));
  });

  it('answers unavailable (503, not the client\'s fault) when the secret cannot be read', async () => {
    const verify = createTokenVerifier({ keys: { kind: 'secret', secret: async () => Promise.reject(new Error('throttled')) }, audience: 'cablecar' });
    const error = await expectRefused(verify, await hs256().setExpirationTime('10m').sign(secretBytes), 'unavailable', 503);
    expect(error.retryable).toBe(true);
  });
});

describe('RS256 and ES256 from a JWKS URL', () => {
  const ISSUER = 'https://idp.example/';
  let server: Server;
  let jwksUrl: URL;
  let status = 200;
  let requests = 0;
  const keys: Record<string, { privateKey: CryptoKey; jwk: JWK }> = {};

  beforeAll(async () => {
    for (const [kid, alg] of [['rsa-1', 'RS256'], ['ec-1', 'ES256'], ['rsa-unlisted', 'RS256']] as const) {
      const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
      keys[kid] = { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
    }
    server = createServer((_request, response) => {
      requests++;
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ keys: [keys['rsa-1']!.jwk, keys['ec-1']!.jwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    jwksUrl = new URL(`http://127.0.0.1:${(server.address() as { port: number }).port}/.well-known/jwks.json`);
  });
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
  });
  afterEach(() => {
    status = 200;
  });

  const signed = (kid: string, alg: string, issuer = ISSUER) =>
    new SignJWT(grants).setProtectedHeader({ alg, kid }).setSubject('bob').setAudience('cablecar').setIssuer(issuer).setExpirationTime('10m').sign(keys[kid]!.privateKey);
  const jwksVerifier = () => createTokenVerifier({ keys: { kind: 'jwks', url: jwksUrl, issuer: ISSUER }, audience: 'cablecar' });

  it('verifies RS256 and ES256 tokens signed by keys of the set, fetching the set once', async () => {
    const verify = jwksVerifier();
    const before = requests;
    expect(await verify(await signed('rsa-1', 'RS256'))).toMatchObject({ sub: 'bob', ...grants });
    expect(await verify(await signed('ec-1', 'ES256'))).toMatchObject({ sub: 'bob' });
    expect(requests - before).toBe(1);
  });

  it('refuses a wrong issuer, a key outside the set, and an HS256 token (no algorithm confusion)', async () => {
    const verify = jwksVerifier();
    await expectRefused(verify, await signed('rsa-1', 'RS256', 'https://evil.example/'));
    await expectRefused(verify, await signed('rsa-unlisted', 'RS256'));
    const hs = await hs256().setIssuer(ISSUER).setExpirationTime('10m').sign(new TextEncoder().encode(JSON.stringify(keys['rsa-1']!.jwk)));
    await expectRefused(verify, hs);
    await expectRefused(verify, new UnsecuredJWT(grants).setSubject('bob').setAudience('cablecar').setIssuer(ISSUER).setExpirationTime('10m').encode());
  });

  it('answers unavailable, not unauthorized, when the key set cannot be fetched', async () => {
    status = 500;
    await expectRefused(jwksVerifier(), await signed('rsa-1', 'RS256'), 'unavailable', 503);
    const unreachable = createTokenVerifier({ keys: { kind: 'jwks', url: new URL('http://127.0.0.1:1/jwks.json'), issuer: ISSUER }, audience: 'cablecar' });
    await expectRefused(unreachable, await signed('rsa-1', 'RS256'), 'unavailable', 503);
  });
});

describe('key sources from the configuration', () => {
  const config = (overrides: Partial<TokenConfig>): TokenConfig => ({ JWT_AUDIENCE: 'cablecar', JWT_SECRET_CACHE_SECONDS: 300, ...overrides });

  it('reads the HS256 secret from Secrets Manager once and caches it (Secrets Manager mocked)', async () => {
    const secretsManager = mockClient(SecretsManagerClient);
    try {
      const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:cablecar-test-jwt-secret-AbCdEf';
      secretsManager.on(GetSecretValueCommand, { SecretId: arn }).resolves({ SecretString: SECRET });
      const verify = createTokenVerifier(tokenVerifierOptions(config({ JWT_SECRET_ARN: arn })));
      const token = await hs256().setExpirationTime('10m').sign(secretBytes);
      expect(await verify(token)).toMatchObject({ sub: 'alice' });
      expect(await verify(token)).toMatchObject({ sub: 'alice' });
      expect(secretsManager.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    } finally {
      secretsManager.restore();
    }
  });

  it('prefers a JWKS URL, then a Secrets Manager ARN, then the local secret', () => {
    const jwks = tokenVerifierOptions(config({ JWKS_URL: 'https://idp.example/jwks.json', JWT_ISSUER: 'https://idp.example/', JWT_SECRET_ARN: 'arn:x', CABLECAR_JWT_SECRET: SECRET }));
    expect(jwks.keys).toMatchObject({ kind: 'jwks', issuer: 'https://idp.example/' });
    expect(tokenVerifierOptions(config({ JWT_SECRET_ARN: 'arn:x', CABLECAR_JWT_SECRET: SECRET })).keys.kind).toBe('secret');
  });
});
