import { config, runningFunction, tokenConfig } from './config.js';
import { createPostToConnection, type PostToConnection } from './delivery/connectionGateway.js';
import { createShardInvoker } from './delivery/shardInvoker.js';
import { connectionStore, type ConnectionStore } from './stores/connectionStore.js';
import { createPool } from './stores/database.js';
import { dispatchRecordStore, type DispatchRecordStore } from './stores/dispatchRecordStore.js';
import { resolveDatabaseSettings } from './stores/databaseSettings.js';
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

const table = /* @__PURE__ */ once<TableRef>(() =>
  createTable({ tableName: config().TABLE_NAME, endpoint: config().DYNAMODB_ENDPOINT, region: config().AWS_REGION }),
);

export const connections = /* @__PURE__ */ once<ConnectionStore>(() =>
  connectionStore(table(), { ttlSeconds: config().CONNECTION_TTL_SECONDS }),
);

export const subscriptions = /* @__PURE__ */ once<SubscriptionStore>(() => subscriptionStore(table()));

export const dispatchRecords = /* @__PURE__ */ once<DispatchRecordStore>(() => dispatchRecordStore(table()));

/**
 * Like `once`, for a value built asynchronously: concurrent callers share one build, and a build
 * that failed (the secret could not be read, say) is forgotten so that the next call tries again.
 */
function onceAsync<T>(build: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () =>
    (value ??= build().catch((error: unknown) => {
      value = undefined;
      throw error;
    }));
}

/** The message store on PostgreSQL, for the functions that use it (publish, history, subscribe). */
export const messages = /* @__PURE__ */ onceAsync<MessageStore>(async () => {
  const settings = await resolveDatabaseSettings(config());
  return messageStore(createPool({ ...settings, max: config().DATABASE_POOL_MAX, connectTimeoutMs: config().DATABASE_CONNECT_TIMEOUT_MS }));
});

export const postToConnection = /* @__PURE__ */ once<PostToConnection>(() =>
  createPostToConnection({
    endpoint: config().WEBSOCKET_API_ENDPOINT,
    region: config().AWS_REGION,
    maxSockets: config().FANOUT_CONCURRENCY,
  }),
);

/** Starts the other shards of a split fan-out (fanout only). */
export const startShards = /* @__PURE__ */ once(() =>
  createShardInvoker({
    functionName: runningFunction().AWS_LAMBDA_FUNCTION_NAME ?? `cablecar-${config().STAGE}-fanout`,
    functionVersion: runningFunction().AWS_LAMBDA_FUNCTION_VERSION,
    region: config().AWS_REGION,
    endpoint: config().LAMBDA_ENDPOINT,
  }),
);

/** Verifies tokens with the configured keys (the secret from Secrets Manager is cached inside). */
export const verifyToken = /* @__PURE__ */ once<VerifyToken>(() => createTokenVerifier(tokenVerifierOptions(tokenConfig())));
