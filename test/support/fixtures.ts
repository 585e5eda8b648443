import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** A JSON file of test/fixtures/<folder>: what a version writes or receives, kept as it was. */
export const readFixture = async (folder: string, name: string) =>
  JSON.parse(await readFile(join(import.meta.dirname, '..', 'fixtures', folder, name), 'utf8')) as Record<string, any>;
