import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import type { TokenConfig } from '../config.js';
import type { TokenKeys, TokenVerifierOptions } from './tokenVerifier.js';

/**
 * The verifier's settings from the configuration. The HS256 secret in Secrets Manager is read at
 * run time and cached for the container (Powertools Parameters), never passed in the environment.
 */
export function tokenVerifierOptions(config: TokenConfig): TokenVerifierOptions {
  return { keys: tokenKeys(config), audience: config.JWT_AUDIENCE, issuer: config.JWT_ISSUER };
}

function tokenKeys(config: TokenConfig): TokenKeys {
  if (config.JWKS_URL) return { kind: 'jwks', url: new URL(config.JWKS_URL), issuer: config.JWT_ISSUER! };
  if (config.JWT_SECRET_ARN) {
    const arn = config.JWT_SECRET_ARN;
    return {
      kind: 'secret',
      secret: async () => {
        const value = await getSecret<string>(arn, { maxAge: config.JWT_SECRET_CACHE_SECONDS });
        if (typeof value !== 'string' || value.length === 0) throw new Error(`secret ${arn} holds no SecretString`);
        return value;
      },
    };
  }
  const secret = config.CABLECAR_JWT_SECRET!;
  return { kind: 'secret', secret: async () => secret };
}
