import { subscribe } from '../lib/channels/channelSubscriptions.js';
import { config } from '../lib/config.js';
import { wsRoute } from '../lib/middleware/wsReplies.js';
import { parseAction, parseChannel, subscribeFrame } from '../lib/protocol/protocol.js';
import { connections, messages, postToConnection, subscriptions } from '../lib/services.js';
import { connectionClaims } from '../lib/tokens/connectionClaims.js';
import { requireChannelAccess } from '../lib/tokens/tokenClaims.js';

/**
 * subscribe: `{"action":"subscribe","channel":"room-1","after":42,"rev":7,"id":"a1"}` → replayed
 * messages, then `subscribed`; `forbidden` (nothing stored) unless the connection's token covers the
 * channel, `token_expired` once that token has expired.
 */
export const handler = wsRoute(async ({ connectionId, frame, authorizer }) => {
  const channel = parseChannel(frame.channel);
  const request = parseAction(subscribeFrame, frame);
  requireChannelAccess(connectionClaims(authorizer), 'subscribe', channel);
  return subscribe(
    { connectionId, channel, after: request.after, rev: request.rev },
    { connections: connections(), subscriptions: subscriptions(), messages: await messages(), postToConnection: postToConnection() },
    { replayLimit: config().REPLAY_LIMIT, maxSubscriptions: config().MAX_SUBSCRIPTIONS_PER_CONNECTION },
  );
});
