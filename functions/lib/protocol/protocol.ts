import * as z from '../validation.js';
import { CablecarError, type ErrorCode } from './errors.js';

/**
 * The wire protocol between browsers and cablecar, and the limits that come from API Gateway.
 * See DESIGN.md, "Wire protocol".
 */

/** API Gateway's cap on one WebSocket message; a bigger one closes the socket with 1009. */
export const MAX_OUTBOUND_FRAME_BYTES = 128 * 1024;
/**
 * How deep published `data` may nest (an array or object inside another counts one level). Real
 * payloads stay far below; the limit exists because serializing and validating JSON is recursive
 * (zod's z.json() overflows the stack near 2,000 levels, JSON.stringify near 5,000), so deeper data
 * is refused as the client's mistake before anything recursive sees it.
 */
export const MAX_DATA_DEPTH = 64;

/**
 * The deepest nesting of arrays and objects in a JSON text, found without parsing it (a loop, no
 * recursion, so any depth is safe to measure). Brackets inside strings do not count. Invalid JSON
 * gets a number too; the parser refuses it afterwards.
 */
export function jsonNestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    if (inString) {
      if (char === 0x5c /* \ */) i++;
      else if (char === 0x22 /* " */) inString = false;
    } else if (char === 0x22) inString = true;
    else if (char === 0x5b /* [ */ || char === 0x7b /* { */) deepest = Math.max(deepest, ++depth);
    else if (char === 0x5d /* ] */ || char === 0x7d /* } */) depth--;
  }
  return deepest;
}

/** Client frames are small commands; anything bigger is refused before it is parsed. */
export const MAX_INBOUND_FRAME_BYTES = 4 * 1024;

/**
 * Channel names: 1–128 characters, letters, digits and `_ - . :`, starting with a letter or digit.
 * cablecar.is_channel_name() applies the same rule in SQL (the tests check that both agree).
 * `#` is excluded because the DynamoDB keys use it as a separator, `/` because names travel in URL paths.
 */
export const CHANNEL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

const channelName = z.string({ error: 'channel is required and must be a string' }).check(
  z.regex(
    CHANNEL_NAME_PATTERN,
    'channel must be 1-128 characters of letters, digits, "_", "-", ".", ":", starting with a letter or digit',
  ),
);

export function parseChannel(value: unknown): string {
  const parsed = channelName.safeParse(value);
  if (!parsed.success) {
    throw new CablecarError('invalid_channel', parsed.error.issues[0]?.message ?? 'invalid channel');
  }
  return parsed.data;
}

/** A message's place in its channel: 0 (before the first) or more. */
export const seq = z.int().check(z.gte(0), z.lte(Number.MAX_SAFE_INTEGER));

/** Longest `id` a client frame may carry; every reply to the frame echoes it. */
export const MAX_FRAME_ID_LENGTH = 64;
export const frameId = z
  .string({ error: `id must be a string of at most ${MAX_FRAME_ID_LENGTH} characters` })
  .check(z.maxLength(MAX_FRAME_ID_LENGTH, `id must be a string of at most ${MAX_FRAME_ID_LENGTH} characters`));

/**
 * `rev`: the connection's own counter of subscription changes, increased by the client for every
 * subscribe/unsubscribe frame it sends. API Gateway runs each frame as its own concurrent invocation;
 * the store applies a change only over a lower rev, so changes take effect in the order the client
 * sent them (channelSubscriptions.ts). Without `rev` the change is applied as it arrives.
 */
const rev = z.int({ error: 'rev must be a positive integer' }).check(z.gte(1), z.lte(Number.MAX_SAFE_INTEGER));

export const subscribeFrame = z.strictObject({
  action: z.literal('subscribe'),
  channel: z.unknown(),
  after: z.optional(seq),
  rev: z.optional(rev),
  id: z.optional(frameId),
});
export const unsubscribeFrame = z.strictObject({
  action: z.literal('unsubscribe'),
  channel: z.unknown(),
  rev: z.optional(rev),
  id: z.optional(frameId),
});
export const pingFrame = z.strictObject({ action: z.literal('ping'), id: z.optional(frameId) });

/** A stored message as it travels to clients, in replays and in history. */
export interface Message {
  id: string;
  channel: string;
  seq: number;
  data: unknown;
  publishedAt: string;
}

