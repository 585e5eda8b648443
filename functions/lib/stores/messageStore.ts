import type pg from 'pg';
import type { Message } from '../protocol/protocol.js';
import { CablecarError } from '../protocol/errors.js';
import { isDatabaseUnavailable, withDatabase } from './database.js';

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

/** Where a page of unconfirmedBetween ended: the last message's publication time (as text, exact), channel and seq. */
export interface PublishedCursor {
  publishedAt: string;
  channel: string;
  seq: number;
}

/** Retention: each channel keeps at most this much history (either may be unset: no limit of that kind). */
export interface RetentionLimits {
  maxAgeSeconds?: number | undefined;
  maxCount?: number | undefined;
}

/**
 * The SQLSTATEs cablecar.publish() refuses with (infra/sql/migrations/003_sql_publish.sql), and the
 * HTTP API's error for each.
 */
export const PUBLISH_REFUSALS: Record<string, (message: string) => CablecarError> = {
  CC001: (message) => new CablecarError('invalid_channel', message),
  CC002: (message) => new CablecarError('payload_too_large', message),
  CC003: (message) => new CablecarError('idempotency_key_reused', message),
  CC004: (message) => new CablecarError('invalid_body', message),
};

/**
 * What cablecar.publish() refused, as the client's error: its own SQLSTATEs, and PostgreSQL refusing
 * the value itself (class 22, data exception, e.g. a text it cannot store; 54001, nesting beyond its
 * stack), which is the body's fault, not the server's. Nothing was stored either way.
 */
function asPublishRefusal(error: unknown): unknown {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string') return error;
  const refusal = PUBLISH_REFUSALS[code];
  if (refusal) return refusal((error as Error).message);
  if (code.startsWith('22') || code === '54001') {
    return new CablecarError('invalid_body', 'PostgreSQL cannot store this data as JSON; nothing was stored', 400, { cause: error });
  }
  return error;
}

/**
 * Messages in PostgreSQL, the source of truth. Publishing is cablecar.publish(), the same function
 * applications call from their own transactions: it checks the channel name, the frame cap and the
 * idempotency key, and takes the channel's next seq under the channel's row lock, so seq has no
 * gaps and no duplicates.
 */
