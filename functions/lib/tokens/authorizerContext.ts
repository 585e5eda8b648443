import * as z from '../validation.js';
import { channelPatternList } from './channelPatterns.js';
import type { TokenClaims } from './tokenClaims.js';

/**
 * The claims a $connect authorizer hands to API Gateway, which passes them as
 * `requestContext.authorizer` to every later route of that connection (serverless-offline does the
 * same). Context values must be strings, numbers or booleans, so the pattern lists travel as JSON.
 */
export type AuthorizerContext = { sub: string; exp: number; subscribe: string; publish: string };

export const toAuthorizerContext = (claims: TokenClaims): AuthorizerContext => ({
  sub: claims.sub,
  exp: claims.exp,
  subscribe: JSON.stringify(claims.subscribe),
  publish: JSON.stringify(claims.publish),
});

// Text that is not JSON becomes undefined, which the pattern list then refuses.
const patternsJson = z.pipe(
  z.pipe(
    z.string(),
    z.transform((text: string): unknown => {
      try {
        return JSON.parse(text);
      } catch {
        return undefined;
      }
    }),
  ),
  channelPatternList,
);

// Values may come back as strings (serverless-offline stringifies every one), hence the coercion.
const authorizerContextSchema = z.object({
  sub: z.string().check(z.minLength(1)),
  exp: z.pipe(z.coerce.number(), z.int()),
  subscribe: patternsJson,
  publish: patternsJson,
});

/** The connection's claims, or undefined when it was not authorized by this authorizer (no or foreign context). */
export function claimsFromAuthorizerContext(context: unknown): TokenClaims | undefined {
  const parsed = authorizerContextSchema.safeParse(context);
  return parsed.success ? parsed.data : undefined;
}
