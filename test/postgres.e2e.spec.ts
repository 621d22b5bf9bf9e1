// The service on the PostgreSQL adapter (`--store postgres://…`), as a child process, against the
// machine's real PostgreSQL server: a database of its own per test, dropped after.
import { afterEach, describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { PostgresEventStore } from '#event-store-postgres';
import { playOverHttp, scenarios } from './support/scenarios.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { BIN, ROOT, Service, discharge, http, removeDir, startService, tempDir } from './support/service.js';

const databases: TestDatabase[] = [];
const services: Service[] = [];

async function database(): Promise<TestDatabase> {
  const db = await createTestDatabase('e2e');
  databases.push(db);
  return db;
}

async function serviceOn(db: TestDatabase, options: { demoPolicy?: boolean } = {}): Promise<Service> {
  const s = await startService({ demoPolicy: options.demoPolicy, args: ['--store', db.url] });
  services.push(s);
  return s;
}

afterEach(async () => {
  for (const s of services.splice(0)) {
    await s.stop();
    removeDir(s.dataDir);
  }
  for (const db of databases.splice(0)) await db.drop();
});

describe('the service on the PostgreSQL adapter (the real server)', () => {
  it.each(scenarios)('reproduces the shared scenario %s over HTTP', async (file) => {
    const service = await serviceOn(await database(), { demoPolicy: false });
    const { actual, expected } = await playOverHttp(service.url, file);
    expect(actual.length).toBeGreaterThan(0);
    expect(actual).toEqual(expected);
  });

  it('records the events in PostgreSQL, not in the data directory, rebuilds from it after a restart, and audits from it', async () => {
    // Given a service on PostgreSQL with a dibao person and a settlement
    const db = await database();
    const first = await serviceOn(db);
    expect((await http(first.url, 'POST', '/v1/persons/p-pg/categories', { category: 'dibao', validFrom: '2012-01-01' })).status).toBe(200);
    const body = discharge({ personId: 'p-pg', visitId: 'v-pg-1', totalFen: 8_000_000 });
    const settled = await http(first.url, 'POST', '/v1/settlements', body);
    expect(settled.status).toBe(201);
    expect(existsSync(join(first.dataDir, 'events.sqlite'))).toBe(false);
    expect((await http(first.url, 'GET', '/ready')).body.store).toBe('postgres');
    const store = await PostgresEventStore.connect({ connectionString: db.url });
    try {
      expect((await store.readStream('person-p-pg')).map((e) => e.type)).toEqual(['CategoryAssigned', 'DischargeSettled']);
    } finally {
      await store.close();
    }

    // when it stops and a new one starts on another, empty data directory
    await first.stop();
    const second = await serviceOn(db);
    // then a re-post is the same settlement, as a duplicate, and the person's counters are known
    const again = await http(second.url, 'POST', '/v1/settlements', body);
    expect([again.status, again.body.duplicate, again.body.settlementId]).toEqual([200, true, settled.body.settlementId]);
    const person = await http(second.url, 'GET', '/v1/persons/p-pg');
    expect(JSON.stringify(person.body)).toContain(String(settled.body.aidPayFen));
    const policies = await http(second.url, 'GET', '/v1/policies');
    expect(policies.body.map((p: { policyId: string }) => p.policyId)).toEqual(['demo-county']);
    await second.stop();

    // and `medaid audit verify` proves the log from PostgreSQL against the journal the second one kept
    const audit = spawnSync(process.execPath, [BIN, 'audit', 'verify', '--data', second.dataDir, '--store', db.url], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect([audit.status, audit.stdout]).toEqual([0, expect.stringContaining('settlements recomputed: 1, problems: 0')]);
  });

  it('refuses a second service on the same log while the first runs, and lets one start after the first is killed -9', async () => {
    const db = await database();
    const first = await serviceOn(db);
    // a second service (its own data directory) on the same PostgreSQL log is refused at start
    const dir = tempDir();
    try {
      const refused = spawnSync(process.execPath, [BIN, 'serve', '--data', dir, '--port', '0', '--store', db.url], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(refused.status).toBe(1);
      expect(refused.stderr).toContain('another medaid process is the writer');
    } finally {
      removeDir(dir);
    }
    const settled = await http(first.url, 'POST', '/v1/settlements', discharge({ visitId: 'v-pg-kill' }));
    expect(settled.status).toBe(201);
    // when the first is killed -9, its session ends and its lock with it
    expect((await first.stop('SIGKILL')).signal).toBe('SIGKILL');
    const second = await serviceOn(db);
    const again = await http(second.url, 'POST', '/v1/settlements', discharge({ visitId: 'v-pg-kill' }));
    expect([again.status, again.body.duplicate, again.body.settlementId]).toEqual([200, true, settled.body.settlementId]);
  });
});
