import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import pLimit from 'p-limit';
import { BY_CONNECTION_INDEX, ITEM_SCHEMA_VERSION, conditional, connectionKey, isLive, nowSeconds, type TableRef } from './dynamoTable.js';

export interface Connection {
  connectionId: string;
  connectedAt: number;
  ttl: number;
  /** Who opened it (the token's `sub`) and until when its token is valid: absent on items of version 1. */
  sub?: string;
  tokenExpiresAt?: number;
}

/** The token holder a connection is stored with (attributes added to the version-1 item). */
export interface ConnectionHolder {
  sub: string;
  tokenExpiresAt: number;
}

/** Connections, and their removal together with every subscription they hold. */
export function connectionStore({ client, tableName }: TableRef, { ttlSeconds }: { ttlSeconds: number }) {
  const key = (connectionId: string) => ({ pk: connectionKey(connectionId), sk: connectionKey(connectionId) });
  return {
    async add(connectionId: string, holder?: ConnectionHolder): Promise<Connection> {
      const connectedAt = nowSeconds();
      const connection: Connection = { connectionId, connectedAt, ttl: connectedAt + ttlSeconds, ...holder };
      await client.send(
        new PutCommand({
          TableName: tableName,
          Item: { ...key(connectionId), v: ITEM_SCHEMA_VERSION, ...connection },
        }),
      );
      return connection;
    },

    /**
     * The connection, or undefined when it is unknown or expired. Read consistently: a client
     * subscribes right after $connect, before an eventually consistent read might see the item.
     */
    async get(connectionId: string): Promise<Connection | undefined> {
      const { Item } = await client.send(
        new GetCommand({
          TableName: tableName,
          Key: key(connectionId),
          ConsistentRead: true,
        }),
      );
      if (!Item || !isLive(Item)) return undefined;
      return {
        connectionId,
        connectedAt: Number(Item.connectedAt),
        ttl: Number(Item.ttl),
        ...(typeof Item.sub === 'string' ? { sub: Item.sub } : {}),
        ...(typeof Item.tokenExpiresAt === 'number' ? { tokenExpiresAt: Item.tokenExpiresAt } : {}),
      };
    },

    /**
     * Takes one of the connection's subscription slots: one conditional update of the connection
     * item's `subscriptionCount`, so concurrent subscribes (each its own invocation) can never take
     * more than `max` between them. Undefined when the connection is unknown, expired or full (the
     * caller tells those apart with `get`); otherwise the connection.
     */
    async reserveSubscription(connectionId: string, max: number): Promise<Connection | undefined> {
      const write = await conditional(() =>
        client.send(
          new UpdateCommand({
            TableName: tableName,
            Key: key(connectionId),
            UpdateExpression: 'ADD subscriptionCount :one',
            ConditionExpression:
              'attribute_exists(pk) AND #ttl > :now AND (attribute_not_exists(subscriptionCount) OR subscriptionCount < :max)',
            ExpressionAttributeNames: { '#ttl': 'ttl' },
            ExpressionAttributeValues: { ':one': 1, ':now': nowSeconds(), ':max': max },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      if (!write.applied) return undefined;
      const item = write.result.Attributes!;
      return { connectionId, connectedAt: Number(item.connectedAt), ttl: Number(item.ttl) };
    },

    /** Gives a slot back (a subscription removed, or a reservation that was not needed). */
    async releaseSubscription(connectionId: string): Promise<void> {
      await conditional(() =>
        client.send(
          new UpdateCommand({
            TableName: tableName,
            Key: key(connectionId),
            UpdateExpression: 'ADD subscriptionCount :minusOne',
            ConditionExpression: 'subscriptionCount > :zero',
            ExpressionAttributeValues: { ':minusOne': -1, ':zero': 0 },
          }),
        ),
      );
    },

    /**
     * Deletes the connection and all its subscriptions and tombstones, found through the inverted index. Used at
     * $disconnect and when a post answers 410 Gone; safe to run twice.
     */
    async remove(connectionId: string): Promise<number> {
      const limit = pLimit(10);
      let removed = 0;
      let startKey: Record<string, unknown> | undefined;
      do {
        const page = await client.send(
          new QueryCommand({
            TableName: tableName,
            IndexName: BY_CONNECTION_INDEX,
            KeyConditionExpression: 'sk = :sk',
            ExpressionAttributeValues: { ':sk': connectionKey(connectionId) },
            ExclusiveStartKey: startKey,
          }),
        );
        const keys = (page.Items ?? []).map((item) => ({ pk: item.pk as string, sk: item.sk as string }));
        await Promise.all(keys.map((Key) => limit(() => client.send(new DeleteCommand({ TableName: tableName, Key })))));
        removed += keys.length;
        startKey = page.LastEvaluatedKey;
      } while (startKey);
      return removed;
    },
  };
}

export type ConnectionStore = ReturnType<typeof connectionStore>;
