export { createClient } from './client.js';
export type {
  Client,
  ClientError,
  ClientErrorCode,
  ClientOptions,
  ConnectionState,
  Message,
  SubscribeOptions,
  Subscription,
  WebSocketConstructor,
  WebSocketLike,
} from './types.js';
