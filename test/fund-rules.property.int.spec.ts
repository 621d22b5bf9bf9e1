// The fund rules (README "The fund rules") checked as a fund accountant would, over random sequences
// of what an office does: allocations, settlements with and without external payments, previews,
// reversals, adjustments requested, approved and rejected, enrolment subsidies, and restarts. The
// real command handlers on a real SQLite store in a temporary directory (as `medaid simulate` runs
// them). After every step, from the log alone (an oracle written here, not the read model):
//  - no fund that may not be overdrawn is below zero;
//  - every fund balance equals allocations + received − paid, and the service shows exactly that;
//  - `audit verify`'s recomputation of every settlement equals what was recorded, and it finds no
//    fund overdrawn;
//  - every counter is within the cap of each rule that raised it, except where only cuts moved it,
//    never below 0, and the service's counters are the log's;
//  - a refused command and a preview record nothing.
import { afterAll, describe, expect, it } from '@jest/globals';
import { NestFactory } from '@nestjs/core';
import { CommandBus } from '@nestjs/cqrs';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import {
  AdjustmentAppliedData,
  EnrolmentSubsidyGrantedData,
  FundAllocatedData,
  Policy,
  Result,
  SettledData,
  fundBalanceFen,
} from '#domain';
import { SqliteJournal } from '#ledger';
import { MedaidModule } from '../apps/medaid/src/app.module.js';
import { ApproveAdjustment, RejectAdjustment, RequestAdjustment } from '../apps/medaid/src/commands/adjustments/adjustment.handlers.js';
import { toCommand } from '../apps/medaid/src/commands/dispatch.js';
import { AllocateFundCommand } from '../apps/medaid/src/commands/funds/fund.handlers.js';
import { GrantEnrolmentSubsidies } from '../apps/medaid/src/commands/funds/subsidy.handlers.js';
import { PublishPolicy } from '../apps/medaid/src/commands/policies/policy.handlers.js';
import { MedaidRuntime, openRuntime } from '../apps/medaid/src/infrastructure/runtime.js';
import { Progress } from '../apps/medaid/src/ledger/audit-support.js';
import { verifyAudit } from '../apps/medaid/src/ledger/audit-verify.js';
import { CommandMeta } from '../apps/medaid/src/shared/writer.js';

const MAKER: CommandMeta = { actor: { kind: 'admin', id: 'maker' }, correlationId: 'prop' };
const CHECKER: CommandMeta = { actor: { kind: 'admin', id: 'checker' }, correlationId: 'prop' };
const HOSPITAL: CommandMeta = { actor: { kind: 'hospital', id: 'h1' }, correlationId: 'prop' };
const PERSONS = 2;
const VISITS = 4; // visit i is always person i % PERSONS
const YEARS = [2020, 2021] as const;
const LIMITED = ['F2', 'F3'];
/** What a command may answer besides ok: business refusals, never an unexpected error. */
const REFUSALS = new Set([
  'VALIDATION_FAILED',
  'VISIT_CONFLICT',
  'SETTLEMENT_NOT_FOUND',
  'ALREADY_REVERSED',
  'ADJUSTMENT_OUT_OF_RANGE',
  'ADJUSTMENT_ALREADY_DECIDED',
  'ADJUSTMENT_NOT_FOUND',
  'FORBIDDEN',
]);

interface PolicyParams {
  insRatioBp: number;
  insCapFen: number;
  aidRatioBp: number;
  aidCapFen: number;
  ipCapFen: number;
  opCapFen: number;
  topRatioBp: number;
  dibaoSubsidyFen: number;
}

/**
 * Insurance from F1 (may be overdrawn); aid from F2, which may not be; a second round from F1 whose
 * two rules share counter c1 with different caps; a third round from F2 again (a later layer of the
 * same limited fund); 资助参保 from F3, which may not be overdrawn either, into F1.
 */
