// `medaid whatif`, as an office runs it: a year of discharges (categories, approvals, revocations,
// deaths, reversals and re-posts, made with a fixed seed and recorded by `medaid import`), then
// drafts replayed over it by the real command. The live policy itself must reproduce every
// settlement exactly; a draft that changes one ratio must change that layer and nothing before it.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { seeded } from './support/random.js';
import { BIN, ROOT, TEST_CALLERS, http, removeDir, startService, tempDir, writeAuthFile } from './support/service.js';

type Obj = Record<string, any>;
const DEMO = JSON.parse(readFileSync(join(ROOT, 'apps/medaid/assets/demo-policy.json'), 'utf8')) as Obj;
let dir: string;
let dataDir: string;

/** The year's commands: 300 persons of every category, 1,500 discharges of 2012 and 2013, reversals and re-posts. */
function commands(): Obj[] {
  const random = seeded(15);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const out: Obj[] = [{ type: 'PublishPolicy', policy: DEMO }];
  const persons = Array.from({ length: 300 }, (_, i) => `wp${i}`);
  const category = new Map<string, string | null>();
  for (const p of persons) {
    const c = pick(['tekun', 'dibao', 'sixin', 'dibao_edge', 'illness_poor', null, null]);
    category.set(p, c);
    if (c === null) continue;
    out.push({ type: 'AssignCategory', personId: p, category: c, validFrom: '2012-01-01' });
    if ((c === 'dibao_edge' || c === 'illness_poor') && random() < 0.7)
      out.push({ type: 'GrantApproval', personId: p, approvalNo: `SP-${p}`, validFrom: '2012-01-01', validTo: '2013-12-31' });
  }
  const pad = (n: number) => String(n).padStart(2, '0');
  const settled: Obj[] = [];
  for (let n = 0; n < 1_500; n++) {
    const personId = pick(persons);
    const visitType = pick(['inpatient', 'inpatient', 'inpatient', 'outpatient', 'chronic_outpatient']);
    const year = random() < 0.8 ? 2013 : 2012;
    const month = 1 + Math.floor(random() * 11);
    const day = 1 + Math.floor(random() * 18);
    const totalFen =
      visitType === 'outpatient'
        ? 2_000 + Math.floor(random() * 40_000)
        : 50_000 + Math.floor(random() * (random() < 0.1 ? 30_000_000 : 3_000_000));
    const d = {
      type: 'SettleDischarge',
      hospitalId: `h-${n % 7}`,
      visitId: `wv${n}`,
      personId,
      region: DEMO.region,
      scheme: 'nrcms',
      visitType,
      hospitalLevel: visitType === 'outpatient' ? pick(['township', 'county']) : pick(['township', 'county', 'city', 'province']),
      admissionDate: `${year}-${pad(month)}-${pad(day)}`,
      dischargeDate: `${year}-${pad(month)}-${pad(day + (visitType === 'inpatient' ? Math.floor(random() * 10) : 0))}`,
      diagnosisCodes: [pick(['C34.9', 'N18.5', 'I63.9', 'J18.9', 'K35.8', 'E11.9'])],
      totalFen,
      fullOwnPayFen: Math.floor(totalFen * random() * 0.1),
      overLimitFen: random() < 0.3 ? Math.floor(totalFen * random() * 0.03) : 0,
      preSelfPayFen: 0,
      externalPayments: {},
    };
    out.push(d);
    settled.push(d);
    if (random() < 0.04) {
      // a reversal, and for half of them the corrected bill posted again
      const { type: _, ...rest } = d;
      out.push({ type: 'ReverseSettlement', hospitalId: d.hospitalId, visitId: d.visitId, reason: 'billing correction' });
      if (random() < 0.5) out.push({ type: 'SettleDischarge', ...rest, totalFen: Math.floor(totalFen * 0.9) });
    }
    if (n === 700) {
      // a revocation and a death in the middle of the year
      const [a, b] = persons.filter((p) => category.get(p) === 'dibao');
      out.push({ type: 'RevokeCategory', personId: a, category: 'dibao', from: '2013-06-01' });
      out.push({ type: 'RecordDeath', personId: b, dateOfDeath: '2013-07-01' });
    }
  }
  return out;
}

