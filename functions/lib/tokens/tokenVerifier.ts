import { createRemoteJWKSet, errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { CablecarError } from '../protocol/errors.js';
import { CLOCK_TOLERANCE_SECONDS, tokenClaimsSchema, tokenExpired, type TokenClaims } from './tokenClaims.js';

/**
 * Where the keys that sign tokens come from: a shared HS256 secret (read through an async provider,
 * so that on AWS it comes from Secrets Manager at run time, cached), or the JWKS of an identity
 * provider (Cognito, Auth0, your own) for RS256/ES256, together with that provider's issuer.
 */
export type TokenKeys =
  | { kind: 'secret'; secret: () => Promise<string> }
  | { kind: 'jwks'; url: URL; issuer: string };

export interface TokenVerifierOptions {
  keys: TokenKeys;
  /** The `aud` every token must carry. */
  audience: string;
  /** The `iss` every token must carry (always set for JWKS; optional for the shared secret). */
  issuer?: string;
}

export type VerifyToken = (token: string) => Promise<TokenClaims>;

const SECRET_ALGORITHMS = ['HS256'];
const JWKS_ALGORITHMS = ['RS256', 'ES256'];

export const unauthorized = (why: string) => new CablecarError('unauthorized', `the token was refused: ${why}`);

const keyUnavailable = (cause: unknown) =>
  new CablecarError('unavailable', 'the keys that verify tokens cannot be read right now; retry shortly', 503, { cause });

/**
 * Verifies a compact JWT with jose and returns its claims. A token the client can fix (missing,
 * malformed, `alg: none` or an algorithm not allowed, wrong signature, audience or issuer, not yet
 * valid, no `exp`, claims of the wrong shape) is `unauthorized`, an expired one `token_expired`
 * (both 401); keys that cannot be read are `unavailable` (503), the server's fault, not the client's.
 */
export function createTokenVerifier({ keys, audience, issuer }: TokenVerifierOptions): VerifyToken {
  const encoder = new TextEncoder();
  let secretKey: { text: string; bytes: Uint8Array } | undefined;
  const jwks: JWTVerifyGetKey | undefined = keys.kind === 'jwks' ? createRemoteJWKSet(keys.url) : undefined;
  const expectedIssuer = keys.kind === 'jwks' ? keys.issuer : issuer;

  const key = async (): Promise<Uint8Array | JWTVerifyGetKey> => {
    if (jwks) return jwks;
    let text: string;
    try {
      text = await (keys as Extract<TokenKeys, { kind: 'secret' }>).secret();
    } catch (error) {
      throw keyUnavailable(error);
    }
    if (secretKey?.text !== text) secretKey = { text, bytes: encoder.encode(text) };
    return secretKey.bytes;
  };

  return async (token) => {
    if (!token) throw unauthorized('no token');
    const verifyingKey = await key();
    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(token, verifyingKey as Uint8Array, {
        algorithms: jwks ? JWKS_ALGORITHMS : SECRET_ALGORITHMS,
        audience,
        issuer: expectedIssuer,
        requiredClaims: ['exp', 'sub'],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      }));
    } catch (error) {
      throw refusal(error);
    }
    const claims = tokenClaimsSchema.safeParse(payload);
    if (!claims.success) {
      const issue = claims.error.issues[0];
      throw unauthorized(`its claims are invalid (${issue?.path.join('.') || 'payload'}: ${issue?.message ?? 'invalid'})`);
    }
    return claims.data;
  };
}

/** Maps what jose threw to the client's error, or to `unavailable` when the key set could not be read. */
function refusal(error: unknown): CablecarError {
  if (error instanceof errors.JWTExpired) return tokenExpired();
  // The key set did not arrive, or is broken: jose's generic error is what a non-200 answer or a
  // body that is not JSON gives.
  if (
    error instanceof errors.JWKSTimeout ||
    error instanceof errors.JWKSInvalid ||
    error instanceof errors.JWKInvalid ||
    (error instanceof errors.JOSEError && error.code === errors.JOSEError.code)
  ) {
    return keyUnavailable(error);
  }
  if (error instanceof errors.JWTClaimValidationFailed) return unauthorized(error.message);
  if (error instanceof errors.JWSSignatureVerificationFailed) return unauthorized('the signature does not verify');
  if (error instanceof errors.JOSEAlgNotAllowed) return unauthorized('its algorithm is not allowed');
  if (error instanceof errors.JWKSNoMatchingKey) return unauthorized('no key of the key set matches it');
  if (error instanceof errors.JOSEError) return unauthorized('it is not a valid JWT');
  // Anything else comes from fetching the key set (network, HTTP status): not the client's fault.
  return keyUnavailable(error);
}
