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
     * The channel's live subscribers, one page of connection ids at a time, so a channel of any size
     * is read with bounded memory. Tombstones live under another key and are never read here.
     */
    async *subscriberPages(channel: string, pageSize: number): AsyncGenerator<string[]> {
      let startKey: Record<string, unknown> | undefined;
      do {
        const page = await client.send(
          new QueryCommand({
            TableName: tableName,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': channelKey(channel) },
            Limit: pageSize,
            ExclusiveStartKey: startKey,
          }),
        );
        const now = nowSeconds();
        const ids = (page.Items ?? []).filter((item) => isLive(item, now)).map((item) => connectionIdOf(String(item.sk)));
        if (ids.length > 0) yield ids;
        startKey = page.LastEvaluatedKey;
      } while (startKey);
    },
  };
}

export type SubscriptionStore = ReturnType<typeof subscriptionStore>;
