import { en } from 'zod/locales';
import { config } from 'zod/mini';

/**
 * zod for every handler, as its mini build: the full build's chained API costs about 450 KB in every
 * bundle, the mini build about 15 KB. The English messages are loaded explicitly (the mini build has
 * none by default), so a refused frame or setting still says what was wrong. Import it as a
 * namespace (`import * as z`), which keeps the bundler able to drop what a function does not use.
 */
config(en());

export * from 'zod/mini';