function policyOf(p: PolicyParams): Policy {
  return {
    policyId: 'PR',
    version: 1,
    region: 'ra',
    effectiveFrom: '2020-01-01',
    categories: [
      { code: 'tekun', name: '特困' },
      { code: 'dibao', name: '低保' },
    ],
    funds: LIMITED.map((code) => ({ code, mayOverdraw: false })),
    enrolmentSubsidy: {
      premiumFen: 9000,
      fromFund: 'F3',
      toFund: 'F1',
      byCategory: [
        { category: 'tekun', full: true },
        { category: 'dibao', amountFen: p.dibaoSubsidyFen },
      ],
    },
    layers: [
      {
        id: 'L1',
        kind: 'insurance',
        fund: 'F1',
        rules: [
          {
            id: 'ins',
            threshold: { fen: 10000, per: 'year' },
            bands: [{ uptoFen: null, ratioBp: p.insRatioBp }],
            annualCaps: [{ counter: 'ins', capFen: p.insCapFen }],
          },
        ],
      },
      {
        id: 'L2',
        kind: 'aid',
        fund: 'F2',
        rules: [
          {
            id: 'aid',
            match: { categories: ['tekun', 'dibao'] },
            bands: [{ uptoFen: null, ratioBp: p.aidRatioBp }],
            annualCaps: [{ counter: 'aid', capFen: p.aidCapFen }],
          },
        ],
      },
      {
        id: 'L3',
        kind: 'aid',
        fund: 'F1',
        rules: [
          {
            id: 'ip',
            match: { visitTypes: ['inpatient'] },
            bands: [{ uptoFen: null, ratioBp: 10000 }],
            annualCaps: [{ counter: 'c1', capFen: p.ipCapFen }],
          },
          {
            id: 'op',
            match: { visitTypes: ['outpatient'] },
            bands: [{ uptoFen: null, ratioBp: 10000 }],
            annualCaps: [{ counter: 'c1', capFen: p.opCapFen }],
          },
        ],
      },
      { id: 'L4', kind: 'aid', fund: 'F2', rules: [{ id: 'top', bands: [{ uptoFen: null, ratioBp: p.topRatioBp }] }] },
    ],
  };
}

type Step =
  | { kind: 'allocate'; fund: string; year: number; amountFen: number }
  | {
      kind: 'settle' | 'preview';
      visit: number;
      year: number;
      visitType: 'inpatient' | 'outpatient';
      totalFen: number;
      external: { layerId: string; fen: number } | null;
    }
  | { kind: 'reverse'; visit: number }
  | { kind: 'request'; visit: number; layerId: string; deltaFen: number }
  | { kind: 'approve' | 'reject'; adjustment: number }
  | { kind: 'subsidy'; year: number }
  | { kind: 'restart' };

const year = fc.constantFrom(...YEARS);
const visit = fc.integer({ min: 0, max: VISITS - 1 });
const layerId = fc.constantFrom('L1', 'L2', 'L3', 'L4');
const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('allocate' as const),
      fund: fc.constantFrom('F1', 'F2', 'F3'),
      year,
      amountFen: fc.integer({ min: 1, max: 300_000 }),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constantFrom('settle' as const, 'settle' as const, 'preview' as const),
      visit,
      year,
      visitType: fc.constantFrom('inpatient' as const, 'outpatient' as const),
      totalFen: fc.integer({ min: 0, max: 2_000_000 }),
      external: fc.option(fc.record({ layerId, fen: fc.integer({ min: 0, max: 400_000 }) }), { freq: 2 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('reverse' as const), visit }) },
  // L3 is where two rules share a counter with different caps: asked about more often
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('request' as const),
      visit,
      layerId: fc.constantFrom('L1', 'L2', 'L3', 'L3', 'L3', 'L4'),
      deltaFen: fc.oneof(
        fc.integer({ min: -150_000, max: 150_000 }).filter((d) => d !== 0),
        fc.integer({ min: -5_000, max: -1 }),
      ),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constantFrom('approve' as const, 'approve' as const, 'reject' as const), adjustment: fc.nat(20) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('subsidy' as const), year }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
);
/**
 * The correction the issue found refused: an inpatient and an outpatient settlement of one person
 * and year (their second-round rules share counter c1), then a cut of the inpatient one's L3 —
 * steps that random draws rarely line up, so they are also drawn together.
 */
