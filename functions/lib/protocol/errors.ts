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
  | 'unsupported_media_type'
  | 'idempotency_key_reused'
  | 'not_connected'
  | 'too_many_subscriptions'
  | 'unauthorized'
  | 'forbidden'
  | 'token_expired'
  | 'unavailable'
  | 'internal_error';

/** The HTTP status of each code that is not a plain 400 (the default of the constructor). */
export const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  unauthorized: 401,
  token_expired: 401,
  forbidden: 403,
  payload_too_large: 413,
  unsupported_media_type: 415,
  // The key names a message that was published with another body (decided in SQL, issue 10).
  idempotency_key_reused: 422,
  not_connected: 410,
  unavailable: 503,
  internal_error: 500,
};

export class CablecarError extends Error {
  override readonly name = 'CablecarError';

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly httpStatus: number = HTTP_STATUS[code] ?? 400,
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
