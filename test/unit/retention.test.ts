import type pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { retentionSettings } from '../../functions/lib/config.js';
import { messageStore, type MessageStore } from '../../functions/lib/stores/messageStore.js';
import { migrate } from '../../infra/migrate.js';
import { postgresForThisFile } from '../support/databases.js';

/** Bounded history on a real PostgreSQL: cablecar.prune by count and age, and what history says (subscribe over the real stack: test/integration/nothingLost.test.ts). */
const running = postgresForThisFile();
let pool: pg.Pool;
let store: MessageStore;

beforeAll(async () => {
  await migrate(running.postgres.url, { kind: 'local' });
  pool = running.pool(running.postgres.url, { max: 4 });
  store = messageStore(pool);
});

async function publishN(channel: string, n: number, { dispatched = true } = {}) {
  for (let i = 1; i <= n; i++) await store.publish(channel, JSON.stringify({ i }));
  if (dispatched) await pool.query('UPDATE cablecar.messages SET dispatched_at = now() WHERE channel = $1', [channel]);
}
const keptSeqs = async (channel: string) =>
  (await pool.query<{ seq: string }>('SELECT seq FROM cablecar.messages WHERE channel = $1 ORDER BY seq', [channel])).rows.map((r) => Number(r.seq));

describe('retention', () => {
  it('keeps the newest maxCount of each channel, and history after pruned seqs says truncated with the oldest seq kept', async () => {
    await publishN('ret-count', 10);
    await publishN('ret-small', 2);
    expect(await store.prune({ maxCount: 4 })).toBe(6);
    expect(await keptSeqs('ret-count')).toEqual([7, 8, 9, 10]);
    expect(await keptSeqs('ret-small')).toEqual([1, 2]);

    expect(await store.history('ret-count', 2, 100)).toMatchObject({ hasMore: false, truncatedBefore: 7 });
    expect((await store.history('ret-count', 2, 100)).messages.map((m) => m.seq)).toEqual([7, 8, 9, 10]);
    expect((await store.history('ret-count', 6, 100)).truncatedBefore).toBeUndefined();
    expect((await store.history('ret-small', 0, 100)).truncatedBefore).toBeUndefined();
    // Pruning again deletes nothing more.
    expect(await store.prune({ maxCount: 4 })).toBe(0);
  });

  it('prunes by age, never an undispatched message nor anything after it, and honours a per-channel override', async () => {
    await publishN('ret-age', 5);
    await pool.query(`UPDATE cablecar.messages SET published_at = now() - interval '2 hours' WHERE channel = 'ret-age' AND seq <= 3`);
    expect(await store.prune({ maxAgeSeconds: 3600 })).toBeGreaterThanOrEqual(3);
    expect(await keptSeqs('ret-age')).toEqual([4, 5]);

    await publishN('ret-waiting', 5, { dispatched: false });
    await pool.query(`UPDATE cablecar.messages SET dispatched_at = now() WHERE channel = 'ret-waiting' AND seq IN (1, 2, 4)`);
    await store.prune({ maxCount: 1 });
    expect(await keptSeqs('ret-waiting')).toEqual([3, 4, 5]);

    await publishN('ret-override', 6);
    await pool.query(`UPDATE cablecar.channels SET retention_max_count = 2 WHERE name = 'ret-override'`);
    await store.prune({ maxCount: 100 });
    expect(await keptSeqs('ret-override')).toEqual([5, 6]);
  });

  it('reads its defaults and limits from the environment: 30 days and 100000 messages, 0 meaning no limit', () => {
    expect(retentionSettings({})).toEqual({ maxAgeSeconds: 2_592_000, maxCount: 100_000 });
    expect(retentionSettings({ MESSAGE_RETENTION_SECONDS: '0', MESSAGE_RETENTION_COUNT: '50' })).toEqual({ maxAgeSeconds: undefined, maxCount: 50 });
    expect(() => retentionSettings({ MESSAGE_RETENTION_COUNT: '-1' })).toThrow(/MESSAGE_RETENTION_COUNT/);
  });
});
