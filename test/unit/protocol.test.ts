import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CablecarError } from '../../functions/lib/protocol/errors.js';
import {
  CHANNEL_NAME_PATTERN,
  MAX_INBOUND_FRAME_BYTES,
  messageFrame,
  outboundFrameBytes,
  parseAction,
  parseChannel,
  parseClientFrame,
  pingFrame,
  replyIdOf,
  subscribeFrame,
  unknownAction,
  unsubscribeFrame,
  type Message,
} from '../../functions/lib/protocol/protocol.js';
import { thrownCablecarError } from '../support/cablecarErrors.js';

/** The wire protocol: pure functions, no database. */


describe('channel names', () => {
  const valid = ['a', 'room-1', 'Room_2', '9lives', 'org:team.room-3_x', 'a'.repeat(128), `z${'-'.repeat(127)}`];
  const invalid: Array<[string, unknown]> = [
    ['empty', ''],
    ['129 characters', 'a'.repeat(129)],
    ['with "#" (the DynamoDB key separator)', 'room#1'],
    ['with "/" (names travel in URL paths)', 'room/1'],
    ['a leading "-"', '-room'],
    ['a leading "_"', '_room'],
    ['a leading "."', '.room'],
    ['a leading ":"', ':room'],
    ['with a space', 'room 1'],
    ['with a non-ASCII letter', 'café'],
    ['with a trailing newline', 'room\n'],
    ['a number', 42],
    ['undefined', undefined],
    ['null', null],
  ];

  it.each(valid)('accepts %j', (name) => {
    expect(CHANNEL_NAME_PATTERN.test(name)).toBe(true);
    expect(parseChannel(name)).toBe(name);
  });

  it.each(invalid)('refuses a name %s with invalid_channel (400)', (_label, name) => {
    const error = thrownCablecarError(() => parseChannel(name));
    expect(error.code).toBe('invalid_channel');
    expect(error.httpStatus).toBe(400);
    expect(error.retryable).toBe(false);
    expect(error.message.length).toBeGreaterThan(0);
  });
});

describe('parseClientFrame', () => {
  it('returns the parsed object of a well-formed frame', () => {
    expect(parseClientFrame('{"action":"subscribe","channel":"room-1","after":42}')).toEqual({
      action: 'subscribe',
      channel: 'room-1',
      after: 42,
    });
  });

  it.each([
    ['truncated JSON', '{"action": "subscribe", '],
    ['an empty body', ''],
    ['a missing body', undefined],
    ['a null body', null],
    ['plain text', 'ping'],
    ['single quotes', "{'action':'ping'}"],
  ])('refuses %s as malformed_json', (_label, body) => {
    const error = thrownCablecarError(() => parseClientFrame(body));
    expect(error.code).toBe('malformed_json');
    expect(error.httpStatus).toBe(400);
  });

  it.each([
    ['an array', '[1,2,3]'],
    ['a string', '"ping"'],
    ['a number', '42'],
    ['null', 'null'],
    ['true', 'true'],
  ])('refuses JSON that is %s as invalid_frame', (_label, body) => {
    expect(thrownCablecarError(() => parseClientFrame(body)).code).toBe('invalid_frame');
  });

  it('refuses a frame over 4 KB as frame_too_large, counting bytes rather than characters', () => {
    const frameOf = (pad: string) => JSON.stringify({ action: 'ping', pad });
    const overhead = Buffer.byteLength(frameOf(''));
    const atLimit = frameOf('x'.repeat(MAX_INBOUND_FRAME_BYTES - overhead));
    expect(Buffer.byteLength(atLimit)).toBe(4096);
    expect(parseClientFrame(atLimit)).toMatchObject({ action: 'ping' });

    const oneOver = frameOf('x'.repeat(MAX_INBOUND_FRAME_BYTES - overhead + 1));
    expect(thrownCablecarError(() => parseClientFrame(oneOver)).code).toBe('frame_too_large');

    // 2,100 characters, but 4,200 bytes of UTF-8.
    const multibyte = frameOf('é'.repeat(2100));
    expect(multibyte.length).toBeLessThan(MAX_INBOUND_FRAME_BYTES);
    expect(thrownCablecarError(() => parseClientFrame(multibyte)).code).toBe('frame_too_large');
  });

  it('checks the size before parsing: an oversize frame that is not JSON is frame_too_large', () => {
    expect(thrownCablecarError(() => parseClientFrame('{'.repeat(5000))).code).toBe('frame_too_large');
  });
});

