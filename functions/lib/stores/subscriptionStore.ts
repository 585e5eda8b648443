import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  ITEM_SCHEMA_VERSION,
  channelKey,
  conditional,
  connectionIdOf,
  connectionKey,
  isLive,
  nowSeconds,
  tombstoneKey,
  type TableRef,
} from './dynamoTable.js';

/**
 * One of `count` parts of a channel's subscriptions, for parallel fan-out workers. A shard is a
 * range of the subscription items' sort key (CONN#<connection id>), split on the id's first
 * character, so the items themselves are the same as before sharding (a version-1 fanout reads them
 * all as it always did) and every subscription falls in exactly one shard whatever its id.
 *
 * API Gateway's connection ids are base64-like ("Ja8dRfHBoAMCE5Q="), so the boundaries split the
 * base64 alphabet evenly; ids from another alphabet (serverless-offline's UUIDs) are still covered,
 * only less evenly spread. Why not one partition key per shard: docs/performance.md, "Fan-out at scale".
 */
export interface SubscriberShard {
  index: number;
  count: number;
}

/** Base64's characters in the byte order DynamoDB compares strings in. */
const ID_ALPHABET = '+/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export const MAX_SUBSCRIBER_SHARDS = ID_ALPHABET.length;

/**
 * The shard's sort-key bounds: from `lower` (inclusive) to `upper` (exclusive); the first shard has
 * no lower bound and the last no upper one, so together they hold every key.
 */
export function shardBounds({ index, count }: SubscriberShard): { lower?: string; upper?: string } {
  if (!Number.isInteger(count) || count < 1 || count > MAX_SUBSCRIBER_SHARDS || !Number.isInteger(index) || index < 0 || index >= count) {
    throw new RangeError(`no shard ${index} of ${count} (1 to ${MAX_SUBSCRIBER_SHARDS} shards)`);
  }
  const boundary = (i: number) => connectionKey(ID_ALPHABET[Math.floor((i * ID_ALPHABET.length) / count)]!);
  return { lower: index === 0 ? undefined : boundary(index), upper: index === count - 1 ? undefined : boundary(index + 1) };
}

/** The key condition of a query of one shard (DynamoDB allows one condition on the sort key). */
function shardCondition(shard: SubscriberShard | undefined): { condition: string; values: Record<string, string>; upper?: string } {
  const { lower, upper } = shard ? shardBounds(shard) : {};
  if (lower && upper) return { condition: ' AND sk BETWEEN :lower AND :upper', values: { ':lower': lower, ':upper': upper }, upper };
  if (lower) return { condition: ' AND sk >= :lower', values: { ':lower': lower } };
  if (upper) return { condition: ' AND sk < :upper', values: { ':upper': upper } };
  return { condition: '', values: {} };
}

/**
 * What fan-out reads of a subscription: the key (the connection id) and the expiry. Read units are
 * the same either way, but unmarshalling two attributes instead of all is most of a fan-out's CPU
 * besides posting (`ttl` is a reserved word, hence the name placeholder).
 */
const SUBSCRIBER_PROJECTION = { ProjectionExpression: 'sk, #ttl', ExpressionAttributeNames: { '#ttl': 'ttl' } };


/** A change carrying `rev` applies only over a lower one (or over an item written without rev). */
const LOWER_REV = 'attribute_not_exists(rev) OR rev < :rev';

export interface SubscriptionWrite {
  /** false: a change with a higher rev already holds the item, and this one was not applied. */
  applied: boolean;
  /** The item this write replaced or removed counted toward the connection's limit. */
  wasCounted: boolean;
}

/**
 * Which connections listen to which channel, and the per-connection order of subscription changes.
 * A subscription item carries the `rev` of the change that wrote it and `counted` when it holds one
 * of its connection's slots (connectionStore's subscriptionCount); an unsubscribe with a rev leaves a
 * tombstone (TOMB#<channel>) holding that rev, so a subscribe the client sent earlier but that runs
 * later can tell it lost.
 */
