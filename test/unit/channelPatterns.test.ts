import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CHANNEL_NAME_PATTERN, parseChannel } from '../../functions/lib/protocol/protocol.js';
import { CHANNEL_PATTERN_PATTERN, anyPatternMatches, patternMatches } from '../../functions/lib/tokens/channelPatterns.js';

/**
 * Channel names and the patterns tokens grant, as properties over generated input (fast-check).
 * The oracles below are written independently of the code under test: a character-by-character
 * reading of the README's rules, and a regular expression built from the pattern.
 */
const NAME_CHARS = 'ABCXYZabcxyz0189_-.:';
const nameChar = fc.constantFrom(...NAME_CHARS);
const leadingChar = fc.constantFrom(...NAME_CHARS.replace(/[_.:-]/g, ''));
/** Valid channel names, built from the rules rather than from the regular expression. */
const channelName = fc
  .tuple(leadingChar, fc.array(nameChar, { maxLength: 127 }))
  .map(([first, rest]) => first + rest.join(''));

/** The README's rule, read one character at a time. */
function isChannelName(text: string): boolean {
  const chars = [...text];
  if (chars.length < 1 || chars.length > 128 || text.length > 128) return false;
  const isAlnum = (c: string) => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  return isAlnum(chars[0]!) && chars.every((c) => isAlnum(c) || '_-.:'.includes(c));
}

/** `*` = any run of characters, everything else literal: the oracle for patternMatches. */
const patternRegExp = (pattern: string) =>
  new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')).join('.*')}$`, 's');

describe('channel names (protocol.ts CHANNEL_NAME_PATTERN)', () => {
  it('parseChannel accepts a string exactly when the rules allow it', () => {
    const candidates = fc.oneof(
      channelName,
      fc.string({ maxLength: 140 }),
      fc.string({ unit: fc.constantFrom(...NAME_CHARS, '#', '/', ' ', '*', 'é', '\n'), maxLength: 140 }),
    );
    fc.assert(
      fc.property(candidates, (text) => {
        let accepted = true;
        try {
          expect(parseChannel(text)).toBe(text);
        } catch {
          accepted = false;
        }
        expect(accepted).toBe(isChannelName(text));
        expect(CHANNEL_NAME_PATTERN.test(text)).toBe(isChannelName(text));
      }),
      { numRuns: 2000 },
    );
  });

  it('never allows "#" (the DynamoDB key separator) or "/" (names travel in URL paths)', () => {
    fc.assert(
      fc.property(channelName, fc.nat(), fc.constantFrom('#', '/'), (name, at, bad) => {
        const i = at % (name.length + 1);
        expect(isChannelName(name.slice(0, i) + bad + name.slice(i))).toBe(false);
        expect(() => parseChannel(name.slice(0, i) + bad + name.slice(i))).toThrow();
      }),
    );
  });
});

describe('channel patterns', () => {
  /** Patterns over a two-letter alphabet, so that matches and near-misses both come up often. */
  const small = (withStar: boolean) => fc.string({ unit: fc.constantFrom('a', 'b', ...(withStar ? ['*'] : [])), maxLength: 12 });

  it('match exactly what the regular-expression reading of the rule matches', () => {
    fc.assert(
      fc.property(small(true), small(false), (pattern, channel) => {
        expect(patternMatches(pattern, channel)).toBe(patternRegExp(pattern).test(channel));
      }),
      { numRuns: 5000 },
    );
  });

  it('every channel name is a pattern that matches itself and nothing else', () => {
    fc.assert(
      fc.property(channelName, channelName, (name, other) => {
        expect(CHANNEL_PATTERN_PATTERN.test(name)).toBe(true);
        expect(patternMatches(name, name)).toBe(true);
        expect(patternMatches(name, other)).toBe(name === other);
      }),
    );
  });

  it('"*" matches every channel, and "<prefix>*" exactly the channels that start with the prefix', () => {
    fc.assert(
      fc.property(channelName, channelName, (prefix, name) => {
        expect(patternMatches('*', name)).toBe(true);
        expect(patternMatches(`${prefix}*`, name)).toBe(name.startsWith(prefix));
        expect(patternMatches(`${prefix}*`, prefix)).toBe(true); // "*" may match nothing
      }),
    );
  });

  it('replacing any pieces of a channel name with "*" gives a pattern that still matches it', () => {
    fc.assert(
      fc.property(
        channelName.chain((name) => fc.tuple(fc.constant(name), fc.array(fc.boolean(), { minLength: name.length, maxLength: name.length }))),
        ([name, starred]) => {
          const pattern = [...name].map((c, i) => (starred[i] ? '*' : c)).join('').replace(/\*+/g, '*');
          expect(patternMatches(pattern, name)).toBe(true);
        },
      ),
    );
  });

  it('"." and ":" are literal, and "*" crosses them', () => {
    expect(patternMatches('user.alice', 'userXalice')).toBe(false);
    expect(patternMatches('user:*', 'user:alice:inbox')).toBe(true);
    expect(patternMatches('user:*:inbox', 'user:alice:inbox')).toBe(true);
    expect(patternMatches('user:*:inbox', 'user:alice:outbox')).toBe(false);
    expect(patternMatches('room-*', 'room')).toBe(false);
  });

  it('any of a list: covered when one pattern matches, never by an empty list', () => {
    fc.assert(
      fc.property(fc.array(small(true), { maxLength: 5 }), small(false), (patterns, channel) => {
        expect(anyPatternMatches(patterns, channel)).toBe(patterns.some((p) => patternRegExp(p).test(channel)));
      }),
    );
    expect(anyPatternMatches([], 'room-1')).toBe(false);
  });

  it('a pattern is 1-128 characters of channel characters and "*"', () => {
    for (const ok of ['*', 'room-*', 'user:alice', '*-admin', 'a'.repeat(128)]) expect(CHANNEL_PATTERN_PATTERN.test(ok)).toBe(true);
    for (const bad of ['', 'room/*', 'room#*', 'room *', 'a'.repeat(129), 'röom']) expect(CHANNEL_PATTERN_PATTERN.test(bad)).toBe(false);
  });
});