export function messageStore(pool: pg.Pool) {
  /** With a key, whether the answer is a message stored earlier: exactly, as the same transaction asks. */
  async function publishWithKey(channel: string, dataJson: string, idempotencyKey: string) {
    const client = await pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{ id: string; seq: string }>(
        'SELECT id, seq FROM cablecar.publish($1, $2::json, $3)',
        [channel, dataJson, idempotencyKey],
      );
      const row = rows[0]!;
      // A row this transaction inserted is new; any other is the first publish with this key.
      const fresh = await client.query<{ fresh: boolean }>(
        'SELECT xmin = pg_current_xact_id()::xid AS fresh FROM cablecar.messages WHERE id = $1',
        [row.id],
      );
      await client.query('COMMIT');
      return { id: row.id, channel, seq: Number(row.seq), duplicate: !fresh.rows[0]!.fresh };
    } catch (error) {
      broken = isDatabaseUnavailable(error);
      if (!broken) await client.query('ROLLBACK').catch(() => (broken = true));
      throw error;
    } finally {
      client.release(broken);
    }
  }

  return {
    /**
     * Stores a message and returns its seq. With an idempotency key, a repeat with the same data
     * returns the first one's id and seq instead of storing it twice; other data is refused (422).
     */
    publish(channel: string, dataJson: string, idempotencyKey?: string): Promise<PublishedMessage & { duplicate: boolean }> {
      return withDatabase(async () => {
        try {
          if (idempotencyKey !== undefined) return await publishWithKey(channel, dataJson, idempotencyKey);
          const { rows } = await pool.query<{ id: string; seq: string }>('SELECT id, seq FROM cablecar.publish($1, $2::json)', [
            channel,
            dataJson,
          ]);
          return { id: rows[0]!.id, channel, seq: Number(rows[0]!.seq), duplicate: false };
        } catch (error) {
          throw asPublishRefusal(error);
        }
      });
    },

    /** Messages with seq > after, oldest first. */
    history(channel: string, after: number, limit: number): Promise<HistoryPage> {
      return withDatabase(async () => {
        const { rows } = await pool.query<{ message: Message }>(
          `SELECT cablecar.message_json(m) AS message FROM cablecar.messages m
           WHERE m.channel = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3`,
          [channel, after, limit + 1],
        );
        // Read after the page, not beside it: a prune between the two reads is then reported, never
        // a page that silently lacks what the prune took.
        const pruned = await pool.query<{ pruned_through: string }>('SELECT pruned_through FROM cablecar.channels WHERE name = $1', [channel]);
        const prunedThrough = Number(pruned.rows[0]?.pruned_through ?? 0);
        return {
          messages: rows.slice(0, limit).map((row) => row.message),
          hasMore: rows.length > limit,
          truncatedBefore: after < prunedThrough ? prunedThrough + 1 : undefined,
        };
      });
    },

    /**
     * One page of the dispatch events of the messages published between `withinSeconds` and
     * `olderThanSeconds` ago whose fan-out the sweep has not confirmed complete, oldest first: what
     * the sweep checks for a completion record. `after` is the previous page's last `cursor`
     * (publication time, to the microsecond, channel, seq), so a window of any size is read page by
     * page, and a message that stays unconfirmed (re-dispatched) is not read again by the same run.
     *
     * Written so that the partial index of migration 011 (the unconfirmed rows by published_at,
     * channel, seq) serves it as one range scan in its own order, and a page reads about `limit`
     * rows whatever else the table holds: the bounds use now() (stable, so usable as index bounds;
     * clock_timestamp() is volatile and only filters a scan of the whole index), the cursor is a
     * row comparison on the index's columns, left out of the first page's text rather than
     * switched off by `$4 IS NULL OR` (which only a plan made for the values at hand can drop), and
     * the order is the column's, not its text (an output column named published_at would be what
     * ORDER BY sorts: the whole window, at every page).
     */
    unconfirmedBetween({
      olderThanSeconds,
      withinSeconds,
      limit,
      after,
    }: {
      olderThanSeconds: number;
      withinSeconds: number;
      limit: number;
      after?: PublishedCursor;
    }): Promise<Array<{ id: string; event: unknown; cursor: PublishedCursor }>> {
      return withDatabase(async () => {
        const [start, startParameters] = after
          ? ['(m.published_at, m.channel, m.seq) > ($4::timestamptz, $5::text, $6::bigint)', [after.publishedAt, after.channel, after.seq]]
          : ['true', []];
        const { rows } = await pool.query<{ id: string; event: unknown; cursor_published_at: string; channel: string; seq: string }>(
          `SELECT m.id, cablecar.dispatch_event(m.id) AS event, m.published_at::text AS cursor_published_at, m.channel, m.seq
             FROM cablecar.messages m
            WHERE m.fanout_confirmed_at IS NULL
              AND m.published_at < now() - make_interval(secs => $1)
              AND m.published_at >= now() - make_interval(secs => $2)
              AND ${start}
            ORDER BY m.published_at, m.channel, m.seq LIMIT $3`,
          [olderThanSeconds, withinSeconds, limit, ...startParameters],
        );
        return rows.map(({ id, event, cursor_published_at, channel, seq }) => ({
          id,
          event,
          cursor: { publishedAt: cursor_published_at, channel, seq: Number(seq) },
        }));
      });
    },

    /**
     * The sweep found these messages' fan-out recorded complete: it never reads them again. Only
     * the first confirmation is kept (a second sweep running at the same time changes nothing).
     * Returns how many were newly confirmed.
     */
    confirmFanouts(messageIds: readonly string[]): Promise<number> {
      if (messageIds.length === 0) return Promise.resolve(0);
      return withDatabase(async () => {
        const { rowCount } = await pool.query(
          'UPDATE cablecar.messages SET fanout_confirmed_at = clock_timestamp() WHERE id = ANY($1::uuid[]) AND fanout_confirmed_at IS NULL',
          [messageIds],
        );
        return rowCount ?? 0;
      });
    },

    /** Deletes what every channel keeps beyond its retention; returns how many messages went. */
    prune({ maxAgeSeconds, maxCount }: RetentionLimits): Promise<number> {
      return withDatabase(async () => {
        const { rows } = await pool.query<{ deleted: string }>(
          'SELECT cablecar.prune(make_interval(secs => $1), $2) AS deleted',
          [maxAgeSeconds ?? null, maxCount ?? null],
        );
        return Number(rows[0]?.deleted ?? 0);
      });
    },

    /** The channel's newest seq, 0 for a channel that has none. */
    lastSeq(channel: string): Promise<number> {
      return withDatabase(async () => {
        const { rows } = await pool.query<{ last_seq: string }>('SELECT last_seq FROM cablecar.channels WHERE name = $1', [channel]);
        return rows[0] ? Number(rows[0].last_seq) : 0;
      });
    },
  };
}

export type MessageStore = ReturnType<typeof messageStore>;
