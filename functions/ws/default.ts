import { wsRoute } from '../lib/middleware/wsReplies.js';
import { parseAction, pingFrame, unknownAction } from '../lib/protocol/protocol.js';

/**
 * $default: every frame no other route takes — `ping` (clients ping to stay under API Gateway's
 * 10-minute idle close), and anything malformed or unknown, which gets an error frame.
 */
export const handler = wsRoute(async ({ frame }) => {
  if (frame.action === 'ping') {
    parseAction(pingFrame, frame);
    return { type: 'pong' };
  }
  throw unknownAction(frame);
});
