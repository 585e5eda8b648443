import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * One table per stage holds connections and subscriptions (infra/dynamodb-table.json):
 *
 *   connection    pk = CONN#<id>       sk = CONN#<id>    (+ subscriptionCount: the limit's counter)
 *   subscription  pk = CHAN#<channel>  sk = CONN#<id>    (+ rev, counted)
 *   tombstone     pk = TOMB#<channel>  sk = CONN#<id>    rev of the connection's last unsubscribe
 *   dispatch      pk = DISPATCH#<message id> (= sk)     fan-out completed (dispatchRecordStore.ts)
 *   shard done    pk = SHARD#<message id>#<i>/<n> (= sk) one shard of a split fan-out completed
 *
 * Tombstones have their own partition key on purpose: fan-out (of every version, including version
 * 1, which posts to every item under CHAN#<channel>) never reads them, yet they share the sk, so the
 * cleanup at disconnect (the byConnection index) removes them with the rest.
 *
 * The `byConnection` index swaps the keys, so one query on sk = CONN#<id> finds a connection and all
 * of its subscriptions for cleanup. Every item carries `v` (its schema version, so two code versions
 * can share the table during a release) and `ttl` (epoch seconds; readers ignore expired items
 * because DynamoDB deletes them only eventually).
 *
 * Mixed versions (docs/releases.md): readers rely only on pk, sk, ttl and connectedAt, accept any `v` >= 1 and
 * ignore attributes they do not know; a newer writer may add attributes but never removes or
 * redefines these. test/fixtures/v1 holds what version 1 writes; test/unit/mixedVersions.test.ts
 * holds both sides to that.
 */
export const ITEM_SCHEMA_VERSION = 1;
export const BY_CONNECTION_INDEX = 'byConnection';

export const connectionKey = (connectionId: string) => `CONN#${connectionId}`;
export const channelKey = (channel: string) => `CHAN#${channel}`;
export const tombstoneKey = (channel: string) => `TOMB#${channel}`;
/** The connection id inside a CONN#<id> key: the key, not an attribute, so every item version has it. */
export const connectionIdOf = (key: string) => key.slice('CONN#'.length);

export interface TableRef {
  client: DynamoDBDocumentClient;
  tableName: string;
}

export function createTable({ tableName, endpoint, region }: { tableName: string; endpoint?: string; region?: string }): TableRef {
  const client = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint, region }), {
    marshallOptions: { removeUndefinedValues: true },
  });
  return { client, tableName };
}

export const nowSeconds = () => Math.floor(Date.now() / 1000);

export const isLive = (item: { ttl?: unknown }, now = nowSeconds()) => typeof item.ttl === 'number' && item.ttl > now;

/** Runs a conditional write: `applied: false` when its condition did not hold; any other failure is thrown. */
export async function conditional<T>(write: () => Promise<T>): Promise<{ applied: true; result: T } | { applied: false }> {
  try {
    return { applied: true, result: await write() };
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException || (error as Error).name === 'ConditionalCheckFailedException') {
      return { applied: false };
    }
    throw error;
  }
}