const sharedCounterCut: fc.Arbitrary<Step[]> = fc
  .record({
    v: fc.integer({ min: 0, max: PERSONS - 1 }),
    year,
    ip: fc.integer({ min: 100_000, max: 2_000_000 }),
    op: fc.integer({ min: 100_000, max: 2_000_000 }),
    deltaFen: fc.integer({ min: -20_000, max: -1 }),
  })
  .map(({ v, year: y, ip, op, deltaFen }) => [
    { kind: 'settle', visit: v, year: y, visitType: 'inpatient', totalFen: ip, external: null },
    { kind: 'settle', visit: v + PERSONS, year: y, visitType: 'outpatient', totalFen: op, external: null },
    { kind: 'request', visit: v, layerId: 'L3', deltaFen },
  ]);
const steps = fc
  .array(fc.oneof({ weight: 12, arbitrary: step.map((s) => [s]) }, { weight: 1, arbitrary: sharedCounterCut }), {
    minLength: 8,
    maxLength: 40,
  })
  .map((s) => s.flat());

const params: fc.Arbitrary<PolicyParams> = fc.record({
  insRatioBp: fc.integer({ min: 0, max: 9000 }),
  insCapFen: fc.integer({ min: 0, max: 1_500_000 }),
  aidRatioBp: fc.integer({ min: 0, max: 10000 }),
  aidCapFen: fc.integer({ min: 0, max: 600_000 }),
  ipCapFen: fc.integer({ min: 0, max: 100_000 }),
  opCapFen: fc.integer({ min: 100_000, max: 1_000_000 }),
  topRatioBp: fc.integer({ min: 0, max: 10000 }),
  dibaoSubsidyFen: fc.integer({ min: 1, max: 9000 }),
});
const categories = fc.array(fc.constantFrom('tekun', 'dibao', null), { minLength: PERSONS, maxLength: PERSONS });

/** The service: the real runtime and handlers in this process, restartable on the same directory. */
class Office {
  private runtime!: MedaidRuntime;
  private close!: () => Promise<void>;
  bus!: CommandBus;

  constructor(
    readonly dir: string,
    readonly policy: Policy,
  ) {}

  async open(): Promise<void> {
    const runtime = await openRuntime(this.dir);
    const app = await NestFactory.createApplicationContext(MedaidModule.forRoot(runtime, { http: false }), { logger: false });
    this.runtime = runtime;
    this.bus = app.get(CommandBus);
    this.close = async () => {
      await app.close();
      await runtime.close();
    };
  }

  async restart(): Promise<void> {
    await this.close();
    await this.open();
  }

  stop = () => this.close();
  head = () => this.runtime.store.headPosition();
  log = () => this.runtime.store.readAll({ fromPosition: 0, maxCount: 1_000_000 });
  get model() {
    return this.runtime.state;
  }
  get store() {
    return this.runtime.store;
  }
}

