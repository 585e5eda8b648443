/** Entry point of `npm run release`; the command itself is in releaseCommand.ts. */

import { runRelease } from './releaseCommand.js';

// `npm run release -- shift … | head -2`: once the reader is gone, stdout emits EPIPE as an error
// event, which would crash the process mid-move. Remember it instead, and make the next write
// throw, so the command stops where it is and reports what moved on stderr (exit 3).
let stdoutFailure: Error | undefined;
process.stdout.on('error', (error) => {
  stdoutFailure = error;
});

process.exitCode = await runRelease(process.argv.slice(2), {
  out: (line) => {
    if (stdoutFailure) throw stdoutFailure;
    process.stdout.write(`${line}\n`);
  },
  err: (line) => process.stderr.write(`${line}\n`),
});
