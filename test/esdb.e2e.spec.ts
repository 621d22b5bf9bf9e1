// The service on the EventStoreDB adapter, selected by configuration (`--store esdb://…` or
// EVENTSTORE_CONNECTION_STRING): the real service as a child process, talking real gRPC through
// @eventstore/db-client to test/esdb-double — a PROTOCOL TEST DOUBLE, not EventStoreDB (no
// EventStoreDB server can be installed on these machines; see the README).
import { afterEach, describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { EsdbEventStore } from '#event-store-esdb';
import { EsdbDouble } from './esdb-double/index.js';
import { playOverHttp, scenarios } from './support/scenarios.js';
import { BIN, ROOT, Service, discharge, freePort, http, removeDir, startService, tempDir } from './support/service.js';

const doubles: EsdbDouble[] = [];
const services: Service[] = [];

async function double(): Promise<EsdbDouble> {
  const d = await EsdbDouble.start();
  doubles.push(d);
  return d;
}

async function serviceOn(d: EsdbDouble, options: { viaEnv?: boolean; demoPolicy?: boolean } = {}): Promise<Service> {
  const s = options.viaEnv
    ? await startService({ demoPolicy: options.demoPolicy, env: { EVENTSTORE_CONNECTION_STRING: d.connectionString } })
    : await startService({ demoPolicy: options.demoPolicy, args: ['--store', d.connectionString] });
  services.push(s);
  return s;
}

afterEach(async () => {
  for (const s of services.splice(0)) {
    await s.stop();
    removeDir(s.dataDir);
  }
  for (const d of doubles.splice(0)) await d.stop();
});

describe('the service on the EventStoreDB adapter (against the protocol test double)', () => {
  it.each(scenarios)('reproduces the shared scenario %s over HTTP', async (file) => {
    // Given a service whose store is an empty EventStoreDB (the double)
    const service = await serviceOn(await double(), { demoPolicy: false });
    // when every command of the scenario is posted, then each answer is the expected line
    const { actual, expected } = await playOverHttp(service.url, file);
    expect(actual.length).toBeGreaterThan(0);
    expect(actual).toEqual(expected);
  });

  it('records the events in EventStoreDB, not in the data directory, and rebuilds from it after a restart', async () => {
    // Given a service selected by EVENTSTORE_CONNECTION_STRING, with a dibao person and a settlement
    const d = await double();
    const first = await serviceOn(d, { viaEnv: true });
    expect((await http(first.url, 'POST', '/v1/persons/p-esdb/categories', { category: 'dibao', validFrom: '2012-01-01' })).status).toBe(
      200,
    );
    const settled = await http(
      first.url,
      'POST',
      '/v1/settlements',
      discharge({ personId: 'p-esdb', visitId: 'v-esdb-1', totalFen: 8_000_000 }),
    );
    expect(settled.status).toBe(201);
    expect(existsSync(join(first.dataDir, 'events.sqlite'))).toBe(false);
    expect((await http(first.url, 'GET', '/ready')).body.store).toBe('esdb');

    // then the person's stream in EventStoreDB holds the category and the settlement
    const store = await EsdbEventStore.connect(d.connectionString);
    try {
      expect((await store.readStream('person-p-esdb')).map((e) => e.type)).toEqual(['CategoryAssigned', 'DischargeSettled']);
    } finally {
      await store.close();
    }

    // when the service stops and a new one starts on another, empty data directory
    await first.stop();
    const second = await serviceOn(d, { viaEnv: true });
    // then it knows the settlement (a re-post is a duplicate) and the person's counters
    const again = await http(
      second.url,
      'POST',
      '/v1/settlements',
      discharge({ personId: 'p-esdb', visitId: 'v-esdb-1', totalFen: 8_000_000 }),
    );
    expect([again.status, again.body.duplicate, again.body.settlementId]).toEqual([200, true, settled.body.settlementId]);
    const { duplicate: _a, ...firstResult } = settled.body;
    const { duplicate: _b, ...againResult } = again.body;
    expect(againResult).toEqual(firstResult);
    const person = await http(second.url, 'GET', '/v1/persons/p-esdb');
    expect(JSON.stringify(person.body)).toContain(String(settled.body.aidPayFen));
    // and the demo policy was published once, on the first start only
    const policies = await http(second.url, 'GET', '/v1/policies');
    expect(policies.body.map((p: { policyId: string }) => p.policyId)).toEqual(['demo-county']);
  });

  it('settles a visit once when the service is killed between its marker and its events, and a second instance takes over', async () => {
    // Given a service on EventStoreDB and a dibao person
    const d = await double();
    const first = await serviceOn(d);
    expect((await http(first.url, 'POST', '/v1/persons/p-kill/categories', { category: 'dibao', validFrom: '2012-01-01' })).status).toBe(
      200,
    );
    // when its settlement's events are held at the server (its visit marker is written) and the process is killed -9
    const release = d.holdAppends('person-p-kill');
    const body = discharge({ personId: 'p-kill', visitId: 'v-kill', totalFen: 8_000_000 });
    void http(first.url, 'POST', '/v1/settlements', body).catch(() => undefined);
    for (let i = 0; i < 1_000 && d.heldAppends('person-p-kill') === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(d.heldAppends('person-p-kill')).toBe(1);
    expect((await first.stop('SIGKILL')).signal).toBe('SIGKILL');
    release(false); // the write never reached the log

    // then another instance settles the visit (once: a re-post is a duplicate), past the dead marker
    const second = await serviceOn(d);
    const settled = await http(second.url, 'POST', '/v1/settlements', body);
    expect([settled.status, settled.body.status]).toEqual([201, 'settled']);
    const again = await http(second.url, 'POST', '/v1/settlements', body);
    expect([again.status, again.body.duplicate, again.body.settlementId]).toEqual([200, true, settled.body.settlementId]);
    const store = await EsdbEventStore.connect(d.connectionString);
    try {
      expect((await store.readStream('person-p-kill')).map((e) => e.type)).toEqual(['CategoryAssigned', 'DischargeSettled']);
    } finally {
      await store.close();
    }
    // and the killed instance's marker was fenced in the person's stream (the adapter's own event, never shown)
    expect(d.log.readStream('person-p-kill', 'start', false, 10)!.map((e) => e.type)).toEqual([
      'CategoryAssigned',
      '@fence',
      'DischargeSettled',
    ]);
  });

  it('settles a visit once when two instances on one EventStoreDB receive it at the same time', async () => {
    // Given two instances on one EventStoreDB (the second started after the first published the demo policy)
    const d = await double();
    const a = await serviceOn(d);
    const b = await serviceOn(d);
    for (const person of ['p-race-a', 'p-race-b'])
      expect((await http(a.url, 'POST', `/v1/persons/${person}/categories`, { category: 'dibao', validFrom: '2012-01-01' })).status).toBe(
        200,
      );
    // when the same discharge is posted 12 times, alternately to each, all at once
    const body = discharge({ personId: 'p-race-a', visitId: 'v-race', totalFen: 5_000_000 });
    const replies = await Promise.all(
      Array.from({ length: 12 }, (_, i) => http((i % 2 === 0 ? a : b).url, 'POST', '/v1/settlements', body)),
    );
    // then exactly one settles it and every other answer is that settlement, as a duplicate
    expect(replies.filter((r) => r.status === 201)).toHaveLength(1);
    const id = replies.find((r) => r.status === 201)!.body.settlementId;
    for (const r of replies.filter((r) => r.status !== 201))
      expect([r.status, r.body.duplicate, r.body.settlementId]).toEqual([200, true, id]);
    // and the same visit for another person, posted to both at once, is settled by neither
    const other = discharge({ personId: 'p-race-b', visitId: 'v-race', totalFen: 5_000_000 });
    const conflicts = await Promise.all([http(a.url, 'POST', '/v1/settlements', other), http(b.url, 'POST', '/v1/settlements', other)]);
    expect(conflicts.map((r) => r.status)).toEqual([409, 409]);
    const store = await EsdbEventStore.connect(d.connectionString);
    try {
      expect((await store.readStream('person-p-race-a')).map((e) => e.type)).toEqual(['CategoryAssigned', 'DischargeSettled']);
      expect((await store.readStream('person-p-race-b')).map((e) => e.type)).toEqual(['CategoryAssigned']);
    } finally {
      await store.close();
    }
  });

  it('runs the double on its own (npm run esdb-double), saying it is not EventStoreDB and keeps its data in memory, and a service uses it', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['dist/test/esdb-double/main.js', '--port', String(port)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      for (let i = 0; i < 500 && !out.includes('listening:'); i++) await new Promise((r) => setTimeout(r, 10));
      expect(out).toContain('this is NOT EventStoreDB');
      expect(out).toContain('IN MEMORY ONLY');
      const url = `esdb://127.0.0.1:${port}?tls=false`;
      expect(out).toContain(`listening: ${url}`);
      const service = await startService({ args: ['--store', url] });
      services.push(service);
      const settled = await http(service.url, 'POST', '/v1/settlements', discharge({ visitId: 'v-standalone' }));
      expect(settled.status).toBe(201);
      const store = await EsdbEventStore.connect(url);
      try {
        expect((await store.readStream('person-p-1')).map((e) => e.type)).toEqual(['DischargeSettled']);
      } finally {
        await store.close();
      }
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });

  it('refuses a --store that is neither sqlite nor an EventStoreDB or PostgreSQL connection string, without echoing its password', () => {
    const dir = tempDir();
    try {
      const run = spawnSync(process.execPath, [BIN, 'serve', '--data', dir, '--port', '0', '--store', 'mysql://root:s3cret@db/medaid'], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('--store must be "sqlite", an esdb:// or a postgres:// connection string, not mysql:');
      expect(run.stderr).not.toContain('s3cret');
    } finally {
      removeDir(dir);
    }
  });
});