/** Funds and counters folded from the log by this test's own reading of the README's rules. */
function oracle(policy: Policy, events: Awaited<ReturnType<Office['log']>>) {
  const funds = new Map<string, { income: number; paid: number }>();
  const account = (fund: string, region: string, y: number) => {
    const key = `${fund}|${region}|${y}`;
    if (!funds.has(key)) funds.set(key, { income: 0, paid: 0 });
    return funds.get(key)!;
  };
  const taken = new Map<string, Array<[string, string, number, number]>>(); // settlement → [fund, region, year, fen]
  const counters = new Map<string, number>(); // person|year|counter
  const contributions = new Map<string, Record<string, number>>(); // settlement → used added
  const capBreaches: string[] = [];
  const settlements = new Map<string, SettledData>();
  const personOf = (streamId: string) => streamId.slice('person-'.length);
  const capsOf = (layer: string, ruleId: string | null) =>
    policy.layers.find((l) => l.id === layer)?.rules.find((r) => r.id === ruleId)?.annualCaps ?? [];
  const addUsed = (person: string, y: number, used: Record<string, number>, sign: 1 | -1) => {
    for (const [c, fen] of Object.entries(used))
      counters.set(`${person}|${y}|${c}`, (counters.get(`${person}|${y}|${c}`) ?? 0) + sign * fen);
  };
  for (const e of events) {
    if (e.type === 'FundAllocated') {
      const a = e.data as FundAllocatedData;
      account(a.fund, a.region, a.year).income += a.amountFen;
    } else if (e.type === 'DischargeSettled') {
      const s = e.data as SettledData;
      const list: Array<[string, string, number, number]> = [];
      s.layers.forEach(([, , , , payFen], i) => {
        if (payFen === 0) return;
        account(policy.layers[i]!.fund, s.discharge.region, s.year).paid += payFen;
        list.push([policy.layers[i]!.fund, s.discharge.region, s.year, payFen]);
      });
      taken.set(s.settlementId, list);
      settlements.set(s.settlementId, s);
      contributions.set(s.settlementId, { ...s.contributions.used });
      addUsed(personOf(e.streamId), s.year, s.contributions.used, 1);
      s.layers.forEach(([ruleId, , , , payFen], i) => {
        if (payFen === 0) return;
        for (const cap of capsOf(policy.layers[i]!.id, ruleId)) {
          const used = counters.get(`${personOf(e.streamId)}|${s.year}|${cap.counter}`) ?? 0;
          if (used > cap.capFen) capBreaches.push(`settlement ${s.settlementId}: ${cap.counter} at ${used} > ${cap.capFen}`);
        }
      });
    } else if (e.type === 'AdjustmentApplied') {
      const a = e.data as AdjustmentAppliedData;
      account(a.fund, a.region, a.year).paid += a.deltaFen;
      taken.get(a.settlementId)!.push([a.fund, a.region, a.year, a.deltaFen]);
      const c = contributions.get(a.settlementId)!;
      for (const [k, fen] of Object.entries(a.contributions.used)) c[k] = (c[k] ?? 0) + fen;
      addUsed(personOf(e.streamId), a.year, a.contributions.used, 1);
      if (a.deltaFen > 0) {
        // a raise keeps every counter of the rule that paid the layer within that rule's cap
        const settled = settlements.get(a.settlementId)!;
        const i = policy.layers.findIndex((l) => l.id === a.layerId);
        for (const cap of capsOf(a.layerId, settled.layers[i]![0])) {
          const used = counters.get(`${personOf(e.streamId)}|${a.year}|${cap.counter}`) ?? 0;
          if (used > cap.capFen) capBreaches.push(`raise ${a.adjustmentId}: ${cap.counter} at ${used} > ${cap.capFen}`);
        }
      }
    } else if (e.type === 'SettlementReversed') {
      const { settlementId } = e.data as { settlementId: string };
      for (const [fund, region, y, fen] of taken.get(settlementId) ?? []) account(fund, region, y).paid -= fen;
      const s = settlements.get(settlementId)!;
      addUsed(personOf(e.streamId), s.year, contributions.get(settlementId)!, -1);
      taken.delete(settlementId);
    } else if (e.type === 'EnrolmentSubsidyGranted') {
      const g = e.data as EnrolmentSubsidyGrantedData;
      account(g.fromFund, g.region, g.year).paid += g.amountFen;
      account(g.toFund, g.region, g.year).income += g.amountFen;
    }
  }
  return { funds, counters, capBreaches };
}

/**
 * Whether a cut of a visit's active settlement must be accepted: the layer's pay after the
 * adjustments already applied, and every counter of the rule that paid it, stay at 0 or more.
 */
