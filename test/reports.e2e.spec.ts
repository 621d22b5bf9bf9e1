// The year report (医疗救助 年度统计) end to end: the real service as a child process, settlements of
// persons of several categories over HTTP, then GET /v1/reports/2012 and, on the stopped service's
// data directory, `medaid audit report --year 2012` in its three formats. Every expected figure is
// computed here from the settlement results the service answered, never written down by hand.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { EsdbDouble } from './esdb-double/index.js';
import { BIN, ROOT, Service, discharge, http, removeDir, startService, writeAuthFile } from './support/service.js';

type Obj = Record<string, any>;

/** Runs `medaid audit report …` as a child process; asynchronously, so that an in-process store double keeps answering. */
function auditReport(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, 'audit', 'report', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((done) => child.once('close', (status) => done({ status, stdout, stderr })));
}

/** RFC 4180, written independently of the service's writer: quoted fields, doubled quotes, CRLF. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') ((field += '"'), i++);
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') (row.push(field), (field = ''));
    else if (c === '\r' && text[i + 1] === '\n') (rows.push([...row, field]), (row = []), (field = ''), i++);
    else field += c;
  }
  expect(field === '' && row.length === 0).toBe(true); // the file ends with CRLF
  return rows;
}

const sum = (items: Obj[], f: (x: Obj) => number) => items.reduce((s, x) => s + f(x), 0);
const distinct = (items: Obj[]) => new Set(items.map((r) => r.personId)).size;
const aidOf = (r: Obj) => r.aidPayFen as number;
const yuan = (fen: number) => new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(fen / 100);

describe('the year report over HTTP and from the command line', () => {
  const ADMIN_TOKEN = 'report-admin-token-0123456789abcdef';
  const auth = writeAuthFile([{ token: ADMIN_TOKEN, kind: 'admin', id: 'admin-a' }]);
  let service: Service;
  /** The service's answers for the settlements that are active and of 2012. */
  const active: Obj[] = [];
  let httpReport: Obj;

  /** The service's answer, with the visit type it was asked for (a result does not repeat it). */
  const settle = async (overrides: Record<string, unknown>) => {
    const input = discharge(overrides);
    const r = await http(service.url, 'POST', '/v1/settlements', input);
    expect(r.status).toBe(201);
    return { ...(r.body as Obj), visitType: input.visitType } as Obj;
  };

  beforeAll(async () => {
    // Allocating money to a fund is an administrator's act (a bearer token of kind admin).
    service = await startService({ args: ['--auth', auth.file] });
    const assign = (personId: string, category: string) =>
      http(service.url, 'POST', `/v1/persons/${personId}/categories`, { category, validFrom: '2012-01-01' });
    for (const [p, c] of [
      ['p-tekun', 'tekun'],
      ['p-dibao', 'dibao'],
      ['p-dibao-2', 'dibao'],
      ['p-edge', 'dibao_edge'],
    ] as const)
      expect((await assign(p, c)).status).toBe(200);
    await http(service.url, 'POST', '/v1/persons/p-edge/approvals', {
      approvalNo: 'SP-2012-7',
      validFrom: '2012-01-01',
      validTo: '2012-12-31',
    });
    for (const [source, amountFen] of [
      ['superior', 300_000],
      ['local', 100_000],
    ] as const) {
      const allocated = await fetch(`${service.url}/v1/funds/allocations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` },
        body: JSON.stringify({ fund: '610100', region: '360827', year: 2012, source, amountFen, reference: `民发-${source}` }),
      });
      expect(allocated.status).toBe(201);
    }
    active.push(
      await settle({ personId: 'p-tekun', visitId: 'r-1', totalFen: 2_000_000 }),
      await settle({ personId: 'p-dibao', visitId: 'r-2', totalFen: 8_000_000, fullOwnPayFen: 500_000 }),
      await settle({
        personId: 'p-dibao',
        visitId: 'r-3',
        visitType: 'outpatient',
        hospitalLevel: 'township',
        totalFen: 30_000,
        diagnosisCodes: ['J06.9'],
      }),
      await settle({ personId: 'p-edge', visitId: 'r-4', visitType: 'chronic_outpatient', totalFen: 500_000, diagnosisCodes: ['N18.5'] }),
      await settle({ personId: 'p-none', visitId: 'r-5', hospitalLevel: 'city', totalFen: 1_000_000 }),
    );
    // a settlement reversed, and one of 2013: neither counts in 2012
    await settle({ personId: 'p-dibao-2', visitId: 'r-6', totalFen: 1_200_000 });
    expect((await http(service.url, 'POST', '/v1/settlements/h-county/r-6/reversal', { reason: '费用明细录入错误' })).status).toBe(200);
    await settle({ personId: 'p-tekun', visitId: 'r-7', admissionDate: '2013-03-01', dischargeDate: '2013-03-05', totalFen: 400_000 });
    expect(active.every((r) => r.year === 2012) && active.some((r) => aidOf(r) > 0)).toBe(true);
  });
  afterAll(async () => {
    await service.stop();
    removeDir(service.dataDir);
    removeDir(auth.dir);
  });

  it('GET /v1/reports/2012 counts the persons and person-times of the active 2012 settlements, by category and visit type', async () => {
    const r = await http(service.url, 'GET', '/v1/reports/2012');
    expect(r.status).toBe(200);
    httpReport = r.body as Obj;
    const aided = active.filter((x) => aidOf(x) > 0);
    expect(httpReport.overall).toEqual({
      persons: distinct(active),
      personTimes: active.length,
      aidedPersons: distinct(aided),
      aidedPersonTimes: aided.length,
      totalFen: sum(active, (x) => x.totalFen),
      inScopeFen: sum(active, (x) => x.inScopeFen),
      insurancePayFen: sum(active, (x) => x.insurancePayFen),
      criticalIllnessPayFen: sum(active, (x) => x.criticalIllnessPayFen),
      aidPayFen: sum(active, aidOf),
      fundPayFen: sum(active, (x) => x.fundPayFen),
      adjustmentFen: 0,
      patientPayFen: sum(active, (x) => x.patientPayFen),
      reimbursementRateBp: Math.round((sum(active, (x) => x.fundPayFen) * 10_000) / sum(active, (x) => x.totalFen)),
      patientShareBp: Math.round((sum(active, (x) => x.patientPayFen) * 10_000) / sum(active, (x) => x.totalFen)),
    });
    const categories = [...new Set(active.map((x) => x.category as string))];
    expect(httpReport.byCategory.map((c: Obj) => c.category).sort()).toEqual(categories.sort());
    for (const c of httpReport.byCategory as Obj[]) {
      const mine = active.filter((x) => x.category === c.category);
      expect([c.category, c.persons, c.personTimes, c.totalFen, c.aidPayFen, c.patientPayFen]).toEqual([
        c.category,
        distinct(mine),
        mine.length,
        sum(mine, (x) => x.totalFen),
        sum(mine, aidOf),
        sum(mine, (x) => x.patientPayFen),
      ]);
      for (const t of c.byVisitType as Obj[])
        expect([c.category, t.visitType, t.personTimes]).toEqual([
          c.category,
          t.visitType,
          mine.filter((x) => x.visitType === t.visitType).length,
        ]);
    }
    expect(httpReport.byCategory.at(-1).category).toBe('none');
    const outpatient = active.filter((x) => x.visitType !== 'inpatient');
    expect(httpReport.byVisitGroup.map((g: Obj) => [g.group, g.personTimes, g.fundPayFen])).toEqual([
      ['inpatient', active.length - outpatient.length, sum(active, (x) => x.fundPayFen) - sum(outpatient, (x) => x.fundPayFen)],
      ['outpatient', outpatient.length, sum(outpatient, (x) => x.fundPayFen)],
    ]);
  });

  it('GET /v1/reports/2012 sums every layer and fund, and shows the aid fund usage as GET /v1/funds does', async () => {
    const layers: Obj[] = active.flatMap((x) => (x.layers as Obj[]).map((l) => ({ ...l, personId: x.personId })));
    for (const l of httpReport.byLayer as Obj[]) {
      const mine = layers.filter((x) => x.layerId === l.layerId);
      expect([l.layerId, l.fund, l.payFen, l.personTimes]).toEqual([
        l.layerId,
        mine[0].fund,
        sum(mine, (x) => x.payFen),
        mine.filter((x) => x.payFen > 0).length,
      ]);
    }
    for (const f of httpReport.byFund as Obj[])
      expect([f.fund, f.payFen]).toEqual([
        f.fund,
        sum(
          layers.filter((x) => x.fund === f.fund),
          (x) => x.payFen,
        ),
      ]);
    const aidFund = (httpReport.funds as Obj[]).find((f) => f.fund === '610100' && f.region === '360827')!;
    const paidFen = sum(
      layers.filter((x) => x.fund === '610100'),
      (x) => x.payFen,
    );
    expect(aidFund).toMatchObject({
      name: '医疗救助基金',
      allocated: { superiorFen: 300_000, localFen: 100_000, carryoverFen: 0, totalFen: 400_000 },
      paid: { settlementsFen: paidFen, adjustmentsFen: 0, subsidiesFen: 0, totalFen: paidFen },
      balanceFen: 400_000 - paidFen,
      usageRateBp: Math.floor((paidFen * 10_000) / 400_000),
    });
    const funds = (await http(service.url, 'GET', '/v1/funds?year=2012&region=360827')).body as Obj[];
    const listed = funds.find((f) => f.fund === '610100')!;
    expect([aidFund.paid.totalFen, aidFund.balanceFen, aidFund.usageRateBp]).toEqual([
      listed.paidFen,
      listed.balanceFen,
      listed.usageRateBp,
    ]);
  });

  it('a settlement answered before a report is in it, and its reversal is out of the next one', async () => {
    const extra = await settle({ personId: 'p-dibao-2', visitId: 'r-8', totalFen: 60_000 });
    const withIt = (await http(service.url, 'GET', '/v1/reports/2012')).body as Obj;
    expect([withIt.overall.personTimes, withIt.overall.totalFen]).toEqual([
      active.length + 1,
      sum(active, (x) => x.totalFen) + extra.totalFen,
    ]);
    expect((await http(service.url, 'POST', '/v1/settlements/h-county/r-8/reversal', { reason: '重复结算' })).status).toBe(200);
    const without = (await http(service.url, 'GET', '/v1/reports/2012')).body as Obj;
    expect(without.overall).toEqual(httpReport.overall);
    httpReport = without;
  });

  it('refuses a year outside 2000–2100 or not a year with 400 VALIDATION_FAILED', async () => {
    for (const year of ['1999', '2101', '12', 'abcd', '2012.5']) {
      const r = await http(service.url, 'GET', `/v1/reports/${year}`);
      expect([year, r.status, r.body.code, r.body.details]).toEqual([
        year,
        400,
        'VALIDATION_FAILED',
        [{ field: 'year', problem: 'must be a year from 2000 to 2100' }],
      ]);
    }
    const empty = (await http(service.url, 'GET', '/v1/reports/2100')).body as Obj;
    expect([empty.overall.personTimes, empty.byCategory, empty.funds]).toEqual([0, [], []]);
  });

  it("medaid audit report --format json on the stopped service's data equals GET /v1/reports/2012", async () => {
    await service.stop();
    const r = await auditReport(['--year', '2012', '--format', 'json', '--data', service.dataDir]);
    expect([r.status, r.stderr]).toEqual([0, expect.stringMatching(/events read up to position \d+/)]);
    expect(JSON.parse(r.stdout)).toEqual(httpReport);
  });

  it('medaid audit report --format csv is one RFC 4180 file with a section column and the same figures', async () => {
    const r = await auditReport(['--year', '2012', '--format', 'csv', '--data', service.dataDir]);
    expect(r.status).toBe(0);
    const [header, ...rows] = parseCsv(r.stdout);
    expect(header).toEqual([
      'section',
      'category',
      'visit_type',
      'layer',
      'kind',
      'fund',
      'region',
      'name',
      'metric',
      'term',
      'value',
      'threshold',
    ]);
    expect(rows.every((row) => row.length === header!.length)).toBe(true);
    const value = (section: string, metric: string, where: (row: string[]) => boolean = () => true) =>
      rows.filter((row) => row[0] === section && row[8] === metric && where(row)).map((row) => row[10]);
    expect(value('overall', 'personTimes')).toEqual([String(httpReport.overall.personTimes)]);
    expect(value('overall', 'patientPayFen')).toEqual([String(httpReport.overall.patientPayFen)]);
    const dibao = (httpReport.byCategory as Obj[]).find((c) => c.category === 'dibao')!;
    expect(value('by_category', 'persons', (row) => row[1] === 'dibao')).toEqual([String(dibao.persons)]);
    // a category's name arrives whole (the demo policy's 特困 name has spaces, parentheses and a slash)
    expect(rows.find((row) => row[1] === 'tekun')?.[7]).toBe((httpReport.byCategory as Obj[]).find((c) => c.category === 'tekun')!.name);
    const usage = (httpReport.funds as Obj[]).find((f) => f.fund === '610100')!.usageRateBp;
    expect(value('funds', 'usageRateBp', (row) => row[5] === '610100')).toEqual([String(usage)]);
    expect(value('funds', 'usageRateBp', (row) => row[5] === '390100')).toEqual(['']); // null: nothing allocated
  });

  it('medaid audit report (table) prints the sections with 元 amounts, and refuses a bad year', async () => {
    const r = await auditReport(['--year', '2012', '--data', service.dataDir]);
    expect(r.status).toBe(0);
    for (const heading of [
      'Overall 合计',
      'By visit type 按就诊类型',
      'By beneficiary category 按救助对象类别',
      'By layer 按支付层次',
      'Fund usage 资金使用率',
      'Enrolment subsidies 资助参保',
    ]) {
      expect(r.stdout).toContain(heading);
    }
    expect(r.stdout).toMatch(new RegExp(`total cost 医疗费总额 +${yuan(httpReport.overall.totalFen).replace('.', '\\.')}\\n`));
    expect(r.stdout).toMatch(new RegExp(`patient pays 个人负担 +${yuan(httpReport.overall.patientPayFen).replace('.', '\\.')}\\n`));
    const bad = await auditReport(['--year', '1999', '--data', service.dataDir]);
    expect([bad.status, bad.stderr]).toEqual([1, expect.stringContaining('--year must be a year from 2000 to 2100')]);
  });
});

