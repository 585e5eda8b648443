import { startStubGateway } from '../test/support/stubGateway.js';

/**
 * The stub gateway in a process of its own, so that the bench's process.cpuUsage() counts only the
 * client side of a post. Options come as JSON in argv[2]; it prints its endpoint as one JSON line,
 * answers 'counts' and 'reset' over IPC, and serves until its parent closes stdin.
 */
const options = JSON.parse(process.argv[2] ?? '{}');
const stub = await startStubGateway(options);
process.stdout.write(`${JSON.stringify({ endpoint: stub.endpoint })}\n`);
process.on('message', (command) => {
  if (command === 'counts') {
    process.send!({ counts: stub.counts, distinct: stub.delivered.size, lastAt: stub.lastAt });
  }
  if (command === 'reset') stub.reset(), process.send!({ reset: true });
});
process.stdin.resume();
process.stdin.on('end', () => void stub.close().then(() => process.exit(0)));
