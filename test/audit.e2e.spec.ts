// The ledger and the auditor's commands end to end: the real service (a child process) posts
// allocations, settlements, an adjustment and a reversal into its journal; GET /v1/ledger shows
// exactly the postings the design gives, chained by hash; `medaid audit verify` and `medaid audit
// replay` (child processes) find the stopped service's data clean — and find one altered or one
// deleted journal entry, naming its seq. Then a generated year (≥ 100,000 settlements over 10,000
// persons, written straight into the store) replays to identical projections and verifies clean.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { canonicalJson } from '#domain';
import { EsdbDouble } from './esdb-double/index.js';
import { BIN, ROOT, Service, discharge, http, removeDir, startService, tempDir, writeAuthFile } from './support/service.js';

type Obj = Record<string, any>;
interface Line {
  account: string;
  debitFen: number;
  creditFen: number;
}

const ADMIN = { a: 'audit-admin-a-0123456789abcdef', b: 'audit-admin-b-0123456789abcdef' };
const { dir: authDir, file: AUTH_FILE } = writeAuthFile([
  { token: ADMIN.a, kind: 'admin', id: 'admin-a' },
  { token: ADMIN.b, kind: 'admin', id: 'admin-b' },
]);
afterAll(() => removeDir(authDir));

/** POST as the caller the route needs (support/service.ts), or with this token. */
async function post(url: string, path: string, body: unknown, token?: string): Promise<{ status: number; body: Obj }> {
  return http(url, 'POST', path, body, token ? { authorization: `Bearer ${token}` } : {});
}

/** Runs `medaid audit …` as a child process (not blocking this process: the big runs take seconds). */
function audit(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, 'audit', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((res) => child.once('exit', (status) => res({ status, stdout, stderr })));
}