describe('the year report on EventStoreDB (against the protocol test double, not EventStoreDB)', () => {
  it('given a service on --store esdb://…, when it is stopped, then `medaid audit report --store` gives the report GET /v1/reports/2012 gave', async () => {
    const d = await EsdbDouble.start();
    const service = await startService({ args: ['--store', d.connectionString] });
    try {
      expect(
        (await http(service.url, 'POST', '/v1/persons/p-esdb/categories', { category: 'dibao', validFrom: '2012-01-01' })).status,
      ).toBe(200);
      const settled = await Promise.all([
        http(service.url, 'POST', '/v1/settlements', discharge({ personId: 'p-esdb', visitId: 'e-1', totalFen: 3_000_000 })),
        http(service.url, 'POST', '/v1/settlements', discharge({ personId: 'p-other', visitId: 'e-2', totalFen: 700_000 })),
      ]);
      expect(settled.map((r) => r.status)).toEqual([201, 201]);
      const report = (await http(service.url, 'GET', '/v1/reports/2012')).body as Obj;
      expect([report.overall.persons, report.overall.personTimes, report.overall.aidPayFen]).toEqual([
        2,
        2,
        sum(
          settled.map((r) => r.body as Obj),
          aidOf,
        ),
      ]);
      await service.stop();

      const r = await auditReport(['--year', '2012', '--format', 'json', '--store', d.connectionString]);
      expect([r.status, r.stderr]).toEqual([0, expect.stringContaining('reading the log of the EventStoreDB store')]);
      expect(JSON.parse(r.stdout)).toEqual(report);
    } finally {
      await service.stop();
      removeDir(service.dataDir);
      await d.stop();
    }
  });
});
