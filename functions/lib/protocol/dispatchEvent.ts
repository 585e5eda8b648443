import { z } from 'zod';
import type { Message } from './protocol.js';

/**
 * The event PostgreSQL's dispatch sends to fan-out, built by the SQL function cablecar.dispatch_event
 * (infra/sql). During a release the old and the new fanout read the same events, so the rules are
 * (README, "Mixed versions"): `v` only grows; a newer version may add fields but never removes or
 * redefines the v1 fields below; a reader accepts any `v` >= 1 that carries them and ignores the rest.
 */
export const DISPATCH_EVENT_VERSION = 1;

const dispatchEventV1 = z.object({
  v: z.number().int().min(1),
  message: z.object({
    id: z.string().min(1),
    channel: z.string().min(1),
    seq: z.number().int().min(1),
    data: z.json(),
    publishedAt: z.string().min(1),
  }),
});

export interface DispatchEvent {
  v: number;
  message: Message;
}

export function parseDispatchEvent(event: unknown): DispatchEvent {
  const parsed = dispatchEventV1.safeParse(event);
  if (!parsed.success) throw new Error(`not a dispatch event: ${z.prettifyError(parsed.error)}`);
  return parsed.data as DispatchEvent;
}
