import { unsubscribe } from '../lib/channels/channelSubscriptions.js';
import { wsRoute } from '../lib/middleware/wsReplies.js';
import { parseAction, parseChannel, unsubscribeFrame } from '../lib/protocol/protocol.js';
import { connections, subscriptions } from '../lib/services.js';

/** unsubscribe: `{"action":"unsubscribe","channel":"room-1","rev":8,"id":"a2"}` → `unsubscribed`. */
export const handler = wsRoute(async ({ connectionId, frame }) => {
  const channel = parseChannel(frame.channel);
  const { rev } = parseAction(unsubscribeFrame, frame);
  return unsubscribe({ connectionId, channel, rev }, { subscriptions: subscriptions(), connections: connections() });
});
