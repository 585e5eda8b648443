import type { ConnectionStore } from '../stores/connectionStore.js';
import type { PostToConnection } from '../delivery/connectionGateway.js';
import { CablecarError } from '../protocol/errors.js';
import type { MessageStore } from '../stores/messageStore.js';
import { messageFrame, type ServerFrame } from '../protocol/protocol.js';
import type { SubscriptionStore } from '../stores/subscriptionStore.js';

export interface ChannelSubscriptionDeps {
  connections: ConnectionStore;
  subscriptions: SubscriptionStore;
  messages: MessageStore;
  postToConnection: PostToConnection;
}

const REPLAY_PAGE = 200;

/**
 * Subscribes a connection to a channel. The subscription is stored before history is read, so a
 * message published meanwhile is either replayed or fanned out (possibly both: clients drop
 * duplicates by seq), never missed. With `after`, the messages after that seq are replayed in order,
 * up to `replayLimit`; the reply's `seq` is the last one the client now has, so a client that was
 * away longer pages through history from there. A `seq` below `after` tells the client that the
 * channel is behind what it remembers. `truncated: true, oldestSeq` says that messages after `after`
 * were already pruned by retention (the replay starts at oldestSeq).
 */
export async function subscribe(
  { connectionId, channel, after }: { connectionId: string; channel: string; after?: number },
  deps: ChannelSubscriptionDeps,
  { replayLimit }: { replayLimit: number },
): Promise<ServerFrame> {
  const connection = await deps.connections.get(connectionId);
  if (!connection) throw new CablecarError('not_connected', 'this connection is not registered; reconnect', 410);
  await deps.subscriptions.add(channel, connectionId, connection.ttl);

  if (after === undefined) return { type: 'subscribed', channel, seq: await deps.messages.lastSeq(channel) };

  let seq = after;
  let replayed = 0;
  let truncatedBefore: number | undefined;
  while (replayed < replayLimit) {
    const page = await deps.messages.history(channel, seq, Math.min(REPLAY_PAGE, replayLimit - replayed));
    if (replayed === 0) truncatedBefore = page.truncatedBefore;
    for (const message of page.messages) {
      // One at a time: the socket must see the replay in seq order.
      if ((await deps.postToConnection(connectionId, JSON.stringify(messageFrame(message)))) === 'gone') {
        await deps.connections.remove(connectionId);
        throw new CablecarError('not_connected', 'the connection closed during replay', 410);
      }
      seq = message.seq;
      replayed++;
    }
    if (!page.hasMore) break;
  }
  // A client ahead of the channel (its database was restored, say) must not go on dropping new
  // messages as duplicates: tell it where the channel really is.
  if (replayed === 0 && after > 0) seq = Math.min(after, await deps.messages.lastSeq(channel));
  // Retention deleted messages between `after` and what was replayed: the client is told, never
  // left to believe it has everything.
  if (truncatedBefore !== undefined) return { type: 'subscribed', channel, seq, truncated: true, oldestSeq: truncatedBefore };
  return { type: 'subscribed', channel, seq };
}

export async function unsubscribe(
  { connectionId, channel }: { connectionId: string; channel: string },
  deps: Pick<ChannelSubscriptionDeps, 'subscriptions'>,
): Promise<ServerFrame> {
  await deps.subscriptions.remove(channel, connectionId);
  return { type: 'unsubscribed', channel };
}
