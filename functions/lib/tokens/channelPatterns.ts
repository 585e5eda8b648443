import * as z from '../validation.js';

/**
 * Channel patterns, as tokens grant them: a channel name in which `*` matches any run of characters
 * (none included), so `room-*` covers `room-1` and `room-`, `user:alice` only itself, `*` every
 * channel. `*` crosses `:` and `.` like any other character: `user:*` also covers `user:alice:inbox`.
 */

/** The characters of a channel name (protocol.ts, CHANNEL_NAME_PATTERN) and `*`, 1–128 of them. */
export const CHANNEL_PATTERN_PATTERN = /^[A-Za-z0-9_.:*-]{1,128}$/;

/** How many patterns one token may grant per list: they travel in the authorizer context on every frame. */
export const MAX_PATTERNS_PER_LIST = 64;

export const channelPatternList = z
  .array(z.string().check(z.regex(CHANNEL_PATTERN_PATTERN, 'a channel pattern is 1-128 characters of letters, digits, "_-.:" and "*"')))
  .check(z.maxLength(MAX_PATTERNS_PER_LIST, `at most ${MAX_PATTERNS_PER_LIST} channel patterns per list`));

/**
 * Whether `pattern` covers `channel`. Greedy matching with backtracking to the last `*` only, so it
 * takes O(pattern × channel) steps at worst — no regular expression built from token input, no
 * exponential case a crafted token could trigger.
 */
export function patternMatches(pattern: string, channel: string): boolean {
  let p = 0;
  let c = 0;
  let starAt = -1; // position in the pattern just after the last `*` seen
  let starChannel = 0; // where in the channel that `*` currently stops
  while (c < channel.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === channel[c]) {
      p++;
      c++;
    } else if (p < pattern.length && pattern[p] === '*') {
      starAt = ++p;
      starChannel = c;
    } else if (starAt >= 0) {
      // Let the last `*` swallow one more character and retry from there.
      p = starAt;
      c = ++starChannel;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

/** Whether any of `patterns` covers `channel`. */
export function anyPatternMatches(patterns: readonly string[], channel: string): boolean {
  return patterns.some((pattern) => patternMatches(pattern, channel));
}
