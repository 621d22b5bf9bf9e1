// Monitoring thresholds (防止因病返贫致贫动态监测), end to end on the real service: a policy with a
// yearly and a per-settlement threshold; settlements over HTTP flag the person once per year and
// threshold (a re-post flags nothing again), a reversal that takes them back under clears it, the
// flags reach the person's view, the year report counts them, `medaid alerts export` writes them as
// CSV, and `audit verify` and `audit replay` stay clean on the result (replay compares the alerts).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { BIN, ROOT, Service, discharge, http, removeDir, startService, writeAuthFile } from './support/service.js';

type Obj = Record<string, any>;
const DEMO = JSON.parse(readFileSync(join(ROOT, 'apps/medaid/assets/demo-policy.json'), 'utf8')) as Obj;
const MONITORED = {
  ...DEMO,
  monitoring: {
    thresholds: [
      { id: 'year-over-8000', per: 'year', aboveFen: 800_000 },
      { id: 'admission-over-6000', per: 'settlement', aboveFen: 600_000, categories: ['dibao_edge', 'none'] },
    ],
  },
};
let service: Service;
// with credentials (the test callers): the lists need a named office even on a trial
const auth = writeAuthFile([]);

beforeAll(async () => {
  service = await startService({ demoPolicy: false, args: ['--auth', auth.file] });
  expect((await http(service.url, 'POST', '/v1/policies', MONITORED)).status).toBe(201);
}, 60_000);

afterAll(async () => {
  await service?.stop();
  if (service) removeDir(service.dataDir);
  removeDir(auth.dir);
});

const cli = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
const person = async (id: string) => (await http(service.url, 'GET', `/v1/persons/${id}`)).body as Obj;
const position = async () => (await http(service.url, 'GET', '/ready')).body.position as number;

