import type { ConnectionStore } from '../stores/connectionStore.js';
import type { PostToConnection } from '../delivery/connectionGateway.js';
import { CablecarError } from '../protocol/errors.js';
import type { MessageStore } from '../stores/messageStore.js';
import { messageFrame, truncation, type ServerFrame } from '../protocol/protocol.js';
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
 * up to `replayLimit`; the reply's `seq` is the last one the client now has, or, when the replay
 * stopped at its limit with more to come, the channel's newest: a client that was away longer
 * reads the rest from history. A `seq` below `after` tells the client that the
 * channel is behind what it remembers. `truncated: true, oldestSeq` says that messages after `after`
 * were already pruned by retention (the replay starts at oldestSeq).
 *
 * The limit: a new subscription takes one of the connection's `maxSubscriptions` slots (a
 * conditional counter on the connection item); one the connection already holds takes none.
 *
 * The order (with `rev`): the write applies only over a lower rev, and after it the tombstone of the
 * connection's last unsubscribe is read; if that unsubscribe came later (a higher rev), this
 * subscribe undoes its own write. Either this check sees the unsubscribe's tombstone, or the
 * unsubscribe (tombstone first, then a delete conditional on the rev) sees this subscription:
 * both are strongly consistent single-item operations, so a later unsubscribe always wins.
 */
export async function subscribe(
  { connectionId, channel, after, rev }: { connectionId: string; channel: string; after?: number; rev?: number },
  deps: ChannelSubscriptionDeps,
  { replayLimit, maxSubscriptions }: { replayLimit: number; maxSubscriptions: number },
): Promise<ServerFrame> {
  const revision = rev === undefined ? {} : { rev };
  const superseded = async (): Promise<ServerFrame> => ({
    type: 'subscribed',
    channel,
    seq: await deps.messages.lastSeq(channel),
    ...revision,
    superseded: true,
  });

  const reserved = await deps.connections.reserveSubscription(connectionId, maxSubscriptions);
  let ttl: number;
  if (reserved) {
    ttl = reserved.ttl;
  } else {
    const connection = await deps.connections.get(connectionId);
    if (!connection) throw new CablecarError('not_connected', 'this connection is not registered; reconnect');
    // Full: only a channel it already holds (a re-subscribe, say with `after`) goes through.
    if (!(await deps.subscriptions.get(channel, connectionId))?.counted) throw tooManySubscriptions(maxSubscriptions);
    ttl = connection.ttl;
  }

  const written = await deps.subscriptions.add(channel, connectionId, ttl, { rev, counted: reserved !== undefined });
  if (!written.applied) {
    // A later subscribe of this connection holds the channel already.
    if (reserved) await deps.connections.releaseSubscription(connectionId);
    return superseded();
  }
  if (reserved && written.wasCounted) await deps.connections.releaseSubscription(connectionId); // it held a slot already
  if (!reserved && !written.wasCounted) {
    // The held subscription went away between the check and the write: this one is new after all, and full.
    await deps.subscriptions.remove(channel, connectionId, { onlyRev: rev, onlyUncounted: true });
    throw tooManySubscriptions(maxSubscriptions);
  }

  if (rev !== undefined) {
    const unsubscribed = await deps.subscriptions.lastUnsubscribeRev(channel, connectionId);
    if (unsubscribed !== undefined && unsubscribed > rev) {
      const undone = await deps.subscriptions.remove(channel, connectionId, { onlyRev: rev });
      if (undone.wasCounted) await deps.connections.releaseSubscription(connectionId);
      return superseded();
    }
  }

  if (after === undefined) return { type: 'subscribed', channel, seq: await deps.messages.lastSeq(channel), ...revision };

  let seq = after;
  let replayed = 0;
  let truncatedBefore: number | undefined;
  let moreThanLimit = false;
  while (replayed < replayLimit) {
    const page = await deps.messages.history(channel, seq, Math.min(REPLAY_PAGE, replayLimit - replayed));
    if (replayed === 0) truncatedBefore = page.truncatedBefore;
    moreThanLimit = page.hasMore;
    for (const message of page.messages) {
      // One at a time: the socket must see the replay in seq order.
      if ((await deps.postToConnection(connectionId, JSON.stringify(messageFrame(message)))) === 'gone') {
        await deps.connections.remove(connectionId);
        throw new CablecarError('not_connected', 'the connection closed during replay');
      }
      seq = message.seq;
      replayed++;
    }
    if (!page.hasMore) break;
  }
  // A client ahead of the channel (its database was restored, say) must not go on dropping new
  // messages as duplicates: tell it where the channel really is.
  if (replayed === 0 && after > 0) seq = Math.min(after, await deps.messages.lastSeq(channel));
  // The replay stopped at its limit with more to come: the reply names the channel's newest seq, so
  // the client reads the rest from history now rather than when the next message happens to arrive
  // (on a quiet channel, maybe never).
  if (moreThanLimit) seq = Math.max(seq, await deps.messages.lastSeq(channel));
  // Retention deleted messages between `after` and what was replayed: the client is told, never
  // left to believe it has everything.
  return { type: 'subscribed', channel, seq, ...truncation(truncatedBefore), ...revision };
}

const tooManySubscriptions = (max: number) =>
  new CablecarError(
    'too_many_subscriptions',
    `a connection may hold at most ${max} subscriptions; unsubscribe from one first (nothing was stored)`,
  );

/**
 * Unsubscribes a connection from a channel. With `rev`: first the tombstone (so a subscribe the
 * client sent earlier, running later, sees it lost), then the delete, which applies only over a
 * lower rev — a subscribe the client sent later keeps the channel, and this reply says `superseded`.
 */
export async function unsubscribe(
  { connectionId, channel, rev }: { connectionId: string; channel: string; rev?: number },
  deps: Pick<ChannelSubscriptionDeps, 'subscriptions' | 'connections'>,
): Promise<ServerFrame> {
  if (rev !== undefined) {
    const connection = await deps.connections.get(connectionId);
    if (connection) await deps.subscriptions.recordUnsubscribe(channel, connectionId, rev, connection.ttl);
  }
  const removed = await deps.subscriptions.remove(channel, connectionId, { rev });
  if (removed.wasCounted) await deps.connections.releaseSubscription(connectionId);
  return {
    type: 'unsubscribed',
    channel,
    ...(rev === undefined ? {} : { rev }),
    ...(removed.applied ? {} : { superseded: true as const }),
  };
}
