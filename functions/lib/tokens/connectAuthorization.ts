import type { APIGatewayAuthorizerResult } from 'aws-lambda';
import { toAuthorizerContext } from './authorizerContext.js';
import type { VerifyToken } from './tokenVerifier.js';

/**
 * The $connect decision: the token in the URL (`?token=`) verified, its claims returned as an IAM
 * policy allowing this one connect, with the claims as the context every later frame receives.
 * A refused token throws (a CablecarError with status 401); the handler turns that into API
 * Gateway's "Unauthorized".
 */
export async function authorizeConnect(
  token: string | undefined,
  methodArn: string,
  verifyToken: VerifyToken,
): Promise<APIGatewayAuthorizerResult> {
  const claims = await verifyToken(token ?? '');
  return {
    principalId: claims.sub,
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'execute-api:Invoke', Resource: methodArn }],
    },
    context: toAuthorizerContext(claims),
  };
}