describe('parseAction and unknownAction', () => {
  it('accepts each action in its exact shape', () => {
    expect(parseAction(subscribeFrame, { action: 'subscribe', channel: 'room-1', after: 42 })).toEqual({
      action: 'subscribe',
      channel: 'room-1',
      after: 42,
    });
    expect(parseAction(subscribeFrame, { action: 'subscribe', channel: 'room-1' })).toEqual({ action: 'subscribe', channel: 'room-1' });
    expect(parseAction(subscribeFrame, { action: 'subscribe', channel: 'room-1', after: 0 }).after).toBe(0);
    expect(parseAction(unsubscribeFrame, { action: 'unsubscribe', channel: 'room-1' })).toEqual({ action: 'unsubscribe', channel: 'room-1' });
    expect(parseAction(pingFrame, { action: 'ping' })).toEqual({ action: 'ping' });
    const withIdAndRev = { action: 'subscribe', channel: 'room-1', after: 3, rev: 7, id: 'x'.repeat(64) };
    expect(parseAction(subscribeFrame, withIdAndRev)).toEqual(withIdAndRev);
    expect(parseAction(unsubscribeFrame, { action: 'unsubscribe', channel: 'c', rev: 8, id: '' })).toMatchObject({ rev: 8, id: '' });
    expect(parseAction(pingFrame, { action: 'ping', id: 'p1' })).toEqual({ action: 'ping', id: 'p1' });
  });

  it('accepts a client frame id of up to 64 characters on every action', () => {
    const id = 'x'.repeat(64);
    expect(parseAction(subscribeFrame, { action: 'subscribe', channel: 'room-1', id }).id).toBe(id);
    expect(parseAction(unsubscribeFrame, { action: 'unsubscribe', channel: 'room-1', id: '7' }).id).toBe('7');
    expect(parseAction(pingFrame, { action: 'ping', id: '8' })).toEqual({ action: 'ping', id: '8' });
  });

  it.each([
    ['a negative after', subscribeFrame, { action: 'subscribe', channel: 'room-1', after: -1 }, /after/],
    ['a fractional after', subscribeFrame, { action: 'subscribe', channel: 'room-1', after: 1.5 }, /after/],
    ['an after given as a string', subscribeFrame, { action: 'subscribe', channel: 'room-1', after: '42' }, /after/],
    ['an after beyond the safe integers', subscribeFrame, { action: 'subscribe', channel: 'room-1', after: 2 ** 53 }, /after/],
    ['an unknown field on subscribe', subscribeFrame, { action: 'subscribe', channel: 'room-1', since: 3 }, /since/],
    ['an unknown field on unsubscribe', unsubscribeFrame, { action: 'unsubscribe', channel: 'room-1', after: 3 }, /after/],
    ['an unknown field on ping', pingFrame, { action: 'ping', extra: true }, /extra/],
    ['a rev of 0', subscribeFrame, { action: 'subscribe', channel: 'room-1', rev: 0 }, /rev/],
    ['a fractional rev', unsubscribeFrame, { action: 'unsubscribe', channel: 'room-1', rev: 1.5 }, /rev/],
    ['a rev given as a string', subscribeFrame, { action: 'subscribe', channel: 'room-1', rev: '3' }, /rev/],
    ['a rev on ping', pingFrame, { action: 'ping', rev: 1 }, /rev/],
    ['an id of 65 characters', pingFrame, { action: 'ping', id: 'x'.repeat(65) }, /id/],
    ['an id that is a number', subscribeFrame, { action: 'subscribe', channel: 'room-1', id: 7 }, /id/],
  ] as const)('refuses %s with invalid_frame naming the field', (_label, schema, frame, field) => {
    const error = thrownCablecarError(() => parseAction(schema, { ...frame }));
    expect(error.code).toBe('invalid_frame');
    expect(error.httpStatus).toBe(400);
    expect(error.message).toMatch(field);
  });

  it('names an unknown action, cut to 64 characters', () => {
    const error = unknownAction({ action: 'dance' });
    expect(error).toBeInstanceOf(CablecarError);
    expect(error.code).toBe('unknown_action');
    expect(error.message).toContain('"dance"');
    expect(error.message).toMatch(/subscribe, unsubscribe or ping/);

    const long = unknownAction({ action: 'x'.repeat(1000) });
    expect(long.message).toContain(`"${'x'.repeat(64)}"`);
    expect(long.message).not.toContain('x'.repeat(65));
  });

  it.each([
    ['no action', { channel: 'room-1' }],
    ['an action that is not a string', { action: 42 }],
    ['a null action', { action: null }],
  ])('says a frame with %s has no "action"', (_label, frame) => {
    const error = unknownAction(frame);
    expect(error.code).toBe('unknown_action');
    expect(error.message).toMatch(/no "action"/);
  });
});

