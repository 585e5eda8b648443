/** Entry point of `npm run release`; the command itself is in releaseCommand.ts. */

import { runRelease } from './releaseCommand.js';

process.exitCode = await runRelease(process.argv.slice(2), {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
});
