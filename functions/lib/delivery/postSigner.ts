import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { createHmac, createSecretKey, hash, type KeyObject } from 'node:crypto';

/** The SDK's label encoding: encodeURIComponent plus the characters it leaves alone. */
export const encodeLabel = (value: string) =>
  encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

export interface PostSignerOptions {
  /** host[:port] as sent in the Host header. */
  host: string;
  /** The endpoint's path without a trailing slash ('' or '/{stage}'). */
  basePath: string;
  region: string;
  credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider;
}

/** Signs the request for a post: its path and its headers as a flat [name, value, ...] list (content-length first). */
export type PostSigner = (connectionId: string, frame: string, signingDate?: Date) => Promise<{ path: string; headers: string[] }>;

const service = 'execute-api';
// crypto.hash (Node ≥ 20.12; package.json asks for 20.19) hashes in one call, without a Hash object per digest.
const sha256Hex = (data: string) => hash('sha256', data, 'hex');
// SigV4's header value normalization (what @smithy/signature-v4 does to every signed header).
const canonicalValue = (value: string) => value.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').replace(/^ | $/g, '');

/**
 * SigV4 for the one request shape delivery sends: POST {basePath}/@connections/{id} to one host with
 * content-type application/json. @smithy/signature-v4 signs it too, but its generic request
 * handling (cloning, header sorting and filtering, provider plumbing, async hashing) was most of a
 * post's CPU. Here the signing key is derived once per (credentials, day) — it only changes when
 * either does — and each post costs two SHA-256s and one HMAC over strings built from constants.
 * The result is byte for byte what @smithy/signature-v4 produces (a property test checks it,
 * test/unit/postSigner.test.ts); ids its path normalization would rewrite ('', '.', '..') are
 * signed by @smithy/signature-v4 itself.
 */
export function createPostSigner({ host, basePath, region, credentials }: PostSignerOptions): PostSigner {
  const signer = new SignatureV4({ service, region, sha256: Hash.bind(null, 'sha256'), credentials, applyChecksum: false });
  const provide = typeof credentials === 'function' ? credentials : async () => credentials;
  // The canonical (double-encoded, normalized) path up to the id, computed by smithy itself: the
  // base path's segments don't change, so neither does their canonical form.
  const probe = `${basePath}/@connections/x`;
  const canonicalPrefix = (signer as unknown as { getCanonicalPath(request: { path: string }): string }).getCanonicalPath({ path: probe }).slice(0, -1);
  const hostLine = `host:${canonicalValue(host)}\n`;

  let keyFor:
    | { accessKeyId: string; secret: string; sessionToken: string | undefined; shortDate: string; key: KeyObject; scope: string; credential: string; tokenLine: string }
    | undefined;
  let dateFor: { second: number; longDate: string } | undefined;
  // A fan-out posts one frame string to every subscriber: hash and measure it once, not once per post.
  let lastFrame: string | undefined;
  let lastPayloadHash = '';
  let lastContentLength = '';

  const signingKey = (identity: AwsCredentialIdentity, shortDate: string) => {
    if (
      keyFor?.accessKeyId === identity.accessKeyId &&
      keyFor.secret === identity.secretAccessKey &&
      keyFor.sessionToken === identity.sessionToken &&
      keyFor.shortDate === shortDate
    )
      return keyFor;
    let derived = createHmac('sha256', `AWS4${identity.secretAccessKey}`).update(shortDate).digest();
    for (const part of [region, service, 'aws4_request']) derived = createHmac('sha256', derived).update(part).digest();
    const scope = `${shortDate}/${region}/${service}/aws4_request`;
    const tokenLine = identity.sessionToken ? `x-amz-security-token:${canonicalValue(identity.sessionToken)}\n` : '';
    const key = createSecretKey(derived);
    keyFor = { accessKeyId: identity.accessKeyId, sessionToken: identity.sessionToken, secret: identity.secretAccessKey, shortDate, key, scope, credential: `${identity.accessKeyId}/${scope}`, tokenLine };
    return keyFor;
  };

  return async (connectionId, frame, signingDate) => {
    const label = encodeLabel(connectionId);
    const path = `${basePath}/@connections/${label}`;
    if (frame !== lastFrame) {
      lastPayloadHash = sha256Hex(frame);
      lastContentLength = String(Buffer.byteLength(frame));
      lastFrame = frame;
    }
    const contentLength = lastContentLength;
    if (label === '' || label === '.' || label === '..') {
      const signed = await signer.sign({ method: 'POST', protocol: 'https:', hostname: host, path, query: {}, headers: { host, 'content-type': 'application/json' }, body: frame }, { signingDate });
      const headers = ['content-length', contentLength];
      for (const name in signed.headers) headers.push(name, signed.headers[name]!);
      return { path, headers };
    }
    const identity = await provide();
    if (typeof identity?.accessKeyId !== 'string' || typeof identity.secretAccessKey !== 'string') throw new Error('Resolved credential object is not valid');
    // x-amz-date changes once a second: format it once a second.
    const now = signingDate ? signingDate.getTime() : Date.now();
    const second = Math.floor(now / 1000);
    if (dateFor?.second !== second) dateFor = { second, longDate: new Date(second * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '') };
    const { longDate } = dateFor;
    const signing = signingKey(identity, longDate.slice(0, 8));
    const signedHeaders = signing.tokenLine ? 'content-type;host;x-amz-date;x-amz-security-token' : 'content-type;host;x-amz-date';
    // An encoded label holds only unreserved characters and %XX; encoding it again only turns % into %25.
    const canonicalRequest = `POST\n${canonicalPrefix}${label.replaceAll('%', '%25')}\n\ncontent-type:application/json\n${hostLine}x-amz-date:${longDate}\n${signing.tokenLine}\n${signedHeaders}\n${lastPayloadHash}`;
    const stringToSign = `AWS4-HMAC-SHA256\n${longDate}\n${signing.scope}\n${sha256Hex(canonicalRequest)}`;
    const signature = createHmac('sha256', signing.key).update(stringToSign).digest('hex');
    const headers = ['content-length', contentLength, 'host', host, 'content-type', 'application/json', 'x-amz-date', longDate];
    if (identity.sessionToken) headers.push('x-amz-security-token', identity.sessionToken);
    headers.push('authorization', `AWS4-HMAC-SHA256 Credential=${signing.credential}, SignedHeaders=${signedHeaders}, Signature=${signature}`);
    return { path, headers };
  };
}
