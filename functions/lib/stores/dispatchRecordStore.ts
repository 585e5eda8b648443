import { BatchGetCommand, PutCommand, type BatchGetCommandOutput } from '@aws-sdk/lib-dynamodb';
import type { Message } from '../protocol/protocol.js';
import { nowSeconds, type TableRef } from './dynamoTable.js';
import type { SubscriberShard } from './subscriptionStore.js';

/**
 * Where fan-out's completion is recorded, so that the sweep (which reads PostgreSQL) can tell which
 * dispatched messages never finished fan-out. fanout has no PostgreSQL access, so the records live
 * in the stage's table:
 *
 *   dispatch completed   pk = DISPATCH#<message id>                  sk = pk   (+ shards when split)
 *   shard completed      pk = SHARD#<message id>#<index>/<count>     sk = pk
 *
 * The dispatch record is written by the invocation that took the dispatch, once its own part is
 * done: the whole channel, or shard 0 of a split one after starting the others. Those others run as
 * their own invocations and may fail after it, so a split message's record says into how many
 * shards (`shards`, its own included), and each other shard writes its own record when done. A
 * message counts as completed when its dispatch record exists and, if split, every other shard of
 * that count has its record too; otherwise the sweep dispatches the whole message again (clients
 * drop the duplicates by seq). The queue that failed shards land in (infra/fanout-failures.yml) is
 * the first net; this is the second, as it is for dispatches.
 *
 * Shard records have a key of their own, outside DISPATCH#: a reader of the dispatch record by its
 * key (version 1's sweep) never meets them, and the byConnection index (keyed by sk) gets one key
 * per record, rather than every message's shard i under one hot key. A shard record written
 * before its dispatch record (a fast shard) makes nothing complete; a re-dispatch that splits into
 * another count needs shard records of that count; one that was delivered whole rewrites the
 * dispatch record without `shards`.
 *
 * Versioned like the other items (`v`, mixed-version rules in docs/releases.md): a version-1 reader
 * needs only the dispatch record's key (so it counts a split message as complete once its dispatch
 * part is: what it did before shards were recorded); `shards` is an added attribute; `channel`,
 * `seq`, `completedAt` are for people. Every record expires after DISPATCH_RECORD_TTL_SECONDS, well
 * beyond the sweep's window.
 */
export const DISPATCH_RECORD_VERSION = 1;
export const DISPATCH_RECORD_TTL_SECONDS = 2 * 24 * 60 * 60;
export const dispatchKey = (messageId: string) => `DISPATCH#${messageId}`;
export const shardRecordKey = (messageId: string, shard: SubscriberShard) => `SHARD#${messageId}#${shard.index}/${shard.count}`;

// BatchGetItem takes at most 100 keys.
const BATCH_GET_LIMIT = 100;

export function dispatchRecordStore({ client, tableName }: TableRef) {
  async function put(key: string, message: Pick<Message, 'channel' | 'seq'>, added: Record<string, unknown> = {}): Promise<void> {
    const now = nowSeconds();
    await client.send(
      new PutCommand({
        TableName: tableName,
        Item: { pk: key, sk: key, v: DISPATCH_RECORD_VERSION, channel: message.channel, seq: message.seq, ...added, completedAt: now, ttl: now + DISPATCH_RECORD_TTL_SECONDS },
      }),
    );
  }

  /** The items of these keys (pk = sk) that exist, with these attributes besides pk. */
  async function existing(keys: readonly string[], attributes: readonly string[] = []): Promise<Array<Record<string, unknown>>> {
    const found: Array<Record<string, unknown>> = [];
    const names = Object.fromEntries(['pk', ...attributes].map((name, i) => [`#a${i}`, name]));
    for (let start = 0; start < keys.length; start += BATCH_GET_LIMIT) {
      let batch: Array<Record<string, unknown>> | undefined = keys.slice(start, start + BATCH_GET_LIMIT).map((key) => ({ pk: key, sk: key }));
      // Unprocessed keys (throttling) are asked again; a key left unanswered counts as not there.
      for (let attempt = 0; batch && batch.length > 0 && attempt < 5; attempt++) {
        const answer: BatchGetCommandOutput = await client.send(
          new BatchGetCommand({ RequestItems: { [tableName]: { Keys: batch, ProjectionExpression: Object.keys(names).join(', '), ExpressionAttributeNames: names } } }),
        );
        found.push(...(answer.Responses?.[tableName] ?? []));
        batch = answer.UnprocessedKeys?.[tableName]?.Keys;
      }
    }
    return found;
  }

  return {
    /**
     * The dispatch's own part is done: the whole channel, or shard 0 after starting
     * `shardsStarted` others (shard 1 to n-1 of n). Written last by the invocation, so one that
     * throws before is not counted as done.
     */
    async recordCompleted(message: Pick<Message, 'id' | 'channel' | 'seq'>, { shardsStarted = 0 }: { shardsStarted?: number } = {}): Promise<void> {
      await put(dispatchKey(message.id), message, shardsStarted > 0 ? { shards: shardsStarted + 1 } : {});
    },

    /** One of the other shards of a split message is done. */
    async recordShardCompleted(message: Pick<Message, 'id' | 'channel' | 'seq'>, shard: SubscriberShard): Promise<void> {
      await put(shardRecordKey(message.id, shard), message);
    },

    /** Which of these messages completed fan-out: their dispatch record, and every other shard's if split. */
    async completed(messageIds: readonly string[]): Promise<Set<string>> {
      const dispatched = await existing(messageIds.map(dispatchKey), ['shards']);
      const done = new Set<string>();
      const split: Array<{ id: string; shardKeys: string[] }> = [];
      for (const record of dispatched) {
        const id = String(record.pk).slice(dispatchKey('').length);
        const shards = typeof record.shards === 'number' ? record.shards : 0;
        if (shards < 2) done.add(id);
        else split.push({ id, shardKeys: Array.from({ length: shards - 1 }, (_, i) => shardRecordKey(id, { index: i + 1, count: shards })) });
      }
      const shardsDone = new Set((await existing(split.flatMap((message) => message.shardKeys))).map((record) => String(record.pk)));
      for (const { id, shardKeys } of split) if (shardKeys.every((key) => shardsDone.has(key))) done.add(id);
      return done;
    },
  };
}

export type DispatchRecordStore = ReturnType<typeof dispatchRecordStore>;
