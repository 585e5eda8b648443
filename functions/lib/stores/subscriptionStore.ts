import { DeleteCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { ITEM_SCHEMA_VERSION, channelKey, connectionIdOf, connectionKey, isLive, nowSeconds, type TableRef } from './dynamoTable.js';

/** Which connections listen to which channel. */
export function subscriptionStore({ client, tableName }: TableRef) {
  return {
    /** Stores (or refreshes) a subscription; it expires with its connection. */
    async add(channel: string, connectionId: string, ttl: number): Promise<void> {
      await client.send(
        new PutCommand({
          TableName: tableName,
          Item: {
            pk: channelKey(channel),
            sk: connectionKey(connectionId),
            v: ITEM_SCHEMA_VERSION,
            channel,
            connectionId,
            subscribedAt: nowSeconds(),
            ttl,
          },
        }),
      );
    },

    async remove(channel: string, connectionId: string): Promise<void> {
      await client.send(
        new DeleteCommand({ TableName: tableName, Key: { pk: channelKey(channel), sk: connectionKey(connectionId) } }),
      );
    },

    /**
     * The channel's live subscribers, one page of connection ids at a time, so a channel of any size
     * is read with bounded memory.
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