function cutFits(policy: Policy, events: Awaited<ReturnType<Office['log']>>, visit: string, layerId: string, deltaFen: number): boolean {
  let active: { s: SettledData; person: string } | null = null;
  let applied = 0;
  for (const e of events) {
    if (
      e.type === 'DischargeSettled' &&
      `${(e.data as SettledData).discharge.hospitalId}/${(e.data as SettledData).discharge.visitId}` === visit
    ) {
      active = { s: e.data as SettledData, person: e.streamId.slice('person-'.length) };
      applied = 0;
    }
    if (e.type === 'SettlementReversed' && active !== null && (e.data as { settlementId: string }).settlementId === active.s.settlementId)
      active = null;
    const a = e.data as AdjustmentAppliedData;
    if (e.type === 'AdjustmentApplied' && active !== null && a.settlementId === active.s.settlementId && a.layerId === layerId)
      applied += a.deltaFen;
  }
  if (active === null) return false;
  const i = policy.layers.findIndex((l) => l.id === layerId);
  const [ruleId, , , , payFen] = active.s.layers[i]!;
  if (payFen + applied + deltaFen < 0) return false;
  const { counters } = oracle(policy, events);
  const caps = policy.layers[i]!.rules.find((r) => r.id === ruleId)?.annualCaps ?? [];
  return caps.every((cap) => (counters.get(`${active!.person}|${active!.s.year}|${cap.counter}`) ?? 0) + deltaFen >= 0);
}

