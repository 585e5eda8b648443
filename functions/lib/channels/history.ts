import * as z from '../validation.js';
import { CablecarError } from '../protocol/errors.js';
import { seq, truncation, type Message } from '../protocol/protocol.js';
import type { MessageStore } from '../stores/messageStore.js';

/** A history page when the client names no `limit` (fewer than the largest allowed). */
const DEFAULT_HISTORY_LIMIT = 100;

const historyQuery = z.object({
  after: z._default(z.pipe(z.coerce.number(), seq), 0),
  limit: z.optional(z.pipe(z.coerce.number(), z.int().check(z.gte(1)))),
});

export interface HistoryQuery {
  after: number;
  limit: number;
}

/** `?after=<seq>&limit=<n>`: after defaults to 0, limit to 100 and is at most `maxLimit`. */
export function parseHistoryQuery(query: Record<string, string | undefined> | undefined, maxLimit: number): HistoryQuery {
  const parsed = historyQuery.safeParse(query ?? {});
  if (!parsed.success) throw new CablecarError('invalid_query', '"after" must be a seq (integer >= 0) and "limit" an integer >= 1');
  const { after, limit = Math.min(DEFAULT_HISTORY_LIMIT, maxLimit) } = parsed.data;
  if (limit > maxLimit) throw new CablecarError('invalid_query', `"limit" is at most ${maxLimit}`);
  return { after, limit };
}

export interface HistoryAnswer {
  channel: string;
  messages: Message[];
  hasMore: boolean;
  truncated?: true;
  oldestSeq?: number;
}

/**
 * The messages after `after`, oldest first. When retention already deleted some of those the client
 * asked for, the answer says so (`truncated`, and `oldestSeq`, where history now starts).
 */
export async function readHistory(channel: string, { after, limit }: HistoryQuery, messages: MessageStore): Promise<HistoryAnswer> {
  const page = await messages.history(channel, after, limit);
  return { channel, messages: page.messages, hasMore: page.hasMore, ...truncation(page.truncatedBefore) };
}