describe('replyIdOf: the id every reply echoes', () => {
  it('is the frame\'s id when it is a string of at most 64 characters, and nothing when there is none', () => {
    expect(replyIdOf({ action: 'ping', id: 'a-1' })).toBe('a-1');
    expect(replyIdOf({ action: 'ping', id: 'é'.repeat(64) })).toBe('é'.repeat(64));
    expect(replyIdOf({ action: 'ping' })).toBeUndefined();
  });

  it.each([
    ['65 characters', 'x'.repeat(65)],
    ['a number', 12],
    ['null', null],
    ['an object', { n: 1 }],
  ])('refuses an id of %s with invalid_frame', (_label, id) => {
    const error = thrownCablecarError(() => replyIdOf({ action: 'ping', id }));
    expect(error.code).toBe('invalid_frame');
    expect(error.message).toMatch(/^id: .*at most 64/);
  });
});

describe('outboundFrameBytes', () => {
  const frameBytes = (message: Message) => Buffer.byteLength(JSON.stringify(messageFrame(message)));

  it('messageFrame has exactly the documented fields, in order', () => {
    const message: Message = { id: randomUUID(), channel: 'room-1', seq: 3, data: { b: 1, a: [true, null] }, publishedAt: new Date().toISOString() };
    expect(JSON.stringify(messageFrame(message))).toBe(
      `{"type":"message","channel":"room-1","seq":3,"id":"${message.id}","data":{"b":1,"a":[true,null]},"publishedAt":"${message.publishedAt}"}`,
    );
  });

  it('equals the real frame size for a message with the widest seq, id and timestamp', () => {
    for (const data of [null, { text: 'hello', n: [1, 2.5, -3e-7], nested: { ok: true } }, 'naïve café ☕ 𝄞', ['"quotes"', 'back\\slash', 'tab\t', '\u0001']]) {
      const message: Message = {
        id: randomUUID(),
        channel: 'org:team.room-3_x',
        seq: Number.MAX_SAFE_INTEGER,
        data,
        publishedAt: '2026-11-24T16:50:45.996Z',
      };
      expect(outboundFrameBytes(message.channel, JSON.stringify(data))).toBe(frameBytes(message));
    }
  });

  it('is never smaller than the real frame, whatever the seq and data', () => {
    const payloads = [null, 0, '', 'x'.repeat(1000), { 'é': 'ü'.repeat(300) }, [[[]]], { emoji: '😀'.repeat(50) }];
    for (const seq of [1, 9, 10, 12345, 2 ** 31, Number.MAX_SAFE_INTEGER]) {
      for (const data of payloads) {
        for (const channel of ['a', 'room-1', 'c'.repeat(128)]) {
          const message: Message = { id: randomUUID(), channel, seq, data, publishedAt: new Date().toISOString() };
          const estimate = outboundFrameBytes(channel, JSON.stringify(data));
          expect(estimate).toBeGreaterThanOrEqual(frameBytes(message));
          // Only the seq's digits are counted at their widest: nothing else is padded.
          expect(estimate - frameBytes(message)).toBe(String(Number.MAX_SAFE_INTEGER).length - String(seq).length);
        }
      }
    }
  });
});
