// `audit verify` checks every fund that may not be overdrawn after every event that took money from
// it — a settlement (external payments included), an applied raise, a subsidy — whatever moved the
// money. Given a log written as a faulty service would have written it (a real SQLite store, events
// appended directly), verify names each overdraft and the event that made it; cuts are not blamed.
import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { AdjustmentAppliedData, Policy, flagsOf, settle, toSettledData } from '#domain';
import { deterministicEventId } from '#event-store';
import { SqliteEventStore } from '#event-store-sqlite';
import { SqliteJournal } from '#ledger';
import { Progress } from './audit-support.js';
import { verifyAudit } from './audit-verify.js';

const POLICY: Policy = {
  policyId: 'P',
  version: 1,
  region: 'ra',
  effectiveFrom: '2020-01-01',
  categories: [{ code: 'dibao', name: '低保' }],
  funds: [
    { code: 'F2', mayOverdraw: false },
    { code: 'F3', mayOverdraw: false },
  ],
  enrolmentSubsidy: { premiumFen: 9000, fromFund: 'F3', toFund: 'F1', byCategory: [{ category: 'dibao', full: true }] },
  layers: [
    { id: 'L1', kind: 'aid', fund: 'F2', rules: [{ id: 'r1', bands: [{ uptoFen: null, ratioBp: 5000 }] }] },
    { id: 'L2', kind: 'aid', fund: 'F2', rules: [{ id: 'r2', bands: [{ uptoFen: null, ratioBp: 10000 }] }] },
  ],
};
const REF = { policyId: 'P', version: 1 };
const ACTOR = { kind: 'admin', id: 'a' };

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function verifyLog(events: Array<[streamId: string, type: string, data: unknown]>) {
  dir = mkdtempSync(join(tmpdir(), 'medaid-verify-funds-'));
  const store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite') });
  const journal = SqliteJournal.open(join(dir, 'ledger.sqlite'));
  try {
    for (const [streamId, type, data] of events) {
      await store.appendToStream(streamId, [{ id: deterministicEventId(streamId, type, JSON.stringify(data)), type, data, metadata: {} }], {
        expectedRevision: 'any',
      });
    }
    // serviceRunning: the empty journal is taken as behind, so only the log's own checks speak
    const progress = new Progress('verify', new PassThrough(), await store.headPosition());
    const r = await verifyAudit(store, journal, { serviceRunning: true, progress });
    return { funds: r.problems.listed.filter((p) => p.includes('may not be overdrawn')), all: r.problems };
  } finally {
    journal.close();
    await store.close();
  }
}

/** A discharge of p1 (500,000 fen, 30,000 of it paid outside on L1). */
function unlimitedSettlementInput() {
  return {
    hospitalId: 'h1',
    visitId: 'v1',
    personId: 'p1',
    region: 'ra',
    scheme: 'nrcms',
    visitType: 'inpatient' as const,
    hospitalLevel: 'county' as const,
    admissionDate: '2020-02-01',
    dischargeDate: '2020-02-03',
    diagnosisCodes: [],
    totalFen: 500000,
    fullOwnPayFen: 0,
    overLimitFen: 0,
    preSelfPayFen: 0,
    externalPayments: { L1: 30000 },
  };
}

/** A settlement of p1 as a service without the fund limit would have recorded it: L2 takes all that is left. */
function unlimitedSettlement() {
  const d = unlimitedSettlementInput();
  const settled = settle(d, POLICY, 'h1/v1/1', { categories: {}, approvals: [], deathDate: null, years: {}, active: null });
  if (!settled.ok) throw new Error(settled.error.message);
  return toSettledData(settled.value);
}

const adjustment = (adjustmentId: string, deltaFen: number): AdjustmentAppliedData => ({
  adjustmentId,
  settlementId: 'h1/v1/1',
  hospitalId: 'h1',
  visitId: 'v1',
  layerId: 'L1',
  fund: 'F2',
  region: 'ra',
  year: 2020,
  deltaFen,
  contributions: { yearBase: {}, used: {} },
  requestedBy: ACTOR,
  approvedBy: { kind: 'admin', id: 'b' },
});
const allocation = (fund: string, amountFen: number) =>
  [`fund-${fund}-ra`, 'FundAllocated', { fund, region: 'ra', year: 2020, source: 'superior', amountFen, reference: `r-${fund}` }] as [
    string,
    string,
    unknown,
  ];

