import * as z from '../validation.js';
import { CablecarError } from '../protocol/errors.js';
import { anyPatternMatches, channelPatternList } from './channelPatterns.js';

/**
 * What a verified token grants: who holds it (`sub`), until when (`exp`, seconds since the epoch),
 * and the channel patterns it may subscribe to (and read the history of) and publish to. A list the
 * token leaves out grants nothing.
 */
export interface TokenClaims {
  sub: string;
  exp: number;
  subscribe: string[];
  publish: string[];
}

export const tokenClaimsSchema = z.object({
  sub: z.string({ error: '"sub" is required and must be a string' }).check(z.minLength(1), z.maxLength(256)),
  exp: z.int({ error: '"exp" is required and must be a number' }),
  subscribe: z._default(channelPatternList, []),
  publish: z._default(channelPatternList, []),
});

export type ChannelAction = 'subscribe' | 'publish';

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Tolerated clock difference between the machine that minted a token and the one checking it. */
export const CLOCK_TOLERANCE_SECONDS = 5;

export const tokenExpired = () =>
  new CablecarError('token_expired', 'the token has expired; get a new one (and reconnect with it)');

/**
 * Refuses `action` on `channel` unless the claims are still valid and one of the action's patterns
 * covers the channel. Claims read back from a connection's authorizer context were verified at
 * $connect, possibly long ago, hence the expiry check here too.
 */
export function requireChannelAccess(claims: TokenClaims, action: ChannelAction, channel: string, now = nowSeconds()): void {
  if (claims.exp + CLOCK_TOLERANCE_SECONDS <= now) throw tokenExpired();
  if (!anyPatternMatches(claims[action], channel)) {
    throw new CablecarError('forbidden', `the token does not allow ${action} on channel "${channel}"`, 403, { channel });
  }
}
