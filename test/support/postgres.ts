// A database of its own for a test file, on the machine's PostgreSQL (MEDAID_TEST_POSTGRES_URL, by
// default postgres://postgres@127.0.0.1:5432/postgres): created with a unique name, dropped after.
// Reached through the adapter only (the architecture test lets one module import pg).
import { randomBytes } from 'node:crypto';
import { PostgresEventStore } from '#event-store-postgres';

export const ADMIN_URL = process.env['MEDAID_TEST_POSTGRES_URL'] || 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** Creates an empty database; fails with the server's answer when PostgreSQL cannot be reached. */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const name = `medaid_test_${label}_${process.pid}_${randomBytes(4).toString('hex')}`.toLowerCase();
  await PostgresEventStore.admin(ADMIN_URL, `CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: () => PostgresEventStore.admin(ADMIN_URL, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}
