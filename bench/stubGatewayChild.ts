import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { StubGateway, StubGatewayOptions } from '../test/support/stubGateway.js';

export interface StubCounts {
  counts: StubGateway['counts'];
  distinct: number;
  lastAt?: number;
}

/** Starts the stub gateway in a child process (bench/stubGatewayProcess.ts). */
export async function startStubGatewayChild(options: Omit<StubGatewayOptions, 'gone' | 'answer'> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'stubGatewayProcess.ts'), JSON.stringify(options)], {
    stdio: ['pipe', 'pipe', 'inherit', 'ipc'],
  });
  const endpoint: string = await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`stub gateway exited with ${code}`)));
    child.stdout!.once('data', (line) => resolve(JSON.parse(String(line)).endpoint));
  });
  const ask = <T>(command: string) =>
    new Promise<T>((resolve) => {
      child.once('message', (answer) => resolve(answer as T));
      child.send(command);
    });
  return {
    endpoint,
    counts: () => ask<StubCounts>('counts'),
    reset: () => ask<unknown>('reset'),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.stdin!.end();
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      }),
  };
}
