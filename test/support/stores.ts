import type pg from 'pg';
import { connectionStore, type ConnectionStore } from '../../functions/lib/stores/connectionStore.js';
import { createPool } from '../../functions/lib/stores/database.js';
import { messageStore, type MessageStore } from '../../functions/lib/stores/messageStore.js';
import { subscriptionStore, type SubscriptionStore } from '../../functions/lib/stores/subscriptionStore.js';
import { migrate } from '../../infra/migrate.js';
import { startDynamo, startPostgres, type TestDynamo, type TestPostgres } from './databases.js';

/**
 * The real stores of the domain modules, for one test file: connections and subscriptions on the
 * DynamoDB API (dynalite), messages on a migrated embedded PostgreSQL. `stop` ends the pool and
 * stops both; call it in afterAll.
 */
export interface TestStores {
  postgres: TestPostgres;
  dynamo: TestDynamo;
  pool: pg.Pool;
  connections: ConnectionStore;
  subscriptions: SubscriptionStore;
  messages: MessageStore;
  stop(): Promise<void>;
}

export async function startStores(): Promise<TestStores> {
  const [postgres, dynamo] = await Promise.all([startPostgres(), startDynamo()]);
  await migrate(postgres.url, { kind: 'local' });
  const pool = createPool({ connectionString: postgres.url, max: 5 });
  return {
    postgres,
    dynamo,
    pool,
    connections: connectionStore(dynamo.tableRef, { ttlSeconds: 3600 }),
    subscriptions: subscriptionStore(dynamo.tableRef),
    messages: messageStore(pool),
    async stop() {
      await pool.end();
      await Promise.all([postgres.stop(), dynamo.stop()]);
    },
  };
}

/** Every live subscriber of the channel, sorted. */
export async function subscriberIds(subscriptions: SubscriptionStore, channel: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const page of subscriptions.subscriberPages(channel, 100)) ids.push(...page);
  return ids.sort();
}
