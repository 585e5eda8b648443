import { BatchGetCommand, PutCommand, type BatchGetCommandOutput } from '@aws-sdk/lib-dynamodb';
import type { Message } from '../protocol/protocol.js';
import { nowSeconds, type TableRef } from './dynamoTable.js';

/**
 * Where fan-out's completion is recorded, so that the sweep (which reads PostgreSQL) can tell which
 * dispatched messages never finished fan-out. fanout has no PostgreSQL access, so the record lives
 * in the stage's table:
 *
 *   dispatch completed   pk = DISPATCH#<message id>   sk = DISPATCH#<message id>
 *
 * A new item type, versioned like the others (`v`, mixed-version rules in docs/releases.md): a reader
 * needs only the key; `channel`, `seq`, `completedAt` are for people. It expires after
 * DISPATCH_RECORD_TTL_SECONDS, well beyond the sweep's window.
 */
export const DISPATCH_RECORD_VERSION = 1;
export const DISPATCH_RECORD_TTL_SECONDS = 2 * 24 * 60 * 60;
export const dispatchKey = (messageId: string) => `DISPATCH#${messageId}`;

export function dispatchRecordStore({ client, tableName }: TableRef) {
  return {
    async recordCompleted(message: Pick<Message, 'id' | 'channel' | 'seq'>): Promise<void> {
      const now = nowSeconds();
      await client.send(
        new PutCommand({
          TableName: tableName,
          Item: {
            pk: dispatchKey(message.id),
            sk: dispatchKey(message.id),
            v: DISPATCH_RECORD_VERSION,
            channel: message.channel,
            seq: message.seq,
            completedAt: now,
            ttl: now + DISPATCH_RECORD_TTL_SECONDS,
          },
        }),
      );
    },

    /** Which of these messages have a completion record (100 keys per BatchGetItem). */
    async completed(messageIds: readonly string[]): Promise<Set<string>> {
      const found = new Set<string>();
      for (let start = 0; start < messageIds.length; start += 100) {
        let keys: Array<Record<string, unknown>> | undefined = messageIds
          .slice(start, start + 100)
          .map((id) => ({ pk: dispatchKey(id), sk: dispatchKey(id) }));
        // Unprocessed keys (throttling) are asked again; a key left unanswered counts as not completed.
        for (let attempt = 0; keys && keys.length > 0 && attempt < 5; attempt++) {
          const answer: BatchGetCommandOutput = await client.send(new BatchGetCommand({ RequestItems: { [tableName]: { Keys: keys, ProjectionExpression: 'pk' } } }));
          for (const item of answer.Responses?.[tableName] ?? []) found.add(String(item.pk).slice('DISPATCH#'.length));
          keys = answer.UnprocessedKeys?.[tableName]?.Keys;
        }
      }
      return found;
    },
  };
}

export type DispatchRecordStore = ReturnType<typeof dispatchRecordStore>;