function medaid(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function whatif(drafts: Obj[], extra: string[] = []): Obj {
  const files = drafts.map((d, i) => {
    const file = join(dir, `draft-${i}.json`);
    writeFileSync(file, JSON.stringify(d));
    return file;
  });
  const r = medaid(['whatif', '--data', dataDir, '--year', '2013', '--format', 'json', ...files.flatMap((f) => ['--draft', f]), ...extra]);
  expect([r.status, r.stderr.includes('whatif: ')]).toEqual([0, true]);
  return JSON.parse(r.stdout) as Obj;
}

const withRatio = (layerId: string, ruleId: string, ratioBp: number): Obj => {
  const draft = structuredClone(DEMO);
  const rule = draft.layers.find((l: Obj) => l.id === layerId).rules.find((r: Obj) => r.id === ruleId);
  rule.bands[0].ratioBp = ratioBp;
  return draft;
};

beforeAll(() => {
  dir = tempDir('medaid-whatif-');
  dataDir = join(dir, 'data');
  const input = join(dir, 'year.jsonl');
  writeFileSync(
    input,
    `${commands()
      .map((c) => JSON.stringify(c))
      .join('\n')}\n`,
  );
  const imported = medaid(['import', '--data', dataDir, '--input', input]);
  expect(imported.status).toBe(0);
}, 180_000);

afterAll(() => removeDir(dir));

describe('medaid whatif', () => {
  it('with the live policy as the draft, reproduces every recorded settlement of the year exactly, line by line', () => {
    const r = whatif([DEMO]);
    expect(r.settledInScope).toBeGreaterThan(1_100);
    const [draft] = r.drafts;
    expect(draft.unsettled.count).toBe(0);
    expect(draft.identicalSettlements).toBe(r.actual.settlements);
    expect(draft.totals).toEqual(r.actual);
    expect(draft.largestChanges).toEqual([]);
    // reversals applied: fewer active settlements than were ever settled in scope
    expect(r.actual.settlements).toBeLessThan(r.settledInScope);
    expect(r.actual.persons).toBeGreaterThan(200);
  });

  it('with one aid ratio raised, changes the aid layers of those categories only, and the patients pay exactly what the funds pay more', () => {
    const raised = withRatio('aid', 'aid-dibao-ip', 9000);
    raised.monitoring = {
      thresholds: [
        { id: 'year-5000', per: 'year', aboveFen: 500_000 },
        { id: 'admission-10000', per: 'settlement', aboveFen: 1_000_000, categories: ['dibao'] },
      ],
    };
    const r = whatif([raised], ['--threshold', '500000,1000000']);
    const [draft] = r.drafts;
    const a = r.actual;
    const t = draft.totals;
    // the layers before aid, and every category the rule does not name, are untouched
    expect([t.byLayer.basic, t.byLayer.critical]).toEqual([a.byLayer.basic, a.byLayer.critical]);
    for (const c of ['tekun', 'dibao_edge', 'illness_poor', 'none'].filter((k) => a.byCategory[k] !== undefined))
      expect([c, t.byCategory[c]]).toEqual([c, a.byCategory[c]]);
    expect(t.byLayer.aid).toBeGreaterThan(a.byLayer.aid);
    expect(t.byCategory.dibao.fundPayFen).toBeGreaterThan(a.byCategory.dibao.fundPayFen);
    expect(a.fundPayFen - t.fundPayFen).toBe(t.patientPayFen - a.patientPayFen);
    expect([t.settlements, t.persons, t.totalFen]).toEqual([a.settlements, a.persons, a.totalFen]);
    expect(draft.identicalSettlements).toBeLessThan(a.settlements);
    expect(draft.identicalSettlements).toBeGreaterThanOrEqual(
      a.settlements - a.byCategory.dibao.settlements - a.byCategory.sixin.settlements,
    );
    // the largest changes are persons of those categories, paying less
    expect(draft.largestChanges.length).toBeGreaterThan(0);
    for (const c of draft.largestChanges) expect(c.deltaFen).toBeLessThan(0);
    expect(Object.keys(t.personsAboveThreshold)).toEqual(['500000', '1000000']);
    expect(t.personsAboveThreshold['500000']).toBeLessThanOrEqual(a.personsAboveThreshold['500000']);
    expect(t.shareDecilesBp).toHaveLength(10);
    // the draft's own monitoring thresholds, before and after: the yearly one agrees with --threshold
    const [year, admission] = draft.monitoring;
    expect(year).toEqual({
      thresholdId: 'year-5000',
      per: 'year',
      aboveFen: 500_000,
      actualPersons: a.personsAboveThreshold['500000'],
      draftPersons: t.personsAboveThreshold['500000'],
    });
    expect(year.actualPersons).toBeGreaterThan(0);
    expect(admission).toMatchObject({ thresholdId: 'admission-10000', per: 'settlement' });
    expect(admission.draftPersons).toBeLessThanOrEqual(admission.actualPersons);
    expect(admission.actualPersons).toBeLessThanOrEqual(a.byCategory.dibao.persons);
  });

  it('compares several drafts side by side, and counts the discharges a draft cannot settle (a category it does not define)', () => {
    const narrow = structuredClone(DEMO);
    narrow.categories = narrow.categories.filter((c: Obj) => c.code !== 'illness_poor');
    for (const layer of narrow.layers)
      for (const rule of layer.rules)
        if (rule.match?.categories) rule.match.categories = rule.match.categories.filter((c: string) => c !== 'illness_poor');
    for (const layer of narrow.layers)
      layer.rules = layer.rules.filter((rule: Obj) => rule.match?.categories === undefined || rule.match.categories.length > 0);
    const r = whatif([DEMO, narrow]);
    expect(r.drafts).toHaveLength(2);
    expect(r.drafts[0].identicalSettlements).toBe(r.actual.settlements);
    const cannot = r.drafts[1].unsettled;
    expect(cannot.count).toBeGreaterThan(0);
    expect(Object.keys(cannot.byCode)).toEqual(['UNKNOWN_CATEGORY']);
    expect(cannot.count).toBe(r.drafts[0].totals.settlements - r.drafts[1].totals.settlements);
    expect(r.actual.byCategory.illness_poor.settlements).toBe(cannot.count);
  });

  it('prints a table and a CSV with the same figures, and refuses a draft that is not a valid policy', () => {
    const file = join(dir, 'draft-table.json');
    writeFileSync(file, JSON.stringify(withRatio('aid', 'aid-dibao-ip', 9000)));
    const table = medaid(['whatif', '--data', dataDir, '--year', '2013', '--draft', file]);
    expect(table.status).toBe(0);
    expect(table.stdout).toContain('patientPay 元 个人负担');
    expect(table.stdout).toMatch(/layer\s+aid\s+pay 元/);
    const csv = medaid(['whatif', '--data', dataDir, '--year', '2013', '--draft', file, '--format', 'csv']);
    const json = whatif([withRatio('aid', 'aid-dibao-ip', 9000)]);
    const line = csv.stdout.split('\r\n').find((l) => l.startsWith('layer,aid,payFen,'));
    expect(line).toBe(`layer,aid,payFen,${json.actual.byLayer.aid},${json.drafts[0].totals.byLayer.aid}`);
    writeFileSync(file, JSON.stringify({ ...DEMO, layers: 'none' }));
    const bad = medaid(['whatif', '--data', dataDir, '--year', '2013', '--draft', file]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('layers');
  });

  it('runs as a job of the service (POST /v1/simulations, admin or auditor) with progress, and keeps the same result for later', async () => {
    const auth = writeAuthFile([]);
    const service = await startService({ dataDir, args: ['--auth', auth.file] });
    try {
      const draft = withRatio('aid', 'aid-dibao-ip', 9000);
      const asAdmin = { authorization: `Bearer ${TEST_CALLERS.admin}` };
      const submitted = await http(
        service.url,
        'POST',
        '/v1/simulations',
        { year: 2013, drafts: [draft], thresholdsFen: [500000] },
        asAdmin,
      );
      expect([submitted.status, submitted.body.status === 'queued' || submitted.body.status === 'running']).toEqual([202, true]);
      const id = submitted.body.simulationId as string;
      let job: Obj = submitted.body;
      for (let i = 0; i < 600 && job.status !== 'done' && job.status !== 'failed'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        job = (await http(service.url, 'GET', `/v1/simulations/${id}`, undefined, { authorization: `Bearer ${TEST_CALLERS.auditor}` }))
          .body;
      }
      expect([job.status, job.error]).toEqual(['done', null]);
      expect(job.progress.eventsRead).toBeGreaterThan(1_500);
      expect(job.requestedBy).toEqual({ kind: 'admin', id: 'test-admin' });
      const cli = whatif([draft], ['--threshold', '500000']);
      expect(job.result).toEqual(cli);
      // refused: a hospital; a draft that is not a policy (named by its field); an unknown id
      const hospital = await http(
        service.url,
        'POST',
        '/v1/simulations',
        { year: 2013, drafts: [draft] },
        {
          authorization: `Bearer ${TEST_CALLERS.hospitals['h-a']}`,
        },
      );
      expect(hospital.status).toBe(403);
      const bad = await http(service.url, 'POST', '/v1/simulations', { year: 2013, drafts: [{ ...draft, layers: 'none' }] }, asAdmin);
      expect([bad.status, bad.body.code, bad.body.details[0].field]).toEqual([400, 'INVALID_POLICY', 'drafts[0].layers']);
      const none = await http(service.url, 'POST', '/v1/simulations', { year: 2013, drafts: [] }, asAdmin);
      expect([none.status, none.body.code]).toEqual([400, 'VALIDATION_FAILED']);
      const unknown = await http(service.url, 'GET', '/v1/simulations/00000000-0000-0000-0000-000000000000', undefined, asAdmin);
      expect(unknown.status).toBe(404);
      // kept for later: after a restart it is read from DIR/simulations/
      await service.stop();
      const again = await startService({ dataDir, args: ['--auth', auth.file] });
      try {
        const later = await http(again.url, 'GET', `/v1/simulations/${id}`, undefined, asAdmin);
        expect([later.status, later.body.result]).toEqual([200, cli]);
      } finally {
        await again.stop();
      }
    } finally {
      await service.stop();
      removeDir(auth.dir);
    }
  }, 180_000);
});
