// The posting rules, event by event: what each event debits and credits (design of issue 4,
// "Ledger"), with a real settlement of the demo policy computed by the domain.
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Discharge, Policy, SettledData, initialPersonState, settle, toSettledData, validatePolicy } from '#domain';
import { JournalLine, checkBalanced } from './journal.js';
import { PostingContext, entryYear, postingsFor, reversibleSettlementOf } from './postings.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const demo = validatePolicy(JSON.parse(readFileSync(join(ROOT, 'apps/medaid/assets/demo-policy.json'), 'utf8')));
if (!demo.ok) throw new Error(demo.error.message);
const policy: Policy = demo.value;

function settled(overrides: Partial<Discharge> = {}): SettledData {
  const d: Discharge = {
    hospitalId: 'h-county',
    visitId: 'v-1',
    personId: 'p-1',
    region: '360827',
    scheme: 'nrcms',
    visitType: 'inpatient' as const,
    hospitalLevel: 'county' as const,
    admissionDate: '2012-02-01',
    dischargeDate: '2012-02-20',
    diagnosisCodes: ['C34.9'],
    totalFen: 8_000_000,
    fullOwnPayFen: 500_000,
    overLimitFen: 0,
    preSelfPayFen: 300_000,
    externalPayments: {},
    ...overrides,
  };
  const dibao = { ...initialPersonState(), categories: { dibao: [{ from: '2012-01-01', to: null }] } }; // so that aid pays too
  const r = settle(d, policy, 'h-county/v-1/1', dibao);
  if (!r.ok) throw new Error(r.error.message);
  return toSettledData(r.value);
}

/** A context over a little in-memory journal: what the writer looks up in SQLite. */
function context(posted: Record<string, JournalLine[][]> = {}): PostingContext {
  return {
    layerFunds: (id, version) => (id === policy.policyId && version === policy.version ? policy.layers.map((l) => l.fund) : undefined),
    postedFor: (id) => posted[id] ?? [],
  };
}

const debit = (account: string, fen: number): JournalLine => ({ account, debitFen: fen, creditFen: 0 });
const credit = (account: string, fen: number): JournalLine => ({ account, debitFen: 0, creditFen: fen });

