import { config, tokenConfig } from './config.js';
import { createPostToConnection, type PostToConnection } from './delivery/connectionGateway.js';
import { connectionStore, type ConnectionStore } from './stores/connectionStore.js';
import { createPool } from './stores/database.js';
import { dispatchRecordStore, type DispatchRecordStore } from './stores/dispatchRecordStore.js';
import { createTable, type TableRef } from './stores/dynamoTable.js';
import { messageStore, type MessageStore } from './stores/messageStore.js';
import { subscriptionStore, type SubscriptionStore } from './stores/subscriptionStore.js';
import { tokenVerifierOptions } from './tokens/tokenKeys.js';
import { createTokenVerifier, type VerifyToken } from './tokens/tokenVerifier.js';

/**
 * The stores and clients the handlers use, built from config on first use and kept for the life of
 * the Lambda container (so sockets and pooled connections are reused across invocations).
 */
function once<T>(build: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= build());
}

const table = once<TableRef>(() =>
  createTable({ tableName: config().TABLE_NAME, endpoint: config().DYNAMODB_ENDPOINT, region: config().AWS_REGION }),
);

export const connections = once<ConnectionStore>(() =>
  connectionStore(table(), { ttlSeconds: config().CONNECTION_TTL_SECONDS }),
);

export const subscriptions = once<SubscriptionStore>(() => subscriptionStore(table()));

export const dispatchRecords = once<DispatchRecordStore>(() => dispatchRecordStore(table()));

export const messages = once<MessageStore>(() =>
  messageStore(
    createPool({
      connectionString: config().DATABASE_URL,
      max: config().DATABASE_POOL_MAX,
      connectTimeoutMs: config().DATABASE_CONNECT_TIMEOUT_MS,
    }),
  ),
);

export const postToConnection = once<PostToConnection>(() =>
  createPostToConnection({
    endpoint: config().WEBSOCKET_API_ENDPOINT,
    region: config().AWS_REGION,
    maxSockets: config().FANOUT_CONCURRENCY,
  }),
);

/** Verifies tokens with the configured keys (the secret from Secrets Manager is cached inside). */
export const verifyToken = once<VerifyToken>(() => createTokenVerifier(tokenVerifierOptions(tokenConfig())));
