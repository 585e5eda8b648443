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
  | 'idempotency_key_reused'
  | 'not_connected'
  | 'unauthorized'
  | 'forbidden'
  | 'token_expired'
  | 'unavailable'
  | 'internal_error';

export class CablecarError extends Error {
  override readonly name = 'CablecarError';

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly httpStatus: number = 400,
    options?: { cause?: unknown; channel?: string },
  ) {
    super(message, options);
    this.channel = options?.channel;
  }

  /** The channel the error is about, when there is one: error frames name it (`forbidden`, …). */
  readonly channel: string | undefined;

  /** Clients may retry these as they are; the others need a different request. */
  get retryable(): boolean {
    return this.httpStatus >= 500;
  }
}

export const databaseUnavailable = (cause: unknown) =>
  new CablecarError('unavailable', 'The message store is unavailable; retry shortly. Nothing was stored.', 503, {
    cause,
  });
