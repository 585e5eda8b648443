import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';

/**
 * Dev tokens for the local stack's demo page: HS256 JWTs with the claims of the token contract
 * (sub, exp, aud `cablecar`, `subscribe` and `publish` channel patterns), signed with
 * CABLECAR_JWT_SECRET. The one place the demo mints tokens, so that the stack's own
 * `mintToken(claims)` (issue 6) can replace it in one line.
 */
export interface DevTokenClaims {
  sub: string;
  subscribe: string[];
  publish: string[];
  /** Lifetime in seconds (default one hour). */
  ttlSeconds?: number;
}

export type MintToken = (claims: DevTokenClaims) => Promise<string>;

export function devTokenMinter(secret: string = process.env.CABLECAR_JWT_SECRET ?? randomBytes(32).toString('base64url')): MintToken {
  const key = new TextEncoder().encode(secret);
  return ({ sub, subscribe, publish, ttlSeconds = 3600 }) =>
    new SignJWT({ subscribe, publish })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(sub)
      .setAudience('cablecar')
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
      .sign(key);
}
