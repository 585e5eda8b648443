import { subscribe } from '../lib/channels/channelSubscriptions.js';
import { config } from '../lib/config.js';
import { wsRoute } from '../lib/middleware/wsReplies.js';
import { parseAction, parseChannel, subscribeFrame } from '../lib/protocol/protocol.js';
import { connections, messages, postToConnection, subscriptions } from '../lib/services.js';

/** subscribe: `{"action":"subscribe","channel":"room-1","after":42,"rev":7,"id":"a1"}` → replayed messages, then `subscribed`. */
export const handler = wsRoute(async ({ connectionId, frame }) => {
  const channel = parseChannel(frame.channel);
  const request = parseAction(subscribeFrame, frame);
  return subscribe(
    { connectionId, channel, after: request.after, rev: request.rev },
    { connections: connections(), subscriptions: subscriptions(), messages: messages(), postToConnection: postToConnection() },
    { replayLimit: config().REPLAY_LIMIT, maxSubscriptions: config().MAX_SUBSCRIPTIONS_PER_CONNECTION },
  );
});
