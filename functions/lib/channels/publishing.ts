import * as z from '../validation.js';
import { CablecarError } from '../protocol/errors.js';
import type { MessageStore, PublishedMessage } from '../stores/messageStore.js';
import { jsonNestingDepth, MAX_DATA_DEPTH } from '../protocol/protocol.js';

const publishBody = z.strictObject({ data: z.json() });
const idempotencyKey = z.string().check(z.minLength(1), z.maxLength(200));

/**
 * A publish body is JSON, said so by its Content-Type (`application/json`, optionally with
 * `charset=utf-8`): a form post or a text body is refused before it is read, whatever it holds.
 */
export function requireJsonContentType(contentType: string | undefined): void {
  const [mediaType = '', ...parameters] = (contentType ?? '').toLowerCase().split(';').map((part) => part.trim());
  const charset = parameters.find((parameter) => parameter.startsWith('charset='))?.slice('charset='.length).replace(/"/g, '');
  if (mediaType !== 'application/json' || (charset !== undefined && charset !== 'utf-8')) {
    throw new CablecarError(
      'unsupported_media_type',
      `the body must be sent as Content-Type: application/json (UTF-8), not ${contentType ? `"${contentType.slice(0, 100)}"` : 'without one'}`,
    );
  }
}

/** Parses a publish request's body: `{"data": <any JSON>}`, with data nested at most MAX_DATA_DEPTH deep. */
export function parsePublishBody(body: string | undefined): { data: unknown } {
  // Measured on the text, before anything recursive (zod, JSON.stringify) touches the value;
  // the body's own object is one level.
  if (jsonNestingDepth(body ?? '') > MAX_DATA_DEPTH + 1) {
    throw new CablecarError('invalid_body', `data may nest arrays and objects at most ${MAX_DATA_DEPTH} levels deep`);
  }
  let value: unknown;
  try {
    value = JSON.parse(body ?? '');
  } catch {
    throw new CablecarError('invalid_body', 'body must be JSON: {"data": <any JSON value>}');
  }
  const parsed = publishBody.safeParse(value);
  if (!parsed.success || !('data' in parsed.data)) {
    throw new CablecarError('invalid_body', 'body must be a JSON object {"data": <any JSON value>} with no other fields');
  }
  // The value JSON.parse built, not zod's copy: the copy assigns keys one by one, so a "__proto__" key
  // would become the copy's prototype and vanish from the stored data.
  return { data: (value as { data: unknown }).data };
}

export function parseIdempotencyKey(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const parsed = idempotencyKey.safeParse(value);
  if (!parsed.success) throw new CablecarError('invalid_body', 'Idempotency-Key must be 1-200 characters');
  return parsed.data;
}

/**
 * Publishes a message through cablecar.publish(), which refuses an invalid channel, a frame over
 * API Gateway's 128 KB cap (it would close every subscriber's socket), a reused idempotency key and
 * a value PostgreSQL cannot store, each as the client's error (messageStore.ts, PUBLISH_REFUSALS);
 * the commit-time trigger hands the message to fan-out.
 */
export function publish(
  { channel, data, idempotencyKey }: { channel: string; data: unknown; idempotencyKey?: string },
  messages: MessageStore,
): Promise<PublishedMessage & { duplicate: boolean }> {
  return messages.publish(channel, JSON.stringify(data), idempotencyKey);
}