/** Waits until the ledger has posted everything the log holds. */
async function ledgerCaughtUp(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const head = (await http(url, 'GET', '/ready')).body.position as number;
    const ledger = (await http(url, 'GET', '/v1/ledger?limit=1')).body.ledger as Obj;
    if (ledger.position >= head) return;
    if (Date.now() > deadline) throw new Error(`ledger at ${ledger.position}, log at ${head}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function allEntries(url: string, query = ''): Promise<Obj[]> {
  const out: Obj[] = [];
  for (let after = 0; ;) {
    const page = (await http(url, 'GET', `/v1/ledger?limit=2&afterSeq=${after}${query}`)).body as Obj;
    out.push(...(page.entries as Obj[]));
    if (!page.more) return out;
    after = page.nextAfterSeq as number;
  }
}

const payout = (fund: string, hospitalId: string, fen: number, year = 2012): Line[] => [
  { account: `fund/${fund}/360827/${year}`, debitFen: fen, creditFen: 0 },
  { account: `hospital/${hospitalId}/receivable`, debitFen: 0, creditFen: fen },
];
const settlementLines = (s: Obj): Line[] =>
  (s.layers as Obj[]).filter((l) => l.payFen > 0).flatMap((l) => payout(l.fund, s.hospitalId, l.payFen));
const mirror = (lines: Line[]): Line[] => lines.map((l) => ({ account: l.account, debitFen: l.creditFen, creditFen: l.debitFen }));

describe('the ledger over HTTP, and audit verify on the stopped service', () => {
  let service: Service;
  let s1: Obj;
  let s2: Obj;
  let entries: Obj[];

  beforeAll(async () => {
    service = await startService({ args: ['--auth', AUTH_FILE] });
    const url = service.url;
    // Given money allocated to the aid fund, two 低保 persons settled at two hospitals, an approved
    // adjustment (+100 元 of aid) on the first settlement, and then its reversal
    expect(
      (
        await post(
          url,
          '/v1/funds/allocations',
          { fund: '610100', region: '360827', year: 2012, source: 'superior', amountFen: 50_000_000, reference: '赣民〔2012〕1号' },
          ADMIN.a,
        )
      ).status,
    ).toBe(201);
    for (const p of ['p-a', 'p-b'])
      expect((await post(url, `/v1/persons/${p}/categories`, { category: 'dibao', validFrom: '2012-01-01' })).status).toBe(200);
    const big = { totalFen: 8_000_000, fullOwnPayFen: 500_000, preSelfPayFen: 300_000 };
    s1 = (await post(url, '/v1/settlements', discharge({ personId: 'p-a', visitId: 'v-1', ...big }))).body;
    s2 = (await post(url, '/v1/settlements', discharge({ personId: 'p-b', visitId: 'v-2', hospitalId: 'h-county-2', ...big }))).body;
    expect(s1.layers.filter((l: Obj) => l.payFen > 0).length).toBeGreaterThanOrEqual(3);
    const adjustment = await post(
      url,
      '/v1/adjustments',
      { hospitalId: 'h-county', visitId: 'v-1', layerId: 'aid', deltaFen: 10_000, reason: '复核发现漏报' },
      ADMIN.a,
    );
    expect(adjustment.status).toBe(201);
    expect((await post(url, `/v1/adjustments/${adjustment.body.adjustmentId}/approval`, {}, ADMIN.b)).status).toBe(200);
    expect((await post(url, '/v1/settlements/h-county/v-1/reversal', { reason: '费用明细录入错误' })).status).toBe(200);
    await ledgerCaughtUp(url);
    entries = await allEntries(url);
  });

  it('shows in /ready how far the journal is behind the log: nothing, once it caught up', async () => {
    const ready = (await http(service.url, 'GET', '/ready')).body as Obj;
    expect(ready.ledger).toEqual({ state: 'following', position: ready.position, entriesWritten: expect.any(Number), behind: 0 });
    expect(ready.ledger.entriesWritten).toBeGreaterThanOrEqual(5);
  });

  afterAll(async () => {
    if (service.process.exitCode === null) await service.stop();
    removeDir(service.dataDir);
  });

  it("shows one entry per money-moving event, with the design's accounts and amounts, the reversal as the mirror of the settlement and its adjustment", () => {
    const allocation = [
      { account: 'funding/superior/360827/2012', debitFen: 50_000_000, creditFen: 0 },
      { account: 'fund/610100/360827/2012', debitFen: 0, creditFen: 50_000_000 },
    ];
    const adjustment = payout('610100', 'h-county', 10_000);
    expect(entries.map((e) => [e.seq, e.eventType, e.lines])).toEqual([
      [1, 'FundAllocated', allocation],
      [2, 'DischargeSettled', settlementLines(s1)],
      [3, 'DischargeSettled', settlementLines(s2)],
      [4, 'AdjustmentApplied', adjustment],
      [5, 'SettlementReversed', mirror([...settlementLines(s1), ...adjustment])],
    ]);
    expect(entries.map((e) => e.streamId)).toEqual(['fund-610100-360827', 'person-p-a', 'person-p-b', 'person-p-a', 'person-p-a']);
  });

  it('chains every entry to the one before by SHA-256 over its canonical JSON', () => {
    entries.forEach((e, i) => {
      expect(e.prevHash).toBe(i === 0 ? '0'.repeat(64) : entries[i - 1]!.hash);
      const { hash, ...unsealed } = e;
      expect(
        createHash('sha256')
          .update(e.prevHash + canonicalJson(unsealed))
          .digest('hex'),
      ).toBe(hash);
    });
  });

  it('filters by account and pages by seq', async () => {
    expect((await allEntries(service.url, '&account=hospital/h-county/receivable')).map((e) => e.seq)).toEqual([2, 4, 5]);
    expect((await allEntries(service.url, '&account=funding/superior/360827/2012')).map((e) => e.seq)).toEqual([1]);
    const page = (await http(service.url, 'GET', '/v1/ledger?afterSeq=3&limit=1000')).body;
    expect([page.entries.map((e: Obj) => e.seq), page.nextAfterSeq, page.more]).toEqual([[4, 5], 5, false]);
    for (const q of ['limit=1001', 'limit=0', 'limit=abc', 'afterSeq=-1', 'afterSeq=1.5', 'colour=red', 'account=']) {
      const r = await http(service.url, 'GET', `/v1/ledger?${q}`);
      expect([q, r.status, r.body.code]).toEqual([q, 400, 'VALIDATION_FAILED']);
    }
  });

  it('gives balances per account that add up: the fund keeps what is left, the hospital of the reversed settlement is owed nothing', async () => {
    const b = (await http(service.url, 'GET', '/v1/ledger/balances?year=2012')).body as Obj;
    const balance = (account: string) => (b.accounts as Obj[]).find((a) => a.account === account)?.balanceFen;
    expect(b.totals.debitFen).toBe(b.totals.creditFen);
    expect((b.accounts as Obj[]).reduce((s, a) => s + a.balanceFen, 0)).toBe(0);
    const aidOfS2 = (s2.layers as Obj[]).filter((l) => l.fund === '610100').reduce((s, l) => s + l.payFen, 0);
    expect(balance('fund/610100/360827/2012')).toBe(50_000_000 - aidOfS2);
    expect(balance('hospital/h-county/receivable')).toBe(0);
    expect(balance('hospital/h-county-2/receivable')).toBe(s2.fundPayFen);
    expect(balance('funding/superior/360827/2012')).toBe(-50_000_000);
    expect((await http(service.url, 'GET', '/v1/ledger/balances?year=2013')).body.accounts).toEqual([]);
    expect((await http(service.url, 'GET', '/v1/ledger/balances?year=twenty')).status).toBe(400);
  });

  it("verifies clean while the service runs (up to the journal's checkpoint), reading the journal without the lock", async () => {
    const running = await audit(['verify', '--data', service.dataDir]);
    expect([running.status, running.stdout]).toEqual([0, expect.stringContaining('result: clean')]);
    expect(running.stdout).toMatch(/5 entries, checkpoint \d+ \(the service is running\)/);
  });

  it("verifies clean and replays identical on the stopped service's data; an altered amount or a deleted entry fails verify, naming the seq", async () => {
    await service.stop();
    const clean = await audit(['verify', '--data', service.dataDir]);
    expect([clean.status, clean.stdout]).toEqual([0, expect.stringContaining('result: clean')]);
    expect(clean.stdout).toMatch(/\(a\) settlements recomputed: 2, problems: 0/);
    const replay = await audit(['replay', '--data', service.dataDir]);
    expect([replay.status, replay.stdout]).toEqual([0, expect.stringContaining('result: clean')]);
    expect(replay.stdout).toMatch(/read model: \d+ rows .* differences: 0/);

    // When one amount of entry 2 is altered in ledger.sqlite — on both of its lines, so that it still balances
    const altered = copyOf(service.dataDir, (db) => {
      const body = JSON.parse(db.prepare('SELECT body FROM journal WHERE seq = 2').pluck().get() as string) as Obj;
      body.lines[0].debitFen += 100;
      body.lines[1].creditFen += 100;
      db.prepare('UPDATE journal SET body = ? WHERE seq = 2').run(canonicalJson(body));
    });
    // … or entry 3 is deleted, with its account index rows
    const deleted = copyOf(service.dataDir, (db) => {
      db.prepare('DELETE FROM journal WHERE seq = 3').run();
      db.prepare('DELETE FROM journal_accounts WHERE seq = 3').run();
    });
    try {
      // Then verify fails and names the seq
      const a = await audit(['verify', '--data', altered]);
      expect(a.status).toBe(1);
      expect(a.stdout).toMatch(/seq 2: hash chain broken: hash does not match the entry/);
      expect(a.stdout).toMatch(
        /seq 2: posts D fund\/\S+ \d+, C hospital\/h-county\/receivable \d+.*; event \S+ \(DischargeSettled, position \d+\) posts/,
      );
      const d = await audit(['verify', '--data', deleted]);
      expect(d.status).toBe(1);
      expect(d.stdout).toMatch(/seq 3: hash chain broken: entry 3 missing/);
      expect(d.stdout).toMatch(/event \S+ \(DischargeSettled, person-p-b, position \d+\) is not in the journal/);
      // … and replay finds the live journal different from the one rebuilt from the log
      const r = await audit(['replay', '--data', altered]);
      expect(r.status).toBe(1);
      expect(r.stdout).toMatch(/seq 2: body live/);
    } finally {
      removeDir(altered);
      removeDir(deleted);
    }
    // When a settlement row of the query projections differs from the log's, replay names it
    const projected = copyOf(service.dataDir, (db) => {
      db.prepare(
        "UPDATE settlements SET status = 'reversed' WHERE position = (SELECT MIN(position) FROM settlements WHERE status = 'settled')",
      ).run();
    });
    try {
      const r = await audit(['replay', '--data', projected]);
      expect([r.status, r.stdout]).toEqual([1, expect.stringMatching(/settlement row at position \d+: row live \[\d+,"[^"]+","h-county/)]);
      expect(r.stdout).toMatch(/projections: settlements, alerts and persons by category up to position \d+, differences: 1/);
      expect(r.stdout).toMatch(/year report: .* differences: 0/);
    } finally {
      removeDir(projected);
    }
    // When the year report's projection lost a settlement's row, replay names that settlement
    let dropped = '';
    const reported = copyOf(service.dataDir, (db) => {
      dropped = db.prepare('SELECT settlement_id FROM report_settlements ORDER BY settlement_id LIMIT 1').pluck().get() as string;
      db.prepare('DELETE FROM report_settlements WHERE settlement_id = ?').run(dropped);
    });
    try {
      const r = await audit(['replay', '--data', reported]);
      expect(r.status).toBe(1);
      expect(r.stdout).toContain(`report_settlements ${dropped}: in the rebuilt projection only`);
      expect(r.stdout).toMatch(/year report: .* differences: 1\n/);
    } finally {
      removeDir(reported);
    }
    // When the fund account the service saved differs from the one the log gives, replay names the fund
    let fundKey = '';
    const counters = copyOf(service.dataDir, (db) => {
      const row = db.prepare("SELECT key, value FROM snapshot_rows WHERE kind = 'fund' ORDER BY key LIMIT 1").get() as {
        key: string;
        value: string;
      };
      fundKey = row.key;
      const value = JSON.parse(row.value) as Obj;
      value.paidFen += 1;
      db.prepare("UPDATE snapshot_rows SET value = ? WHERE kind = 'fund' AND key = ?").run(canonicalJson(value), row.key);
    });
    try {
      const r = await audit(['replay', '--data', counters]);
      expect([r.status, r.stdout]).toEqual([1, expect.stringContaining(`fund ${fundKey}: value live `)]);
    } finally {
      removeDir(counters);
    }
  });
});

describe('the ledger and the audit on EventStoreDB (the protocol test double)', () => {
  it('posts from the EventStoreDB log into DIR/ledger.sqlite, and verify and replay read the log from EventStoreDB', async () => {
    const d = await EsdbDouble.start();
    const service = await startService({ args: ['--store', d.connectionString] });
    try {
      // Given a settlement and a reversal recorded in EventStoreDB
      expect((await post(service.url, '/v1/persons/p-esdb/categories', { category: 'dibao', validFrom: '2012-01-01' })).status).toBe(200);
      const settled = await post(service.url, '/v1/settlements', discharge({ personId: 'p-esdb', visitId: 'v-esdb', totalFen: 8_000_000 }));
      expect(settled.status).toBe(201);
      expect((await post(service.url, '/v1/settlements/h-county/v-esdb/reversal', { reason: '撤销' })).status).toBe(200);
      await ledgerCaughtUp(service.url);
      // Then the journal holds the settlement and its mirror, at EventStoreDB's positions
      const entries = await allEntries(service.url);
      expect(entries.map((e) => [e.eventType, e.lines])).toEqual([
        ['DischargeSettled', settlementLines(settled.body)],
        ['SettlementReversed', mirror(settlementLines(settled.body))],
      ]);
      await service.stop();
      // and the audit, reading the log from EventStoreDB, finds it clean
      const verify = await audit(['verify', '--data', service.dataDir, '--store', d.connectionString]);
      expect([verify.status, verify.stdout]).toEqual([0, expect.stringContaining('result: clean')]);
      expect(verify.stdout).toMatch(/\(d\) payouts: 2 entries expected/);
      const replay = await audit(['replay', '--data', service.dataDir, '--store', d.connectionString]);
      expect([replay.status, replay.stdout]).toEqual([0, expect.stringContaining('result: clean')]);
    } finally {
      if (service.process.exitCode === null) await service.stop();
      removeDir(service.dataDir);
      await d.stop();
    }
  });
});

/** A copy of a (stopped service's) data directory, with its ledger.sqlite changed by `alter`. */
function copyOf(dataDir: string, alter: (db: Database.Database) => void): string {
  const copy = tempDir('medaid-audit-copy-');
  cpSync(dataDir, copy, { recursive: true });
  const db = new Database(join(copy, 'ledger.sqlite'));
  try {
    alter(db);
  } finally {
    db.close();
  }
  return copy;
}

/** Size of the generated year (events): the default gives ≥ 100,000 settlements over 10,000 persons. */
const YEAR_EVENTS = Number(process.env.MEDAID_AUDIT_EVENTS ?? 116_000);
const YEAR_PERSONS = Number(process.env.MEDAID_AUDIT_PERSONS ?? 10_000);

describe(`a generated year (${YEAR_EVENTS} events over ${YEAR_PERSONS} persons; MEDAID_AUDIT_EVENTS / MEDAID_AUDIT_PERSONS)`, () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = tempDir('medaid-audit-year-');
  });
  afterAll(() => removeDir(dataDir));

  it('replays to exactly the same projections (journal, balances, per-person counters, visit index) and verifies clean', async () => {
    const timings: string[] = [];
    let t = Date.now();
    const lap = (what: string) => {
      timings.push(`${what} ${((Date.now() - t) / 1000).toFixed(1)} s`);
      t = Date.now();
    };
    // Given a year's log written straight into the store …
    const generated = spawnSync(
      process.execPath,
      [join(ROOT, 'test/fixtures/generate-log.mjs'), join(dataDir, 'events.sqlite'), String(YEAR_EVENTS), String(YEAR_PERSONS)],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(generated.status).toBe(0);
    lap('generate');
    // … posted by the service's ledger writer as it starts on it, with live commands on top (reversals of
    // generated settlements and new settlements, so that the saved counters were moved by the service itself)
    const service = await startService({ dataDir });
    try {
      await ledgerCaughtUp(service.url, 120_000);
      lap('start + ledger catch-up');
      const db = new Database(join(dataDir, 'events.sqlite'), { readonly: true });
      const some = (
        db
          .prepare("SELECT data FROM events WHERE type = 'DischargeSettled' ORDER BY position LIMIT 20 OFFSET 5000")
          .pluck()
          .all() as string[]
      ).map((d) => JSON.parse(d) as Obj);
      db.close();
      for (const s of some) {
        expect(
          (await post(service.url, `/v1/settlements/${s.discharge.hospitalId}/${s.discharge.visitId}/reversal`, { reason: '重复结算' }))
            .status,
        ).toBe(200);
      }
      for (let i = 0; i < 10; i++) {
        const r = await post(
          service.url,
          '/v1/settlements',
          discharge({
            personId: `p${String(i * 37).padStart(6, '0')}`,
            visitId: `live-${i}`,
            dischargeDate: '2013-03-10',
            admissionDate: '2013-03-01',
          }),
        );
        expect(r.status).toBe(201);
      }
      await ledgerCaughtUp(service.url);
    } finally {
      await service.stop();
    }
    lap('live commands + stop');

    // When the projections are rebuilt from the log and compared; and when the log is verified
    const replay = await audit(['replay', '--data', dataDir]);
    lap('audit replay');
    const verify = await audit(['verify', '--data', dataDir]);
    lap('audit verify');
    process.stdout.write(`audit e2e, generated year: ${timings.join(', ')}\n`);

    // Then both are clean, on the whole year
    expect([replay.status, replay.stdout]).toEqual([0, expect.stringContaining('result: clean')]);
    const rows = Number(/read model: ([\d,]+) rows/.exec(replay.stdout)?.[1]?.replace(/,/g, ''));
    expect(rows).toBeGreaterThan(0); // the fund accounts the service held, all compared
    expect([verify.status, verify.stdout]).toEqual([0, expect.stringContaining('result: clean')]);
    const settlements = Number(/settlements recomputed: ([\d,]+)/.exec(verify.stdout)?.[1]?.replace(/,/g, ''));
    if (YEAR_EVENTS >= 116_000 && YEAR_PERSONS === 10_000) expect(settlements).toBeGreaterThanOrEqual(100_000);
    expect(verify.stderr).toMatch(/audit verify: [\d,]+ events read/); // progress on long runs
  }, 300_000);
});
