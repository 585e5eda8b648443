import type pg from 'pg';
import type { Message } from '../protocol/protocol.js';
import { withDatabase } from './database.js';

export interface PublishedMessage {
  id: string;
  channel: string;
  seq: number;
}

export interface HistoryPage {
  messages: Message[];
  hasMore: boolean;
  /** Set when messages after `after` were pruned by retention: the oldest seq still kept. */
  truncatedBefore?: number | undefined;
}

/** Retention: each channel keeps at most this much history (either may be unset: no limit of that kind). */
export interface RetentionLimits {
  maxAgeSeconds?: number | undefined;
  maxCount?: number | undefined;
}

const UNIQUE_VIOLATION = '23505';

/**
 * Messages in PostgreSQL, the source of truth. `seq` is taken from `channels.last_seq` in the same
 * statement that inserts the message: the row lock on the channel serialises concurrent publishers,
 * and a failed insert rolls the counter back, so seq has no gaps and no duplicates.
 */
export function messageStore(pool: pg.Pool) {
  async function findByIdempotencyKey(channel: string, key: string): Promise<PublishedMessage | undefined> {
    const { rows } = await pool.query<{ id: string; seq: string }>(
      'SELECT id, seq FROM messages WHERE channel = $1 AND idempotency_key = $2',
      [channel, key],
    );
    const row = rows[0];
    return row && { id: row.id, channel, seq: Number(row.seq) };
  }

  return {
    /**
     * Stores a message and returns its seq. With an idempotency key, a repeated publish returns the
     * first one's id and seq instead of storing it twice.
     */
    publish(channel: string, dataJson: string, idempotencyKey?: string): Promise<PublishedMessage & { duplicate: boolean }> {
      return withDatabase(async () => {
        if (idempotencyKey) {
          const existing = await findByIdempotencyKey(channel, idempotencyKey);
          if (existing) return { ...existing, duplicate: true };
        }
        try {
          const { rows } = await pool.query<{ id: string; seq: string }>(
            `WITH next AS (
               INSERT INTO channels (name, last_seq) VALUES ($1, 1)
               ON CONFLICT (name) DO UPDATE SET last_seq = channels.last_seq + 1
               RETURNING last_seq
             )
             INSERT INTO messages (channel, seq, data, idempotency_key)
             SELECT $1, last_seq, $2::json, $3 FROM next
             RETURNING id, seq`,
            [channel, dataJson, idempotencyKey ?? null],
          );
          const row = rows[0]!;
          return { id: row.id, channel, seq: Number(row.seq), duplicate: false };
        } catch (error) {
          // Two publishes with one key raced; the loser answers with the winner's message.
          if (idempotencyKey && (error as { code?: string }).code === UNIQUE_VIOLATION) {
            const existing = await findByIdempotencyKey(channel, idempotencyKey);
            if (existing) return { ...existing, duplicate: true };
          }
          throw error;
        }
      });
    },

    /** Messages with seq > after, oldest first. */
    history(channel: string, after: number, limit: number): Promise<HistoryPage> {
      return withDatabase(async () => {
        const [{ rows }, pruned] = await Promise.all([
          pool.query<{ message: Message }>(
            `SELECT cablecar_message_json(m) AS message FROM messages m
             WHERE m.channel = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3`,
            [channel, after, limit + 1],
          ),
          pool.query<{ pruned_through: string }>('SELECT pruned_through FROM channels WHERE name = $1', [channel]),
        ]);
        const prunedThrough = Number(pruned.rows[0]?.pruned_through ?? 0);
        return {
          messages: rows.slice(0, limit).map((row) => row.message),
          hasMore: rows.length > limit,
          // Read after the page: a prune between the two reads still reports what is missing.
          truncatedBefore: after < prunedThrough ? prunedThrough + 1 : undefined,
        };
      });
    },

    /**
     * The dispatch events of messages published between `withinSeconds` and `olderThanSeconds` ago,
     * oldest channel seq first: what the sweep checks for a completed fan-out.
     */
    publishedBetween({ olderThanSeconds, withinSeconds, limit }: { olderThanSeconds: number; withinSeconds: number; limit: number }) {
      return withDatabase(async () => {
        const { rows } = await pool.query<{ id: string; event: unknown }>(
          `SELECT id, cablecar_dispatch_event(id) AS event FROM messages
            WHERE published_at < clock_timestamp() - make_interval(secs => $1)
              AND published_at >= clock_timestamp() - make_interval(secs => $2)
            ORDER BY channel, seq LIMIT $3`,
          [olderThanSeconds, withinSeconds, limit],
        );
        return rows;
      });
    },

    /** Deletes what every channel keeps beyond its retention; returns how many messages went. */
    prune({ maxAgeSeconds, maxCount }: RetentionLimits): Promise<number> {
      return withDatabase(async () => {
        const { rows } = await pool.query<{ deleted: string }>(
          'SELECT cablecar_prune(make_interval(secs => $1), $2) AS deleted',
          [maxAgeSeconds ?? null, maxCount ?? null],
        );
        return Number(rows[0]?.deleted ?? 0);
      });
    },

    /** The channel's newest seq, 0 for a channel that has none. */
    lastSeq(channel: string): Promise<number> {
      return withDatabase(async () => {
        const { rows } = await pool.query<{ last_seq: string }>('SELECT last_seq FROM channels WHERE name = $1', [channel]);
        return rows[0] ? Number(rows[0].last_seq) : 0;
      });
    },
  };
}

export type MessageStore = ReturnType<typeof messageStore>;