/**
 * What a later frame of the same connection (a higher `rev`) decided instead: a `subscribed` or
 * `unsubscribed` with `superseded: true` answers a change that was not applied, or was undone,
 * because a frame the client sent after it had already taken effect. That later frame's reply
 * states the channel's final state.
 */
export interface ReplyToChange {
  rev?: number;
  superseded?: true;
}

export type ServerFrame =
  | ({ type: 'message' } & Message)
  | ({ type: 'subscribed'; channel: string; seq: number; truncated?: true; oldestSeq?: number } & ReplyToChange)
  | ({ type: 'unsubscribed'; channel: string } & ReplyToChange)
  | { type: 'pong' }
  | { type: 'error'; code: ErrorCode; message: string; channel?: string };

/**
 * What `subscribed` and history add when retention already deleted messages the client asked for:
 * `truncated`, and `oldestSeq`, the oldest seq still kept. Nothing when nothing was pruned.
 */
export const truncation = (oldestKeptSeq: number | undefined): { truncated?: true; oldestSeq?: number } =>
  oldestKeptSeq === undefined ? {} : { truncated: true, oldestSeq: oldestKeptSeq };

/** The `id` of the client frame a reply answers; never on `message` frames. */
export type Reply = ServerFrame & { id?: string };

export const messageFrame = (message: Message): ServerFrame => ({
  type: 'message',
  channel: message.channel,
  seq: message.seq,
  id: message.id,
  data: message.data,
  publishedAt: message.publishedAt,
});

export const errorFrame = (code: ErrorCode, message: string, channel?: string): ServerFrame => ({
  type: 'error',
  code,
  message,
  ...(channel === undefined ? {} : { channel }),
});

/**
 * The `id` a reply echoes: a valid one, or nothing. A frame whose `id` is not a string of at most
 * 64 characters is refused with invalid_frame (and that error carries no id: there is none to echo).
 */
export function replyIdOf(frame: Record<string, unknown>): string | undefined {
  if (!('id' in frame)) return undefined;
  const parsed = frameId.safeParse(frame.id);
  if (!parsed.success) throw new CablecarError('invalid_frame', `id: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

/** Parses a client frame's text; malformed JSON and oversize frames become protocol errors. */
export function parseClientFrame(body: string | undefined | null): Record<string, unknown> {
  const text = body ?? '';
  if (Buffer.byteLength(text) > MAX_INBOUND_FRAME_BYTES) {
    throw new CablecarError('frame_too_large', `frames from clients are limited to ${MAX_INBOUND_FRAME_BYTES} bytes`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CablecarError('malformed_json', 'frame is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CablecarError('invalid_frame', 'frame must be a JSON object with an "action"');
  }
  return value as Record<string, unknown>;
}

/** Validates a parsed frame against one action's schema; an unknown action gets its own code. */
export function parseAction<T extends z.ZodMiniType>(schema: T, frame: Record<string, unknown>): z.infer<T> {
  const parsed = schema.safeParse(frame);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
    throw new CablecarError('invalid_frame', `${where}${issue?.message ?? 'invalid frame'}`);
  }
  return parsed.data;
}

export function unknownAction(frame: Record<string, unknown>): CablecarError {
  const action = frame.action;
  return typeof action === 'string'
    ? new CablecarError('unknown_action', `unknown action "${action.slice(0, 64)}"; expected subscribe, unsubscribe or ping`)
    : new CablecarError('unknown_action', 'frame has no "action"; expected subscribe, unsubscribe or ping');
}

/**
 * The size of the frame fan-out will send for `data`, before the message exists: seq, id and
 * timestamp are counted at their widest so a message accepted here always fits the socket.
 * cablecar.publish() enforces the cap in SQL with the same arithmetic (cablecar.frame_bytes);
 * test/unit/sqlPublish.test.ts checks that the two agree.
 */
export function outboundFrameBytes(channel: string, dataJson: string): number {
  const widest = JSON.stringify({
    type: 'message',
    channel,
    seq: Number.MAX_SAFE_INTEGER,
    id: '00000000-0000-0000-0000-000000000000',
    data: null,
    publishedAt: '2000-01-01T00:00:00.000Z',
  });
  return Buffer.byteLength(widest) - 'null'.length + Buffer.byteLength(dataJson);
}
