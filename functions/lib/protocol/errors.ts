/**
 * The errors a client can be told about. Each carries a stable `code` (part of the wire protocol and
 * the HTTP API) and the HTTP status it maps to; anything else is an internal error.
 */
export type ErrorCode =
  | 'malformed_json'
  | 'invalid_frame'
  | 'unknown_action'
  | 'frame_too_large'
  | 'invalid_channel'
  | 'invalid_body'
  | 'invalid_query'
  | 'payload_too_large'
  | 'not_connected'
  | 'too_many_subscriptions'
  | 'unavailable'
  | 'internal_error';

export class CablecarError extends Error {
  override readonly name = 'CablecarError';

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly httpStatus: number = 400,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Clients may retry these as they are; the others need a different request. */
  get retryable(): boolean {
    return this.httpStatus >= 500;
  }
}

export const databaseUnavailable = (cause: unknown) =>
  new CablecarError('unavailable', 'The message store is unavailable; retry shortly. Nothing was stored.', 503, {
    cause,
  });
