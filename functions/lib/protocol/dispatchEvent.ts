import * as z from '../validation.js';
import type { Message } from './protocol.js';
import type { SubscriberShard } from '../stores/subscriptionStore.js';

/**
 * The events fanout is invoked with.
 *
 * The dispatch event: PostgreSQL's dispatch sends it, built by the SQL function
 * cablecar.dispatch_event (infra/sql). During a release the old and the new fanout read the same
 * events, so the rules are (docs/releases.md, "Mixed versions"): `v` only grows; a newer version may add fields
 * but never removes or redefines the v1 fields below; a reader accepts any `v` >= 1 that carries them
 * and ignores the rest.
 *
 * The shard event (version 2): a fanout that splits a big channel sends one to its own version for
 * each other shard. It carries the message as `shardOf`, never as `message`, so a version-1 fanout
 * that got one by mistake would refuse it instead of delivering the whole channel again.
 */
export const DISPATCH_EVENT_VERSION = 1;
export const SHARD_EVENT_VERSION = 2;

const message = z.object({
  id: z.string().check(z.minLength(1)),
  channel: z.string().check(z.minLength(1)),
  seq: z.int().check(z.gte(1)),
  // Any JSON value, null included, but present. Not z.json(): the event was JSON already (the
  // Lambda runtime parsed it), and z.json()'s recursion would overflow on data nested ~2,000 deep.
  data: z.unknown().check(z.refine((data) => data !== undefined, 'data is required')),
  publishedAt: z.string().check(z.minLength(1)),
});

const dispatchEventV1 = z.object({ v: z.int().check(z.gte(1)), message });

const shardEventV2 = z.object({
  v: z.int().check(z.gte(2)),
  shardOf: message,
  shard: z.object({ index: z.int().check(z.gte(0)), count: z.int().check(z.gte(2)) }),
});

export interface DispatchEvent {
  v: number;
  message: Message;
}

export interface ShardEvent {
  v: number;
  shardOf: Message;
  shard: SubscriberShard;
}

export type FanoutEvent = { kind: 'dispatch'; message: Message } | { kind: 'shard'; message: Message; shard: SubscriberShard };

export function parseDispatchEvent(event: unknown): DispatchEvent {
  const parsed = dispatchEventV1.safeParse(event);
  if (!parsed.success) throw new Error(`not a dispatch event: ${z.prettifyError(parsed.error)}`);
  return parsed.data as DispatchEvent;
}

/**
 * The dispatch event of a stored message, as cablecar.dispatch_event builds it in SQL. Only for
 * dispatching a message again from outside PostgreSQL (the redrive command, when the version that
 * should take one of its shards is gone): version 1's fields only, so that any `live` reads it.
 */
export function dispatchEvent(message: Message): DispatchEvent {
  return { v: DISPATCH_EVENT_VERSION, message };
}

export function shardEvent(message: Message, shard: SubscriberShard): ShardEvent {
  return { v: SHARD_EVENT_VERSION, shardOf: message, shard };
}

/** Either event fanout accepts; anything else is refused with what was wrong. */
export function parseFanoutEvent(event: unknown): FanoutEvent {
  if (typeof event === 'object' && event !== null && 'shardOf' in event) {
    const parsed = shardEventV2.safeParse(event);
    if (!parsed.success) throw new Error(`not a shard event: ${z.prettifyError(parsed.error)}`);
    const { shardOf, shard } = parsed.data;
    if (shard.index >= shard.count) throw new Error(`not a shard event: shard ${shard.index} of ${shard.count}`);
    return { kind: 'shard', message: shardOf as Message, shard };
  }
  return { kind: 'dispatch', message: parseDispatchEvent(event).message };
}