describe('postingsFor', () => {
  it('given a settlement, then each paying layer debits its fund for the region and year and credits the hospital, in layer order', () => {
    const data = settled();
    const pays = data.layers.map((l) => l[4]);
    expect(pays.filter((p) => p > 0).length).toBeGreaterThanOrEqual(3); // basic, critical, aid pay; aid2/aid3 do not

    const lines = postingsFor({ type: 'DischargeSettled', data }, context());

    const expected = policy.layers.flatMap((layer, i) =>
      pays[i]! > 0 ? [debit(`fund/${layer.fund}/360827/2012`, pays[i]!), credit('hospital/h-county/receivable', pays[i]!)] : [],
    );
    expect(lines).toEqual(expected);
    expect(checkBalanced({ lines })).toBeNull();
    expect(entryYear(lines)).toBe(2012);
    expect(reversibleSettlementOf({ type: 'DischargeSettled', data })).toBe('h-county/v-1/1');
  });

  it('given a settlement where no layer pays, then it posts nothing', () => {
    const data = settled({ totalFen: 5_000, fullOwnPayFen: 5_000, preSelfPayFen: 0 });
    expect(data.layers.every((l) => l[4] === 0)).toBe(true);
    expect(postingsFor({ type: 'DischargeSettled', data }, context())).toEqual([]);
  });

  it('given a settlement naming a policy version the ledger does not know, then posting it fails loudly', () => {
    const data = { ...settled(), policy: { policyId: 'demo-county', version: 99 } };
    expect(() => postingsFor({ type: 'DischargeSettled', data }, context())).toThrow(/not in the log/);
  });

  it('given a reversal, then it mirrors everything posted for the settlement: its entry and its adjustments', () => {
    const data = settled();
    const original = postingsFor({ type: 'DischargeSettled', data }, context());
    const adjustment = [debit('fund/610100/360827/2012', 1234), credit('hospital/h-county/receivable', 1234)];

    const lines = postingsFor(
      { type: 'SettlementReversed', data: { settlementId: data.settlementId } },
      context({ [data.settlementId]: [original, adjustment] }),
    );

    expect(lines).toEqual([...original, ...adjustment].map((l) => ({ account: l.account, debitFen: l.creditFen, creditFen: l.debitFen })));
    expect(reversibleSettlementOf({ type: 'SettlementReversed', data: { settlementId: data.settlementId } })).toBeNull();
  });

  it('given a reversal of a settlement that moved no money, then it posts nothing', () => {
    expect(postingsFor({ type: 'SettlementReversed', data: { settlementId: 'h/v/1' } }, context())).toEqual([]);
  });

  it('given applied adjustments, then +delta is a payout and −delta its mirror, on the layer fund of the settlement year', () => {
    const base = {
      adjustmentId: 'a-1',
      settlementId: 'h-1/v-1/1',
      hospitalId: 'h-1',
      visitId: 'v-1',
      layerId: 'aid',
      fund: '610100',
      region: '360827',
      year: 2013,
    };
    expect(postingsFor({ type: 'AdjustmentApplied', data: { ...base, deltaFen: 500 } }, context())).toEqual([
      debit('fund/610100/360827/2013', 500),
      credit('hospital/h-1/receivable', 500),
    ]);
    expect(postingsFor({ type: 'AdjustmentApplied', data: { ...base, deltaFen: -700 } }, context())).toEqual([
      credit('fund/610100/360827/2013', 700),
      debit('hospital/h-1/receivable', 700),
    ]);
    expect(reversibleSettlementOf({ type: 'AdjustmentApplied', data: base })).toBe('h-1/v-1/1');
  });

  it('given an enrolment subsidy, then the aid fund pays the insurance fund of the same region and year', () => {
    const data = {
      personId: 'p-1',
      year: 2013,
      region: '360827',
      category: 'tekun',
      amountFen: 18_000,
      fromFund: '610100',
      toFund: '390100',
      policy: { policyId: 'demo-county', version: 1 },
    };
    expect(postingsFor({ type: 'EnrolmentSubsidyGranted', data }, context())).toEqual([
      debit('fund/610100/360827/2013', 18_000),
      credit('fund/390100/360827/2013', 18_000),
    ]);
    expect(postingsFor({ type: 'EnrolmentSubsidyGranted', data: { ...data, amountFen: 0 } }, context())).toEqual([]);
  });

  it('given a fund allocation, then the fund is credited from its funding source', () => {
    const data = {
      fund: '610100',
      region: '360827',
      year: 2013,
      source: 'superior',
      amountFen: 50_000_000,
      reference: '赣财社〔2013〕1号',
    };
    const lines = postingsFor({ type: 'FundAllocated', data }, context());
    expect(lines).toEqual([debit('funding/superior/360827/2013', 50_000_000), credit('fund/610100/360827/2013', 50_000_000)]);
    expect(entryYear(lines)).toBe(2013);
  });

  it('given events that move no money, then they post nothing', () => {
    for (const type of ['CategoryAssigned', 'ApprovalGranted', 'DeathRecorded', 'PolicyPublished', 'AdjustmentRequested', 'SomethingNew']) {
      expect(postingsFor({ type, data: {} }, context())).toEqual([]);
    }
  });
});

describe('checkBalanced', () => {
  const entry = (lines: JournalLine[]) => ({ lines });

  it('given a balanced entry, then it passes', () => {
    expect(checkBalanced(entry([debit('a', 5), debit('b', 7), credit('c', 12)]))).toBeNull();
  });

  it('given an unbalanced entry, a line with both sides, a zero line or a fractional amount, then it says why', () => {
    expect(checkBalanced(entry([debit('a', 5), credit('c', 6)]))).toMatch(/debits 5 ≠ credits 6/);
    expect(checkBalanced(entry([{ account: 'a', debitFen: 5, creditFen: 5 }, credit('c', 0)]))).toMatch(/exactly one/);
    expect(checkBalanced(entry([debit('a', 0), credit('c', 0)]))).toMatch(/exactly one/);
    expect(checkBalanced(entry([debit('a', 1.5), credit('c', 1.5)]))).toMatch(/integer/);
    expect(checkBalanced(entry([debit('a', 5)]))).toMatch(/at least a debit and a credit/);
  });
});