async function checkInvariants(office: Office, policy: Policy, at: string): Promise<void> {
  const events = await office.log();
  const { funds, counters, capBreaches } = oracle(policy, events);
  for (const [key, a] of funds) {
    const [fund] = key.split('|');
    if (LIMITED.includes(fund!)) expect([at, key, a.income - a.paid >= 0]).toEqual([at, key, true]);
    const shown = office.model.funds.get(key);
    expect([at, key, shown === undefined ? 0 : fundBalanceFen(shown), shown?.paidFen ?? 0]).toEqual([at, key, a.income - a.paid, a.paid]);
  }
  expect([at, capBreaches]).toEqual([at, []]);
  for (const [key, used] of counters) {
    const [person, y, counter] = key.split('|');
    expect([at, key, used >= 0]).toEqual([at, key, true]);
    expect([at, key, (await office.model.person(office.store, person!)).state.years[Number(y)]?.used[counter!] ?? 0]).toEqual([
      at,
      key,
      used,
    ]);
  }
  // audit verify over the whole log: every settlement recomputed as recorded, no fund overdrawn
  const scratch = mkdtempSync(join(tmpdir(), 'medaid-prop-journal-'));
  const journal = SqliteJournal.open(join(scratch, 'ledger.sqlite'), { durable: false });
  try {
    const r = await verifyAudit(office.store, journal, {
      serviceRunning: true,
      progress: new Progress('verify', new PassThrough(), await office.head()),
    });
    expect([at, r.problems.listed.filter((p) => !p.includes('the journal'))]).toEqual([at, []]);
  } finally {
    journal.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}

const dischargeOf = (s: Extract<Step, { kind: 'settle' | 'preview' }>) => ({
  type: s.kind === 'settle' ? 'SettleDischarge' : 'PreviewDischarge',
  hospitalId: 'h1',
  visitId: `v${s.visit}`,
  personId: `p${s.visit % PERSONS}`,
  region: 'ra',
  scheme: 'nrcms',
  visitType: s.visitType,
  hospitalLevel: 'county',
  admissionDate: `${s.year}-03-01`,
  dischargeDate: `${s.year}-03-05`,
  totalFen: s.totalFen,
  ...(s.external ? { externalPayments: { [s.external.layerId]: s.external.fen } } : {}),
});

async function run(office: Office, s: Step, adjustments: string[]): Promise<Result<unknown> | null> {
  const bus = office.bus;
  switch (s.kind) {
    case 'allocate':
      return bus.execute(
        new AllocateFundCommand(
          {
            fund: s.fund,
            region: 'ra',
            year: s.year,
            source: 'superior',
            amountFen: s.amountFen,
            reference: `ref-${adjustments.length}-${s.amountFen}-${s.year}-${s.fund}`,
          },
          MAKER,
        ),
      );
    case 'settle':
    case 'preview': {
      const command = toCommand(dischargeOf(s), HOSPITAL);
      if (!command.ok) throw new Error(command.error.message);
      return bus.execute(command.value);
    }
    case 'reverse': {
      const command = toCommand({ type: 'ReverseSettlement', hospitalId: 'h1', visitId: `v${s.visit}`, reason: '撤销' }, HOSPITAL);
      if (!command.ok) throw new Error(command.error.message);
      return bus.execute(command.value);
    }
    case 'request': {
      const mustFit = s.deltaFen < 0 && cutFits(office.policy, await office.log(), `h1/v${s.visit}`, s.layerId, s.deltaFen);
      const r: Result<string> = await bus.execute(
        new RequestAdjustment(
          { settlement: { hospitalId: 'h1', visitId: `v${s.visit}` }, layerId: s.layerId, deltaFen: s.deltaFen, reason: '复核' },
          MAKER,
        ),
      );
      if (r.ok) adjustments.push(r.value);
      // a cut that leaves the pay and every counter at 0 or more is never refused (README, "The fund rules")
      if (mustFit) expect([s, r.ok ? 'ok' : r.error.message]).toEqual([s, 'ok']);
      return r;
    }
    case 'approve':
    case 'reject': {
      const id = adjustments[s.adjustment % Math.max(1, adjustments.length)];
      if (id === undefined) return null;
      return bus.execute(s.kind === 'approve' ? new ApproveAdjustment(id, CHECKER) : new RejectAdjustment(id, '不予调整', CHECKER));
    }
    case 'subsidy':
      return bus.execute(new GrantEnrolmentSubsidies('ra', s.year, `${s.year}-01-01`, MAKER));
    case 'restart':
      await office.restart();
      return null;
  }
}

describe("the fund rules over random sequences of an office's work", () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('keeps every fund that may not be overdrawn at or above 0, every balance equal to the log, every recomputation equal to the record, every raised counter within its cap', async () => {
    await fc.assert(
      fc.asyncProperty(params, categories, steps, async (p, held, sequence) => {
        const dir = mkdtempSync(join(tmpdir(), 'medaid-fund-rules-'));
        dirs.push(dir);
        const policy = policyOf(p);
        const office = new Office(dir, policy);
        await office.open();
        try {
          expect(((await office.bus.execute(new PublishPolicy(policy, MAKER))) as Result<unknown>).ok).toBe(true);
          for (const [i, category] of held.entries()) {
            if (category === null) continue;
            const c = toCommand({ type: 'AssignCategory', personId: `p${i}`, category, validFrom: '2019-01-01' }, MAKER);
            if (!c.ok) throw new Error(c.error.message);
            expect(((await office.bus.execute(c.value)) as Result<unknown>).ok).toBe(true);
          }
          const adjustments: string[] = [];
          for (const [n, s] of sequence.entries()) {
            const at = `step ${n} ${JSON.stringify(s)}`;
            const before = await office.head();
            const r = await run(office, s, adjustments);
            if (r !== null && !r.ok) {
              expect([at, REFUSALS.has(r.error.code) ? 'a refusal' : r.error.code]).toEqual([at, 'a refusal']);
              // a refused command records nothing (an approval may complete its own stream's lag, never here)
              expect([at, await office.head()]).toEqual([at, before]);
            }
            if (s.kind === 'preview') expect([at, await office.head()]).toEqual([at, before]);
            await checkInvariants(office, policy, at);
          }
        } finally {
          await office.stop();
        }
      }),
      { numRuns: Number(process.env.MEDAID_FUND_RUNS ?? 30), endOnFailure: true },
    );
  }, 600_000);
});
