// Three service instances (`--shared`) on one store — the real PostgreSQL server, and the EventStoreDB
// PROTOCOL TEST DOUBLE (not EventStoreDB) in a process of its own — as real processes behind no
// balancer: a client spreads 5,000 settlements of 200 persons over them, retrying on another
// instance when one fails, and one instance is killed -9 in the middle. Then: every acknowledged
// settlement is in the log once with the id it was acknowledged with, every visit has one active
// settlement, and `medaid audit verify` — a sequential recomputation of every settlement in log
// order (caps included) and the journal's hash chain, balance and payouts — finds no problem.
import { afterEach, describe, expect, it } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import type { EventStore } from '#event-store';
import { EsdbEventStore } from '#event-store-esdb';
import { PostgresEventStore } from '#event-store-postgres';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { BIN, ROOT, Service, discharge, freePort, http, pool, removeDir, startService, writeAuthFile } from './support/service.js';

const PERSONS = 200;
const VISITS_PER_PERSON = 25;
const CONCURRENCY = 48;
const KILL_AFTER = 2_000;

interface SharedStore {
  url: string;
  open(): Promise<EventStore>;
  drop(): Promise<void>;
}

async function postgres(): Promise<SharedStore> {
  const db: TestDatabase = await createTestDatabase('multi');
  return { url: db.url, open: () => PostgresEventStore.connect({ connectionString: db.url }), drop: () => db.drop() };
}

