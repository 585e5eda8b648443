import { z } from 'zod';
import { CablecarError } from '../protocol/errors.js';
import type { MessageStore, PublishedMessage } from '../stores/messageStore.js';

const publishBody = z.object({ data: z.json() }).strict();
const idempotencyKey = z.string().min(1).max(200);

/** Parses a publish request's body: `{"data": <any JSON>}`. */
export function parsePublishBody(body: string | undefined): { data: unknown } {
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
 * API Gateway's 128 KB cap (it would close every subscriber's socket) and a reused idempotency key;
 * the commit-time trigger hands the message to fan-out.
 */
export async function publish(
  { channel, data, idempotencyKey }: { channel: string; data: unknown; idempotencyKey?: string },
  messages: MessageStore,
): Promise<PublishedMessage & { duplicate: boolean }> {
  return messages.publish(channel, JSON.stringify(data), idempotencyKey);
}
