import { unsubscribe } from '../lib/channels/channelSubscriptions.js';
import { wsRoute } from '../lib/middleware/wsReplies.js';
import { parseAction, parseChannel, unsubscribeFrame } from '../lib/protocol/protocol.js';
import { subscriptions } from '../lib/services.js';

/** unsubscribe: `{"action":"unsubscribe","channel":"room-1"}` → `unsubscribed`. */
export const handler = wsRoute(async ({ connectionId, frame }) => {
  const channel = parseChannel(frame.channel);
  parseAction(unsubscribeFrame, frame);
  return unsubscribe({ connectionId, channel }, { subscriptions: subscriptions() });
});
