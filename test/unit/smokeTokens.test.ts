import { decodeJwt, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { mintSmokeToken, tamperedToken, withToken } from '../../infra/smoke/smokeScenario.js';

/** The tokens `npm run smoke --secret` signs for itself, and the one it expects every stage to refuse. */
const SECRET = 'a-stage-secret-of-at-least-thirty-two-characters';
const key = new TextEncoder().encode(SECRET);

describe('smoke tokens', () => {
  it('mints a short-lived HS256 token for the smoke channels only', async () => {
    const token = await mintSmokeToken({ secret: SECRET });
    const { payload, protectedHeader } = await jwtVerify(token, key, { audience: 'cablecar' });
    expect(protectedHeader.alg).toBe('HS256');
    expect(payload).toMatchObject({ sub: 'cablecar-smoke', subscribe: ['smoke-*'], publish: ['smoke-*'] });
    expect(payload.exp! - payload.iat!).toBe(600);
  });

  it('carries the audience and issuer the stage asks for', async () => {
    const payload = decodeJwt(await mintSmokeToken({ secret: SECRET, audience: 'chat', issuer: 'https://id.example' }));
    expect(payload).toMatchObject({ aud: 'chat', iss: 'https://id.example' });
  });

  it('tampers with the signature only, so that verification fails', async () => {
    const token = await mintSmokeToken({ secret: SECRET });
    const bad = tamperedToken(token);
    expect(bad.split('.').slice(0, 2)).toEqual(token.split('.').slice(0, 2));
    expect(bad).not.toBe(token);
    await expect(jwtVerify(bad, key, { audience: 'cablecar' })).rejects.toThrow(/signature verification failed/);
  });

  it('puts the token in the WebSocket URL, keeping the stage path', () => {
    expect(withToken('wss://abc.execute-api.us-east-1.amazonaws.com/prod', 'a.b.c')).toBe('wss://abc.execute-api.us-east-1.amazonaws.com/prod?token=a.b.c');
  });
});
