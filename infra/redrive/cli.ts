/** Entry point of `npm run redrive`; the command itself is in redrive.ts. */
import { runRedrive } from './redrive.js';

process.exitCode = await runRedrive(process.argv.slice(2), {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
});