describe('audit verify and funds that may not be overdrawn', () => {
  it('given a settlement, a raise and a subsidy that each overdraw their fund, then each is named, and a cut is not', async () => {
    const subsidy = {
      personId: 'p2',
      year: 2020,
      region: 'ra',
      category: 'dibao',
      amountFen: 9000,
      fromFund: 'F3',
      toFund: 'F1',
      policy: REF,
      asOf: '2020-01-01',
    };
    const { funds } = await verifyLog([
      ['policy-P', 'PolicyPublished', { policy: POLICY }],
      allocation('F2', 100000),
      allocation('F3', 5000),
      ['person-p1', 'DischargeSettled', unlimitedSettlement()],
      ['person-p1', 'AdjustmentApplied', adjustment('adj-raise', 100)],
      ['person-p1', 'AdjustmentApplied', adjustment('adj-cut', -100)],
      ['person-p2', 'EnrolmentSubsidyGranted', subsidy],
    ]);
    expect(funds).toEqual([
      expect.stringMatching(/^settlement h1\/v1\/1 \(position \d+\): fund F2 \(ra, 2020\) may not be overdrawn, and is by 400000 fen$/),
      expect.stringMatching(
        /^adjustment adj-raise of settlement h1\/v1\/1 \(position \d+\): fund F2 \(ra, 2020\) may not be overdrawn, and is by 400100 fen$/,
      ),
      expect.stringMatching(
        /^enrolment subsidy of p2 for 2020 \(position \d+\): fund F3 \(ra, 2020\) may not be overdrawn, and is by 4000 fen$/,
      ),
    ]);
  });

  it('given the same events within what the funds hold, then no fund problem is reported', async () => {
    const subsidy = {
      personId: 'p2',
      year: 2020,
      region: 'ra',
      category: 'dibao',
      amountFen: 9000,
      fromFund: 'F3',
      toFund: 'F1',
      policy: REF,
      asOf: '2020-01-01',
    };
    const { funds } = await verifyLog([
      ['policy-P', 'PolicyPublished', { policy: POLICY }],
      allocation('F2', 500100), // the settlement takes 30,000 + 470,000, the raise 100
      allocation('F3', 9000),
      ['person-p1', 'DischargeSettled', unlimitedSettlement()],
      ['person-p1', 'AdjustmentApplied', adjustment('adj-raise', 100)],
      ['person-p2', 'EnrolmentSubsidyGranted', subsidy],
    ]);
    expect(funds).toEqual([]);
  });
});

describe('audit verify and the monitoring flags', () => {
  const MONITORED: Policy = {
    ...POLICY,
    funds: [],
    layers: [POLICY.layers[0]!],
    monitoring: { thresholds: [{ id: 't-admission', per: 'settlement', aboveFen: 100_000 }] },
  };
  const EMPTY = { categories: {}, approvals: [], deathDate: null, years: {}, active: null };
  function monitoredSettlement() {
    const d = { ...unlimitedSettlementInput(), externalPayments: {} };
    const settled = settle(d, MONITORED, 'h1/v1/1', EMPTY);
    if (!settled.ok) throw new Error(settled.error.message);
    const flags = flagsOf(settled.value, MONITORED, EMPTY);
    expect(flags).toHaveLength(1); // 500,000 less half: 250,000 of self-pay, over the line
    return { data: toSettledData(settled.value), flag: flags[0]!.data as unknown as Record<string, unknown> };
  }
  const monitoring = (all: { listed: string[] }) => all.listed.filter((p) => p.includes('HighMedicalCost'));

  it('given the flag the rules give right after its settlement, then no monitoring problem is reported', async () => {
    const { data, flag } = monitoredSettlement();
    const { all } = await verifyLog([
      ['policy-P', 'PolicyPublished', { policy: MONITORED }],
      ['person-p1', 'DischargeSettled', data],
      ['person-p1', 'HighMedicalCostFlagged', flag],
    ]);
    expect(monitoring(all)).toEqual([]);
  });

  it('given a missing flag, a flag of another amount and a flag no settlement gives, then each is named', async () => {
    const { data, flag } = monitoredSettlement();
    const missing = await verifyLog([
      ['policy-P', 'PolicyPublished', { policy: MONITORED }],
      ['person-p1', 'DischargeSettled', data],
      ['person-p1', 'CategoryAssigned', { personId: 'p1', category: 'dibao', validFrom: '2020-01-01', validTo: null }],
    ]);
    expect(monitoring(missing.all)).toEqual([
      expect.stringMatching(/^settlement h1\/v1\/1 .*: HighMedicalCostFlagged .* should follow it and is not recorded$/),
    ]);
    rmSync(dir, { recursive: true, force: true });

    const changed = await verifyLog([
      ['policy-P', 'PolicyPublished', { policy: MONITORED }],
      ['person-p1', 'DischargeSettled', data],
      ['person-p1', 'HighMedicalCostFlagged', { ...flag, amountFen: 99 }],
    ]);
    expect(monitoring(changed.all)).toEqual([
      expect.stringMatching(/^HighMedicalCostFlagged at position 3 .*: the rules give .*"amountFen":250000.* not .*"amountFen":99/),
    ]);
    rmSync(dir, { recursive: true, force: true });

    const stray = await verifyLog([
      ['policy-P', 'PolicyPublished', { policy: MONITORED }],
      ['person-p2', 'HighMedicalCostFlagged', { ...flag, personId: 'p2' }],
    ]);
    expect(monitoring(stray.all)).toEqual([
      expect.stringMatching(/^HighMedicalCostFlagged at position 2 .*: no settlement or reversal before it in its append gives it$/),
    ]);
  });
});