/** `npm run esdb-double` as its own process: the instances reach it as they would a server. */
async function esdbDouble(): Promise<SharedStore> {
  const port = await freePort();
  const child = spawn(process.execPath, ['dist/test/esdb-double/main.js', '--port', String(port)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  for (let i = 0; i < 1_000 && !out.includes('listening:'); i++) await new Promise((r) => setTimeout(r, 10));
  const url = `esdb://127.0.0.1:${port}?tls=false`;
  return {
    url,
    open: () => EsdbEventStore.connect(url),
    drop: async () => {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

let shared: SharedStore | undefined;
const services: Service[] = [];

afterEach(async () => {
  for (const s of services.splice(0)) {
    await s.stop();
    removeDir(s.dataDir);
  }
  await shared?.drop();
  shared = undefined;
});

/**
 * One settlement per visit; 25 visits of a person across 2012, amounts that run into the aid cap.
 * A person's visits come one after another, so with 48 in flight several of them are decided at
 * once on different instances: the person's stream is where they meet.
 */
function visits(): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (let p = 0; p < PERSONS; p++) {
    for (let v = 0; v < VISITS_PER_PERSON; v++) {
      const month = 1 + (v % 12);
      const day = String(1 + (v % 27)).padStart(2, '0');
      out.push(
        discharge({
          personId: `p-mi-${p}`,
          visitId: `v-mi-${p}-${v}`,
          admissionDate: `2012-${String(month).padStart(2, '0')}-${day}`,
          dischargeDate: `2012-${String(month).padStart(2, '0')}-${day}`,
          totalFen: 300_000 + ((p * 7919 + v * 104_729) % 4_000_000),
        }),
      );
    }
  }
  return out;
}

describe.each([
  ['the real PostgreSQL server', postgres],
  ['the EventStoreDB protocol test double (not EventStoreDB)', esdbDouble],
])('three instances on one store: %s', (_name, start) => {
  it('settles 5,000 discharges of 200 persons once each, through a kill -9 of one instance, as a sequential recomputation would', async () => {
    shared = await start();
    const url = shared.url;
    // all three start at once on the empty database (the demo policy is published once)
    services.push(...(await Promise.all([0, 1, 2].map(() => startService({ args: ['--store', url, '--shared'] })))));
    const alive = new Set(services);
    const pick = (i: number) => {
      const list = services.filter((s) => alive.has(s));
      return list[i % list.length]!;
    };
    /** Posts to one instance; on a connection failure or a 503, to the next one, until answered. */
    const post = async (i: number, path: string, body: unknown) => {
      for (let attempt = 0; attempt < 20; attempt++) {
        try {
          const r = await http(pick(i + attempt).url, 'POST', path, body);
          if (r.status !== 503) return r;
        } catch {
          // the instance went away: another one takes the request
        }
        await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
      }
      throw new Error(`no instance answered ${path}`);
    };
    for (let p = 0; p < PERSONS; p++) {
      const category = p % 3 === 0 ? 'tekun' : 'dibao';
      expect((await post(p, `/v1/persons/p-mi-${p}/categories`, { category, validFrom: '2010-01-01' })).status).toBe(200);
    }

    let acknowledged = 0;
    const victim = services[1]!;
    const answers = await pool(visits(), CONCURRENCY, async (d, i) => {
      const r = await post(i, '/v1/settlements', d);
      if (++acknowledged === KILL_AFTER) {
        alive.delete(victim);
        void victim.stop('SIGKILL');
      }
      return { d, r };
    });
    expect((await victim.exited).signal).toBe('SIGKILL');

    // every discharge was answered: settled once (201), or found settled by its retry (200, duplicate)
    const odd = answers.filter(({ r }) => !(r.status === 201 || (r.status === 200 && r.body.duplicate === true)));
    expect(odd.slice(0, 3).map(({ r }) => [r.status, r.body])).toEqual([]);
    for (const { d, r } of answers) {
      expect([d.visitId, r.status === 201 || (r.status === 200 && r.body.duplicate === true)]).toEqual([d.visitId, true]);
    }
    const created = answers.filter((a) => a.r.status === 201).length;
    expect(created).toBeGreaterThan(4_900);

    // the log: one DischargeSettled per visit, with the id each answer gave
    const store = await shared.open();
    try {
      const settled = new Map<string, string[]>();
      for (
        let from = 0, page = await store.readAll({ maxCount: 5_000 });
        page.length > 0;
        page = await store.readAll({ fromPosition: from, maxCount: 5_000 })
      ) {
        for (const e of page) {
          if (e.type !== 'DischargeSettled') continue;
          const data = e.data as { settlementId: string; discharge: { visitId: string } };
          settled.set(data.discharge.visitId, [...(settled.get(data.discharge.visitId) ?? []), data.settlementId]);
        }
        from = page[page.length - 1]!.position;
      }
      expect(settled.size).toBe(PERSONS * VISITS_PER_PERSON);
      for (const { d, r } of answers) expect([d.visitId, settled.get(d.visitId as string)]).toEqual([d.visitId, [r.body.settlementId]]);
    } finally {
      await store.close();
    }

    // each survivor reads every settlement, whichever instance recorded it
    const sample = answers[answers.length - 1]!;
    for (const s of services.filter((x) => alive.has(x))) {
      const read = await http(s.url, 'GET', `/v1/settlements/h-county/${sample.d.visitId as string}`);
      expect(read.body.current.settlementId).toBe(sample.r.body.settlementId);
    }

    // every survivor's journal is the same, hash chain and all: each posts the whole log in log order
    const heads: unknown[] = [];
    for (const s of services.filter((x) => alive.has(x))) {
      for (let i = 0; i < 600 && (await http(s.url, 'GET', '/ready')).body.ledger.behind > 0; i++)
        await new Promise((r) => setTimeout(r, 50));
      const last = await http(s.url, 'GET', `/v1/ledger?afterSeq=${PERSONS * VISITS_PER_PERSON - 1}&limit=10`);
      expect(last.body.entries).toHaveLength(1);
      heads.push(last.body.entries[0]);
    }
    expect(heads).toHaveLength(2);
    expect(heads[1]).toEqual(heads[0]);

    // they did meet: instances refused appends another instance got to first, and decided again
    let conflicts = 0;
    for (const s of services.filter((x) => alive.has(x))) {
      const text = await (await fetch(`${s.url}/metrics`)).text();
      conflicts += Number(/^medaid_store_append_conflicts_total\{kind="revision"\} (\d+)$/m.exec(text)?.[1] ?? 0);
    }
    expect(conflicts).toBeGreaterThan(0);

    // a clean stop; then the audit: every settlement recomputed in log order, caps and all, and the journal proven
    const auditor = services[0]!;
    for (const s of services.filter((x) => alive.has(x))) await s.stop();
    const audit = spawnSync(process.execPath, [BIN, 'audit', 'verify', '--data', auditor.dataDir, '--store', url], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(audit.stdout).toContain('(a) settlements recomputed: 5,000, problems: 0');
    expect(audit.stdout).toContain('(b) hash chain: 5,000 entries, problems: 0');
    expect(audit.stdout).toContain('(d) payouts: 5,000 entries expected from the events, problems: 0');
    expect([audit.status, audit.stdout]).toEqual([0, expect.stringContaining('result: clean, no problems')]);
  }, 240_000);
});

describe('instances sharing a store, and policies', () => {
  const LIMITED = {
    policyId: 'P-limited',
    version: 1,
    region: 'ra',
    effectiveFrom: '2020-01-01',
    categories: [{ code: 'dibao', name: 'dibao' }],
    funds: [{ code: 'F2', mayOverdraw: false }],
    layers: [{ id: 'L1', kind: 'aid', fund: 'F2', rules: [{ id: 'r1', bands: [{ uptoFen: null, ratioBp: 5000 }] }] }],
  };
  const policy = (ratioBp: number) => ({
    ...LIMITED,
    policyId: 'P-race',
    funds: undefined,
    layers: [{ id: 'L1', kind: 'aid', fund: 'F1', rules: [{ id: 'r1', bands: [{ uptoFen: null, ratioBp }] }] }],
  });

  it('given two instances publishing one version of a policy at once, then one is recorded and the other conflicts or is the same', async () => {
    const pg = await createTestDatabase('policies');
    const auth = writeAuthFile([{ token: 'admin-token-0123456789abcdef', kind: 'admin', id: 'clerk-1' }]);
    const admin = { authorization: 'Bearer admin-token-0123456789abcdef' };
    const pair = await Promise.all(
      [0, 1].map(() => startService({ demoPolicy: false, args: ['--store', pg.url, '--shared', '--auth', auth.file] })),
    );
    try {
      // different documents for P-race v1, one to each instance at the same time
      const [a, b] = await Promise.all([
        http(pair[0]!.url, 'POST', '/v1/policies', policy(5000)),
        http(pair[1]!.url, 'POST', '/v1/policies', policy(6000)),
      ]);
      expect([a.status, b.status].sort()).toEqual([201, 409]); // (the same document from both would be 201 twice: one event)
      expect([a, b].find((r) => r.status === 409)!.body.code).toBe('POLICY_VERSION_CONFLICT');
      // the one recorded is what both instances answer, and the same document again is no change on either
      const winner = a.status === 201 ? policy(5000) : policy(6000);
      for (const s of pair) {
        const read = await http(s.url, 'GET', '/v1/policies/P-race/1');
        expect(read.body.layers[0].rules[0].bands[0].ratioBp).toBe(winner.layers[0]!.rules[0]!.bands[0]!.ratioBp);
        expect((await http(s.url, 'POST', '/v1/policies', winner)).status).toBe(200);
      }
      const store = await PostgresEventStore.connect({ connectionString: pg.url });
      try {
        expect((await store.readStream('policy-P-race')).map((e) => e.type)).toEqual(['PolicyPublished']);
      } finally {
        await store.close();
      }

      // allocations: the same reference with other content at once is one allocation and a conflict;
      // different references at once are both recorded
      const allocation = (reference: string, amountFen: number) => ({
        fund: 'F1',
        region: 'ra',
        year: 2020,
        source: 'superior',
        amountFen,
        reference,
      });
      const [x, y] = await Promise.all([
        http(pair[0]!.url, 'POST', '/v1/funds/allocations', allocation('A-1', 100_000), admin),
        http(pair[1]!.url, 'POST', '/v1/funds/allocations', allocation('A-1', 200_000), admin),
      ]);
      expect([x.status, y.status].sort()).toEqual([201, 409]);
      expect([x, y].find((r) => r.status === 409)!.body.code).toBe('ALLOCATION_CONFLICT');
      const both = await Promise.all([
        http(pair[0]!.url, 'POST', '/v1/funds/allocations', allocation('A-2', 1_000), admin),
        http(pair[1]!.url, 'POST', '/v1/funds/allocations', allocation('A-3', 2_000), admin),
      ]);
      expect(both.map((r) => r.status)).toEqual([201, 201]);
      const funds = await PostgresEventStore.connect({ connectionString: pg.url });
      try {
        expect((await funds.readStream('fund-F1-ra')).map((e) => (e.data as { reference: string }).reference).sort()).toEqual([
          'A-1',
          'A-2',
          'A-3',
        ]);
      } finally {
        await funds.close();
      }

      // a fund that may not be overdrawn: PostgreSQL holds its limit for every instance (the test below)
      expect((await http(pair[0]!.url, 'POST', '/v1/policies', LIMITED)).status).toBe(201);
    } finally {
      for (const s of pair) {
        await s.stop();
        removeDir(s.dataDir);
      }
      removeDir(auth.dir);
      await pg.drop();
    }
  });

  it('given a fund that may not be overdrawn and three instances settling from it at once, then it is spent to the fen and never overdrawn', async () => {
    const pg = await createTestDatabase('fundroom');
    const auth = writeAuthFile([{ token: 'admin-token-0123456789abcdef', kind: 'admin', id: 'clerk-1' }]);
    const admin = { authorization: 'Bearer admin-token-0123456789abcdef' };
    const trio = await Promise.all(
      [0, 1, 2].map(() => startService({ demoPolicy: false, args: ['--store', pg.url, '--shared', '--auth', auth.file] })),
    );
    try {
      expect((await http(trio[0]!.url, 'POST', '/v1/policies', LIMITED)).status).toBe(201);
      const allocated = { fund: 'F2', region: 'ra', year: 2020, source: 'superior', amountFen: 1_000_000, reference: 'A-2020' };
      expect((await http(trio[1]!.url, 'POST', '/v1/funds/allocations', allocated, admin)).status).toBe(201);
      for (let p = 0; p < 60; p++)
        expect(
          (await http(trio[p % 3]!.url, 'POST', `/v1/persons/p-f-${p}/categories`, { category: 'dibao', validFrom: '2019-01-01' })).status,
        ).toBe(200);
      // 180 settlements asking 50,000 fen each of F2 (9,000,000 in all) from a fund of 1,000,000, on three instances at once
      const answers = await pool(
        Array.from({ length: 180 }, (_, i) => i),
        30,
        async (i) => {
          const body = {
            hospitalId: 'h1',
            visitId: `v-f-${i}`,
            personId: `p-f-${i % 60}`,
            region: 'ra',
            scheme: 'nrcms',
            visitType: 'inpatient',
            hospitalLevel: 'county',
            admissionDate: '2020-02-01',
            dischargeDate: '2020-02-03',
            totalFen: 100_000,
          };
          for (let attempt = 0; ; attempt++) {
            const r = await http(trio[i % 3]!.url, 'POST', '/v1/settlements', body);
            if (r.status !== 503 || attempt > 20) return r;
            await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
          }
        },
      );
      expect(answers.map((r) => r.status).filter((st) => st !== 201)).toEqual([]);
      const paid = answers.reduce((sum, r) => sum + (r.body.layers as Array<{ payFen: number }>)[0]!.payFen, 0);
      expect(paid).toBe(1_000_000);
      expect(answers.filter((r) => r.body.layers[0].payFen > 0).length).toBeGreaterThanOrEqual(20);
      for (const s of trio) {
        for (let i = 0; i < 200 && (await http(s.url, 'GET', '/ready')).body.ledger.behind > 0; i++)
          await new Promise((r) => setTimeout(r, 25));
        const funds = await http(s.url, 'GET', '/v1/funds', undefined, admin);
        const f2 = (funds.body.accounts ?? funds.body).find((a: { fund: string; year: number }) => a.fund === 'F2' && a.year === 2020);
        expect([f2.paidFen, f2.balanceFen]).toEqual([1_000_000, 0]);
      }
      for (const s of trio) await s.stop();
      const audit = spawnSync(process.execPath, [BIN, 'audit', 'verify', '--data', trio[0]!.dataDir, '--store', pg.url], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(audit.stdout).toContain('funds that may not be overdrawn, after every event that took from them, problems: 0');
      expect([audit.status, audit.stdout]).toEqual([0, expect.stringContaining('result: clean, no problems')]);
    } finally {
      for (const s of trio) {
        await s.stop();
        removeDir(s.dataDir);
      }
      removeDir(auth.dir);
      await pg.drop();
    }
  }, 120_000);

  it('given instances sharing an EventStoreDB (the protocol double), then a fund that may not be overdrawn is refused at publication and at start, saying why', async () => {
    const double = await esdbDouble();
    try {
      const sharing = await startService({ demoPolicy: false, args: ['--store', double.url, '--shared'] });
      const refused = await http(sharing.url, 'POST', '/v1/policies', LIMITED);
      expect([refused.status, refused.body.code, refused.body.details[0].field]).toEqual([400, 'INVALID_POLICY', 'funds[0].mayOverdraw']);
      await sharing.stop();
      removeDir(sharing.dataDir);
      const alone = await startService({ demoPolicy: false, args: ['--store', double.url] });
      expect((await http(alone.url, 'POST', '/v1/policies', LIMITED)).status).toBe(201);
      await alone.stop();
      const run = spawnSync(process.execPath, [BIN, 'serve', '--data', alone.dataDir, '--port', '0', '--store', double.url, '--shared'], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('cannot run --shared on this store: policy P-limited v1 lists a fund that may not be overdrawn');
      removeDir(alone.dataDir);
    } finally {
      await double.drop();
    }
  });
});