export function subscriptionStore({ client, tableName }: TableRef) {
  const key = (channel: string, connectionId: string) => ({ pk: channelKey(channel), sk: connectionKey(connectionId) });

  return {
    /**
     * Stores (or refreshes) a subscription; it expires with its connection. With `rev`, only over a
     * lower rev. `counted` marks it as holding a slot of the limit (a refresh leaves the mark as is).
     */
    async add(
      channel: string,
      connectionId: string,
      ttl: number,
      { rev, counted = false }: { rev?: number; counted?: boolean } = {},
    ): Promise<SubscriptionWrite> {
      const set = ['v = :v', 'channel = :channel', 'connectionId = :connectionId', 'subscribedAt = :now', '#ttl = :ttl'];
      if (rev !== undefined) set.push('rev = :rev');
      if (counted) set.push('counted = :true');
      const write = await conditional(() =>
        client.send(
          new UpdateCommand({
            TableName: tableName,
            Key: key(channel, connectionId),
            UpdateExpression: `SET ${set.join(', ')}`,
            ConditionExpression: rev === undefined ? undefined : LOWER_REV,
            ExpressionAttributeNames: { '#ttl': 'ttl' },
            ExpressionAttributeValues: {
              ':v': ITEM_SCHEMA_VERSION,
              ':channel': channel,
              ':connectionId': connectionId,
              ':now': nowSeconds(),
              ':ttl': ttl,
              ...(rev === undefined ? {} : { ':rev': rev }),
              ...(counted ? { ':true': true } : {}),
            },
            ReturnValues: 'ALL_OLD',
          }),
        ),
      );
      return { applied: write.applied, wasCounted: write.applied && write.result.Attributes?.counted === true };
    },

    /**
     * Removes a subscription. With `rev`, only one written by a lower rev (a missing one counts as
     * removed); `onlyRev` removes it only if that exact rev wrote it (undoing one's own write);
     * `onlyUncounted` only if it holds no slot.
     */
    async remove(
      channel: string,
      connectionId: string,
      { rev, onlyRev, onlyUncounted = false }: { rev?: number; onlyRev?: number; onlyUncounted?: boolean } = {},
    ): Promise<SubscriptionWrite> {
      const conditions: string[] = [];
      if (rev !== undefined) conditions.push(`(${LOWER_REV})`);
      if (onlyRev !== undefined) conditions.push('rev = :onlyRev');
      if (onlyUncounted) conditions.push('attribute_not_exists(counted)');
      const values = { ...(rev === undefined ? {} : { ':rev': rev }), ...(onlyRev === undefined ? {} : { ':onlyRev': onlyRev }) };
      const write = await conditional(() =>
        client.send(
          new DeleteCommand({
            TableName: tableName,
            Key: key(channel, connectionId),
            ConditionExpression: conditions.length > 0 ? conditions.join(' AND ') : undefined,
            ExpressionAttributeValues: Object.keys(values).length > 0 ? values : undefined,
            ReturnValues: 'ALL_OLD',
          }),
        ),
      );
      return { applied: write.applied, wasCounted: write.applied && write.result.Attributes?.counted === true };
    },

    /** The live subscription of a connection to a channel, read consistently. */
    async get(channel: string, connectionId: string): Promise<{ rev?: number; counted: boolean } | undefined> {
      const { Item } = await client.send(
        new GetCommand({ TableName: tableName, Key: key(channel, connectionId), ConsistentRead: true }),
      );
      if (!Item || !isLive(Item)) return undefined;
      return { rev: typeof Item.rev === 'number' ? Item.rev : undefined, counted: Item.counted === true };
    },

    /** Remembers an unsubscribe's rev (unless a higher one is remembered already) until the connection expires. */
    async recordUnsubscribe(channel: string, connectionId: string, rev: number, ttl: number): Promise<void> {
      await conditional(() =>
        client.send(
          new PutCommand({
            TableName: tableName,
            Item: {
              pk: tombstoneKey(channel),
              sk: connectionKey(connectionId),
              v: ITEM_SCHEMA_VERSION,
              channel,
              connectionId,
              rev,
              ttl,
            },
            ConditionExpression: LOWER_REV,
            ExpressionAttributeValues: { ':rev': rev },
          }),
        ),
      );
    },

    /** The rev of the connection's last unsubscribe from the channel, read consistently. */
    async lastUnsubscribeRev(channel: string, connectionId: string): Promise<number | undefined> {
      const { Item } = await client.send(
        new GetCommand({
          TableName: tableName,
          Key: { pk: tombstoneKey(channel), sk: connectionKey(connectionId) },
          ConsistentRead: true,
        }),
      );
      return Item && isLive(Item) && typeof Item.rev === 'number' ? Item.rev : undefined;
    },

    /**
     * The channel's live subscribers (or one shard's), one page of connection ids at a time, so a
     * channel of any size is read with bounded memory. Tombstones live under another key and are never read here.
     * A smaller first page lets posting start before a whole page has been read.
     */
    async *subscriberPages(channel: string, pageSize: number, shard?: SubscriberShard, firstPageSize = pageSize): AsyncGenerator<string[]> {
      const range = shardCondition(shard);
      let startKey: Record<string, unknown> | undefined;
      let limit = firstPageSize;
      do {
        const page = await client.send(
          new QueryCommand({
            TableName: tableName,
            KeyConditionExpression: `pk = :pk${range.condition}`,
            ExpressionAttributeValues: { ':pk': channelKey(channel), ...range.values },
            ...SUBSCRIBER_PROJECTION,
            Limit: limit,
            ExclusiveStartKey: startKey,
          }),
        );
        const now = nowSeconds();
        const ids = (page.Items ?? [])
          // BETWEEN includes its upper bound, which belongs to the next shard.
          .filter((item) => isLive(item, now) && item.sk !== range.upper)
          .map((item) => connectionIdOf(String(item.sk)));
        if (ids.length > 0) yield ids;
        startKey = page.LastEvaluatedKey;
        limit = pageSize;
      } while (startKey);
    },

    /**
     * Up to `limit` of the channel's live subscribers in one query, and whether that was all of
     * them: fan-out delivers a small channel from this one read and splits a big one into shards.
     */
    async subscribersUpTo(channel: string, limit: number): Promise<{ ids: string[]; complete: boolean }> {
      // limit + 1: a query that stops at its Limit reports more to read even when there is none.
      const page = await client.send(
        new QueryCommand({
          TableName: tableName,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': channelKey(channel) },
          Limit: limit + 1,
          ...SUBSCRIBER_PROJECTION,
        }),
      );
      const items = page.Items ?? [];
      const now = nowSeconds();
      const ids = items.filter((item) => isLive(item, now)).map((item) => connectionIdOf(String(item.sk)));
      return { ids, complete: page.LastEvaluatedKey === undefined && items.length <= limit };
    },
  };
}

export type SubscriptionStore = ReturnType<typeof subscriptionStore>;
