import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createPostSigner, encodeLabel } from '../../functions/lib/delivery/postSigner.js';

/**
 * The delivery engine's lean SigV4 signer against @smithy/signature-v4 (the source of truth), for
 * the same request: every header it sends, the Authorization above all, must be byte for byte what
 * smithy produces. The stub gateway test (connectionGateway.test.ts) checks signatures independently.
 */
const base64ish = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_';
const connectionId = fc.oneof(
  fc.string({ unit: fc.constantFrom(...base64ish), minLength: 1, maxLength: 24 }),
  fc.constantFrom('abc123=', 'Ja8d/RfH+BoAMCE5Q=', '', '.', '..', '...', 'a b', "!'()*", '%41', '~x', 'é☕', '@connections', 'a/../b'),
  fc.string({ unit: 'binary', maxLength: 12 }),
);
const credentials = fc.record(
  {
    accessKeyId: fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'), minLength: 16, maxLength: 20 }),
    secretAccessKey: fc.string({ unit: fc.constantFrom(...base64ish), minLength: 1, maxLength: 40 }),
    sessionToken: fc.string({ unit: fc.constantFrom(...base64ish), minLength: 1, maxLength: 60 }),
  },
  { requiredKeys: ['accessKeyId', 'secretAccessKey'] },
);
const region = fc.constantFrom('us-east-1', 'eu-central-1', 'ap-southeast-2', 'us-gov-west-1', 'cn-north-1');
const endpoint = fc.record({
  host: fc.constantFrom('abc123.execute-api.eu-central-1.amazonaws.com', '127.0.0.1:3001', 'localhost:8080'),
  basePath: fc.constantFrom('', '/prod', '/dev-stage', '/a b', '/x/y'),
});
// Whole seconds and milliseconds, across day boundaries (the signing key's date) and years.
const signingDate = fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T23:59:59Z'), noInvalidDate: true });

const headerObject = (list: string[]) => {
  const headers: Record<string, string> = {};
  for (let i = 0; i < list.length; i += 2) headers[list[i]!] = list[i + 1]!;
  return headers;
};

describe('createPostSigner (lean SigV4 for PostToConnection)', () => {
  it('signs exactly as @smithy/signature-v4 does, for random ids, bodies, dates, regions and credentials', async () => {
    const body = fc.string({ unit: 'binary', maxLength: 200 });
    await fc.assert(
      fc.asyncProperty(connectionId, body, body, signingDate, region, credentials, endpoint, async (id, frame, earlierFrame, date, region, creds, { host, basePath }) => {
        const sign = createPostSigner({ host, basePath, region, credentials: creds });
        // An earlier post of another frame must not leak into this one's payload hash.
        await sign('earlier', earlierFrame, date);
        const lean = await sign(id, frame, date);
        const path = `${basePath}/@connections/${encodeLabel(id)}`;
        const smithy = new SignatureV4({ service: 'execute-api', region, sha256: Hash.bind(null, 'sha256'), credentials: creds, applyChecksum: false });
        const signed = await smithy.sign(
          { method: 'POST', protocol: 'https:', hostname: host, path, query: {}, headers: { host, 'content-type': 'application/json' }, body: frame },
          { signingDate: date },
        );
        expect(lean.path).toBe(path);
        expect(headerObject(lean.headers)).toEqual({ 'content-length': String(Buffer.byteLength(frame)), ...signed.headers });
      }),
      { numRuns: 500 },
    );
  });

  it('keeps signing correctly when the key changes: a new day, rotated credentials, a session token added', async () => {
    let current: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } = { accessKeyId: 'AKID1', secretAccessKey: 'secret-1' };
    const provider = async () => current;
    const lean = createPostSigner({ host: 'h.example', basePath: '/prod', region: 'us-east-1', credentials: provider });
    const smithy = new SignatureV4({ service: 'execute-api', region: 'us-east-1', sha256: Hash.bind(null, 'sha256'), credentials: provider, applyChecksum: false });
    const check = async (date: Date) => {
      const signed = await smithy.sign(
        { method: 'POST', protocol: 'https:', hostname: 'h.example', path: '/prod/@connections/abc123%3D', query: {}, headers: { host: 'h.example', 'content-type': 'application/json' }, body: '{}' },
        { signingDate: date },
      );
      expect(headerObject((await lean('abc123=', '{}', date)).headers).authorization).toBe(signed.headers.authorization);
    };
    await check(new Date('2026-11-25T23:59:59Z'));
    await check(new Date('2026-11-26T00:00:00Z'));
    current = { accessKeyId: 'AKID2', secretAccessKey: 'secret-2' };
    await check(new Date('2026-11-26T00:00:01Z'));
    current = { ...current, sessionToken: 'token-2' };
    await check(new Date('2026-11-26T00:00:02Z'));
  });

  it('encodes = in a connection id as %3D on the wire and %253D in the signed canonical path', async () => {
    const { path } = await createPostSigner({ host: 'h', basePath: '/prod', region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } })('abc123=', '');
    expect(path).toBe('/prod/@connections/abc123%3D');
  });

  it('rejects credentials without keys, as smithy does', async () => {
    const lean = createPostSigner({ host: 'h', basePath: '', region: 'us-east-1', credentials: async () => ({}) as never });
    await expect(lean('abc', 'x')).rejects.toThrow(/credential/i);
  });
});