describe('monitoring thresholds', () => {
  it('flags a person once per year and threshold, not again on a re-post, and clears the flag when a reversal takes them back under', async () => {
    // no category: insurance only, so most of a large bill is self-pay
    const big = discharge({
      personId: 'p-mon-1',
      visitId: 'mon-1',
      totalFen: 2_000_000,
      fullOwnPayFen: 1_500_000,
      dischargeDate: '2012-03-10',
      admissionDate: '2012-03-01',
    });
    const before = await position();
    expect((await http(service.url, 'POST', '/v1/settlements', big)).status).toBe(201);
    const flagged = await person('p-mon-1');
    expect(flagged.alerts.map((a: Obj) => a.thresholdId).sort()).toEqual(['admission-over-6000', 'year-over-8000']);
    expect(flagged.alerts[0]).toMatchObject({ year: 2012, settlementId: 'h-county/mon-1/1' });
    expect(flagged.years[0].usedFen['monitor:selfPay']).toBeGreaterThan(800_000);
    expect(await position()).toBe(before + 3); // the settlement and its two flags, in one append

    // a re-post is a duplicate; a second large settlement of the year flags nothing new
    expect((await http(service.url, 'POST', '/v1/settlements', big)).status).toBe(200);
    const second = discharge({
      personId: 'p-mon-1',
      visitId: 'mon-2',
      totalFen: 2_000_000,
      fullOwnPayFen: 1_500_000,
      dischargeDate: '2012-05-10',
      admissionDate: '2012-05-01',
    });
    expect((await http(service.url, 'POST', '/v1/settlements', second)).status).toBe(201);
    expect(await position()).toBe(before + 4);
    expect((await person('p-mon-1')).alerts).toHaveLength(2);

    // reversing the first leaves the second: still above both (the per-settlement one through the second)
    expect((await http(service.url, 'POST', '/v1/settlements/h-county/mon-1/reversal', { reason: 'test' })).status).toBe(200);
    expect((await person('p-mon-1')).alerts).toHaveLength(2);
    // reversing the second too takes the year back to nothing: both cleared
    expect((await http(service.url, 'POST', '/v1/settlements/h-county/mon-2/reversal', { reason: 'test' })).status).toBe(200);
    expect((await person('p-mon-1')).alerts).toEqual([]);

    // a category the per-settlement threshold does not name is flagged by the yearly one only
    expect((await http(service.url, 'POST', '/v1/persons/p-mon-2/categories', { category: 'sixin', validFrom: '2012-01-01' })).status).toBe(
      200,
    );
    const sixin = discharge({
      personId: 'p-mon-2',
      visitId: 'mon-3',
      totalFen: 20_000_000,
      fullOwnPayFen: 2_000_000,
      dischargeDate: '2012-03-10',
      admissionDate: '2012-03-01',
    });
    expect((await http(service.url, 'POST', '/v1/settlements', sixin)).status).toBe(201);
    const p2 = await person('p-mon-2');
    expect(p2.alerts.map((a: Obj) => a.thresholdId)).toEqual(['year-over-8000']); // its 2,000,000 of own pay alone is above both lines
  });

  it('lists the flags at GET /v1/alerts (admin or auditor), filtered by region, threshold, person and status, newest first with cursor paging', async () => {
    const head = await position();
    let page: Obj = {};
    for (let i = 0; i < 200; i++) {
      page = (await http(service.url, 'GET', '/v1/alerts?region=360827')).body as Obj;
      if (page.asOfPosition >= head) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(page.asOfPosition).toBeGreaterThanOrEqual(head);
    const rows = (page.items as Obj[]).map((a) => [a.personId, a.thresholdId, a.status]);
    expect(rows).toEqual([
      ['p-mon-2', 'year-over-8000', 'standing'],
      ['p-mon-1', 'admission-over-6000', 'cleared'], // (flagged after the yearly one, in the policy's order)
      ['p-mon-1', 'year-over-8000', 'cleared'],
    ]);
    expect(page.items[0]).toMatchObject({
      year: 2012,
      region: '360827',
      category: 'sixin',
      dischargeDate: '2012-03-10',
      per: 'year',
      aboveFen: 800_000,
    });
    const standing = (await http(service.url, 'GET', '/v1/alerts?status=standing')).body.items as Obj[];
    expect(standing.map((a) => a.personId)).toEqual(['p-mon-2']);
    const byThreshold = (await http(service.url, 'GET', '/v1/alerts?thresholdId=admission-over-6000&personId=p-mon-1')).body.items as Obj[];
    expect(byThreshold).toHaveLength(1);
    const first = (await http(service.url, 'GET', '/v1/alerts?limit=2')).body as Obj;
    const second = (await http(service.url, 'GET', `/v1/alerts?limit=2&cursor=${first.nextCursor}`)).body as Obj;
    expect([first.items.length, second.items.length, second.nextCursor]).toEqual([2, 1, null]);
    expect((await http(service.url, 'GET', '/v1/alerts?status=open')).status).toBe(400);
  });

  it('counts the flagged persons in the year report, per threshold and category, the same from the service and from the log', async () => {
    const report = (await http(service.url, 'GET', '/v1/reports/2012')).body as Obj;
    const expected = [
      {
        thresholdId: 'admission-over-6000',
        per: 'settlement',
        aboveFen: 600_000,
        flaggedPersons: 1,
        standingPersons: 0,
        clearedPersons: 1,
        byCategory: [{ category: 'none', name: null, flaggedPersons: 1, standingPersons: 0, clearedPersons: 1 }],
      },
      {
        thresholdId: 'year-over-8000',
        per: 'year',
        aboveFen: 800_000,
        flaggedPersons: 2,
        standingPersons: 1,
        clearedPersons: 1,
        byCategory: [
          { category: 'sixin', name: expect.any(String), flaggedPersons: 1, standingPersons: 1, clearedPersons: 0 },
          { category: 'none', name: null, flaggedPersons: 1, standingPersons: 0, clearedPersons: 1 },
        ],
      },
    ];
    expect(report.monitoring).toEqual(expected);
    const audit = cli(['audit', 'report', '--year', '2012', '--format', 'json', '--data', service.dataDir]);
    expect(audit.status).toBe(0);
    expect(JSON.parse(audit.stdout).monitoring).toEqual(report.monitoring);
    const csv = cli(['audit', 'report', '--year', '2012', '--format', 'csv', '--data', service.dataDir]).stdout;
    expect(csv).toContain('\r\nmonitoring,,,,,,,,standingPersons,未解除人数,1,year-over-8000:year:800000\r\n');
  }, 60_000);

  it('exports the flags of a period as CSV (medaid alerts export), each with whether it stands, filtered like GET /v1/alerts', async () => {
    const all = cli(['alerts', 'export', '--from', '2012-01-01', '--to', '2012-12-31', '--data', service.dataDir]);
    expect(all.status).toBe(0);
    const lines = all.stdout.split('\r\n').filter((l) => l !== '');
    expect(lines[0]).toBe(
      'position,person_id,year,threshold_id,per,above_fen,amount_fen,category,region,discharge_date,settlement_id,flagged_at,status,cleared_by_settlement,cleared_amount_fen',
    );
    const rows = lines.slice(1).map((l) => l.split(','));
    // log order: p-mon-1's two flags (cleared by the second reversal), then p-mon-2's, standing
    expect(rows.map((r) => [r[1], r[3], r[9], r[12], r[13]])).toEqual([
      ['p-mon-1', 'year-over-8000', '2012-03-10', 'cleared', 'h-county/mon-2/1'],
      ['p-mon-1', 'admission-over-6000', '2012-03-10', 'cleared', 'h-county/mon-2/1'],
      ['p-mon-2', 'year-over-8000', '2012-03-10', 'standing', ''],
    ]);
    expect(rows.every((r) => /^\d{4}-\d\d-\d\dT/.test(r[11]!) && Number(r[6]) > Number(r[5]))).toBe(true);
    // the same flags as GET /v1/alerts lists for that period
    const listed = (await http(service.url, 'GET', '/v1/alerts?from=2012-01-01&to=2012-12-31&limit=100')).body.items as Obj[];
    expect(new Set(rows.map((r) => `${r[1]}/${r[3]}/${r[12]}`))).toEqual(
      new Set(listed.map((a) => `${a.personId}/${a.thresholdId}/${a.status}`)),
    );
    const standing = cli([
      'alerts',
      'export',
      '--from',
      '2012-03-10',
      '--to',
      '2012-03-10',
      '--status',
      'standing',
      '--data',
      service.dataDir,
    ]);
    expect(standing.stdout.split('\r\n').filter((l) => l !== '')).toHaveLength(2);
    const outside = cli(['alerts', 'export', '--from', '2013-01-01', '--to', '2013-12-31', '--data', service.dataDir]);
    expect(outside.stdout.split('\r\n').filter((l) => l !== '')).toHaveLength(1);
    const bad = cli(['alerts', 'export', '--from', '2012-02-30', '--to', '2012-12-31', '--data', service.dataDir]);
    expect([bad.status, bad.stderr]).toEqual([1, expect.stringContaining('--from must be a date YYYY-MM-DD')]);
  }, 60_000);

  it('leaves audit verify and audit replay clean on a log with flags and clearings, and replay finds an alert row changed', async () => {
    await service.stop();
    for (const command of ['verify', 'replay']) {
      const r = cli(['audit', command, '--data', service.dataDir]);
      expect([command, r.status, r.stdout.includes('result: clean')]).toEqual([command, 0, true]);
    }
    expect(cli(['audit', 'verify', '--data', service.dataDir]).stdout).toContain(
      'monitoring flags and clearings, each the one the rules give, problems: 0',
    );
    // a flag marked cleared behind the log's back: the rebuilt projection disagrees
    const db = new Database(join(service.dataDir, 'ledger.sqlite'));
    db.prepare("UPDATE alerts SET status = 'cleared' WHERE person_id = 'p-mon-2'").run();
    db.close();
    const tampered = cli(['audit', 'replay', '--data', service.dataDir]);
    expect(tampered.status).not.toBe(0);
    expect(tampered.stdout).toMatch(/alert row at position \d+/);
  }, 90_000);
});
