import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, type CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';

/**
 * The DynamoDB API in this process (dynalite) on 127.0.0.1, with the stage table created from
 * infra/dynamodb-table.json — the same definition serverless.yml deploys. Used by the local stack
 * and by the tests.
 */
export interface LocalDynamodb {
  url: string;
  stop(): Promise<void>;
}

const TABLE_DEFINITION = join(import.meta.dirname, '..', 'dynamodb-table.json');

export async function startEmbeddedDynamodb({ port, tableName }: { port: number; tableName: string }): Promise<LocalDynamodb> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };

  try {
    await createStageTable(url, tableName);
    return { url, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Creates the stage table from infra/dynamodb-table.json on a local DynamoDB API and waits until it is ACTIVE. */
export async function createStageTable(endpoint: string, tableName: string): Promise<void> {
  const client = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  try {
    // TTL is a table setting DynamoDB applies in the background; the emulators have none, and
    // readers ignore expired items anyway.
    const { TimeToLiveSpecification: _ttl, ...table } = JSON.parse(await readFile(TABLE_DEFINITION, 'utf8'));
    await client.send(new CreateTableCommand({ ...(table as Omit<CreateTableCommandInput, 'TableName'>), TableName: tableName }));
    for (let attempt = 0; ; attempt++) {
      const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
      if (Table?.TableStatus === 'ACTIVE') break;
      if (attempt >= 100) throw new Error(`table ${tableName} did not become ACTIVE`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    client.destroy();
  }
}
