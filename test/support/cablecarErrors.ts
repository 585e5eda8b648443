import { expect } from 'vitest';
import { CablecarError } from '../../functions/lib/protocol/errors.js';

/** Runs `fn`, expects it to throw a CablecarError, and returns it for closer checks. */
export function thrownCablecarError(fn: () => unknown): CablecarError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CablecarError);
    return error as CablecarError;
  }
  throw new Error('expected a CablecarError, nothing was thrown');
}

/** Awaits `promise`, expects it to reject with a CablecarError, and returns it for closer checks. */
export async function rejectedCablecarError(promise: Promise<unknown>): Promise<CablecarError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CablecarError);
  return error as CablecarError;
}
