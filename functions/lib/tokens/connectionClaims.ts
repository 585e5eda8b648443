import { CablecarError } from '../protocol/errors.js';
import { claimsFromAuthorizerContext } from './authorizerContext.js';
import type { TokenClaims } from './tokenClaims.js';

/**
 * The claims of the token a connection was opened with, from the authorizer context of its frame.
 * A connection without them was opened before authorization existed (or around it): it must
 * reconnect with a token.
 */
export function connectionClaims(authorizer: unknown): TokenClaims {
  const claims = claimsFromAuthorizerContext(authorizer);
  if (!claims) throw new CablecarError('unauthorized', 'this connection was opened without a token; reconnect with ?token=<JWT>');
  return claims;
}
