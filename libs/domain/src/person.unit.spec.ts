// The person aggregate (spec §4–§7): categories, approvals, death, thresholds and caps over a year.
import { describe, it, expect } from '@jest/globals';
import { Discharge } from './calculation.js';
import {
  PersonCommand,
  PersonContext,
  PersonState,
  SettlementRecord,
  decidePerson,
  evolvePerson,
  fromSettledData,
  initialPersonState,
  toSettledData,
} from './person.js';
import { Policy, Rule, validatePolicy } from './policy.js';
import { Result } from './primitives.js';
import { decideVisitReversal, decideVisitSettlement } from './visit.js';

const PERSON = 'P001';
const known: PersonContext = { isKnownCategory: (c) => ['tekun', 'dibao', 'edge', 'other'].includes(c) };

/** tekun 100 %, dibao 70 %, edge 50 % (needs approval) aid after 50 % basic insurance above a 100 元 deductible. */
const policy = (aidRules?: Rule[], categories?: Policy['categories']): Policy => ({
  policyId: 'p',
  version: 1,
  region: 'r1',
  effectiveFrom: '2012-01-01',
  categories: categories ?? [
    { code: 'tekun', name: '特困' },
    { code: 'dibao', name: '低保' },
    { code: 'edge', name: '低保边缘', requiresApproval: true },
  ],
  layers: [
    {
      id: 'basic',
      kind: 'insurance',
      fund: '390100',
      rules: [{ id: 'basic-all', threshold: { fen: 10000, per: 'settlement' }, bands: [{ uptoFen: null, ratioBp: 5000 }] }],
    },
    {
      id: 'aid',
      kind: 'aid',
      fund: '610100',
      rules: aidRules ?? [
        { id: 'aid-tekun', match: { categories: ['tekun'] }, bands: [{ uptoFen: null, ratioBp: 10000 }] },
        { id: 'aid-dibao', match: { categories: ['dibao'] }, bands: [{ uptoFen: null, ratioBp: 7000 }] },
        { id: 'aid-edge', match: { categories: ['edge'] }, bands: [{ uptoFen: null, ratioBp: 5000 }] },
      ],
    },
    {
      id: 'aid2',
      kind: 'aid',
      fund: '610102',
      rules: [{ id: 'aid2-any', match: { categories: ['tekun', 'dibao', 'edge'] }, bands: [{ uptoFen: null, ratioBp: 1000 }] }],
    },
  ],
});

/** A single aid layer paying 100 % with the given rule details, to test thresholds and caps in isolation. */
const aidOnly = (rule: Partial<Rule>): Policy => ({
  policyId: 'aid-only',
  version: 1,
  region: 'r1',
  effectiveFrom: '2012-01-01',
  categories: [],
  layers: [{ id: 'aid', kind: 'aid', fund: '610100', rules: [{ id: 'aid-r', bands: [{ uptoFen: null, ratioBp: 10000 }], ...rule }] }],
});

let visitNo = 0;
const discharge = (d: Partial<Discharge> = {}): Discharge => ({
  hospitalId: 'H1',
  visitId: `V${++visitNo}`,
  personId: PERSON,
  region: 'r1',
  scheme: 'nrcms',
  visitType: 'inpatient',
  hospitalLevel: 'county',
  admissionDate: d.dischargeDate ?? '2012-06-15',
  dischargeDate: '2012-06-15',
  diagnosisCodes: ['C50.9'],
  totalFen: 110000,
  fullOwnPayFen: 0,
  overLimitFen: 0,
  preSelfPayFen: 0,
  externalPayments: {},
  ...d,
});

/** Applies commands in order (each must succeed) and returns the resulting state. */
const given = (...steps: Array<Record<string, unknown>>): PersonState =>
  steps.reduce<PersonState>((state, step) => {
    const decided = decidePerson({ personId: PERSON, ...step } as PersonCommand, state, known);
    if (!decided.ok) throw new Error(`${decided.error.code}: ${decided.error.message}`);
    return decided.value.reduce(evolvePerson, state);
  }, initialPersonState());
const assign = (category: string, validFrom: string, validTo?: string) => ({
  type: 'AssignCategory',
  category,
  validFrom,
  ...(validTo ? { validTo } : {}),
});
const revoke = (category: string, from: string) => ({ type: 'RevokeCategory', category, from });
const approve = (validFrom: string, validTo: string) => ({ type: 'GrantApproval', approvalNo: `A-${validFrom}`, validFrom, validTo });

let settlementNo = 0;
const settleOn = (state: PersonState, d: Discharge, p: Policy = policy()): Result<SettlementRecord> => {
  const decided = decidePerson({ type: 'SettleDischarge', discharge: d, settlementId: `S${++settlementNo}`, policy: p }, state, known);
  if (!decided.ok) return decided;
  const event = decided.value[0]!;
  if (event.type !== 'DischargeSettled') throw new Error(`unexpected ${event.type}`);
  return { ok: true, value: fromSettledData(event.data, p) };
};
const settled = (state: PersonState, d: Partial<Discharge> = {}, p: Policy = policy()): SettlementRecord => {
  const r = settleOn(state, discharge(d), p);
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.value;
};
/** Settles a series of discharges, each seeing the state left by the previous ones. */
const series = (p: Policy, ...ds: Array<Partial<Discharge>>): SettlementRecord[] => {
  let state = initialPersonState();
  return ds.map((d) => {
    const record = settled(state, d, p);
    state = evolvePerson(state, { type: 'DischargeSettled', data: toSettledData(record) });
    return record;
  });
};
const errorOf = (r: Result<unknown>) => (r.ok ? 'ok' : r.error.code);
const pays = (r: SettlementRecord) => Object.fromEntries(r.layers.map((l) => [l.layerId, l.payFen]));

describe('effective category', () => {
  it('given a person holding tekun and dibao, when settled, then aid is paid under tekun (the first in the policy list) only', () => {
    const r = settled(given(assign('dibao', '2012-01-01'), assign('tekun', '2012-01-01')));
    expect(r.category).toBe('tekun');
    // in-scope 110000: basic 50 % above 10000 = 50000; aid 100 % of 60000; aid2 has nothing left
    expect(pays(r)).toEqual({ basic: 50000, aid: 60000, aid2: 0 });
  });

  it('given the same identities but a policy listing dibao first, when settled, then dibao applies', () => {
    const p = policy(undefined, [
      { code: 'dibao', name: '低保' },
      { code: 'tekun', name: '特困' },
    ]);
    const r = settled(given(assign('tekun', '2012-01-01'), assign('dibao', '2012-01-01')), {}, p);
    expect(r.category).toBe('dibao');
    expect(pays(r)).toEqual({ basic: 50000, aid: 42000, aid2: 1800 });
  });

  it('given an interval, when discharged on its first day, its last day and the days outside, then only the inclusive interval counts', () => {
    const state = given(assign('dibao', '2012-03-01', '2012-03-31'));
    expect(settled(state, { dischargeDate: '2012-03-01' }).category).toBe('dibao');
    expect(settled(state, { dischargeDate: '2012-03-31' }).category).toBe('dibao');
    expect(settled(state, { dischargeDate: '2012-02-29' }).category).toBe('none');
    const after = settled(state, { dischargeDate: '2012-04-01' });
    expect([after.category, pays(after)]).toEqual(['none', { basic: 50000, aid: 0, aid2: 0 }]);
  });

  it('given a category code the applied policy does not define, when settled, then it is ignored', () => {
    expect(settled(given(assign('other', '2012-01-01'))).category).toBe('none');
    expect(settled(given(assign('other', '2012-01-01'), assign('edge', '2012-01-01'), approve('2012-01-01', '2012-12-31'))).category).toBe(
      'edge',
    );
  });

  it('given a category not defined by any published policy, when assigned or revoked, then it is UNKNOWN_CATEGORY', () => {
    expect(
      errorOf(
        decidePerson({ type: 'AssignCategory', personId: PERSON, category: 'ghost', validFrom: '2012-01-01' }, initialPersonState(), known),
      ),
    ).toBe('UNKNOWN_CATEGORY');
    expect(
      errorOf(
        decidePerson({ type: 'RevokeCategory', personId: PERSON, category: 'ghost', from: '2012-01-01' }, initialPersonState(), known),
      ),
    ).toBe('UNKNOWN_CATEGORY');
  });
});

describe('RevokeCategory ends intervals the day before `from`', () => {
  it.each([
    ['a month boundary', '2012-05-01', '2012-04-30'],
    ['a year boundary', '2013-01-01', '2012-12-31'],
    ['the leap day (2012)', '2012-03-01', '2012-02-29'],
    ['February of a common year (2013)', '2013-03-01', '2013-02-28'],
  ])(
    'given an open dibao interval revoked across %s, when discharged on the last and the first day, then only the last day is aided',
    (_what, from, lastDay) => {
      const state = given(assign('dibao', '2011-01-01'), revoke('dibao', from));
      expect(state.categories['dibao']).toEqual([{ from: '2011-01-01', to: lastDay }]);
      expect(settled(state, { dischargeDate: lastDay }).category).toBe('dibao');
      expect(settled(state, { dischargeDate: from }).category).toBe('none');
    },
  );

  it('given intervals starting on or after `from`, when revoked, then they disappear while earlier ones are cut or kept', () => {
    const state = given(
      assign('dibao', '2012-01-01', '2012-01-31'),
      assign('dibao', '2012-03-01', '2012-12-31'),
      assign('dibao', '2012-06-01', '2012-06-30'),
      assign('dibao', '2012-07-15'),
      revoke('dibao', '2012-06-01'),
    );
    expect(state.categories['dibao']).toEqual([
      { from: '2012-01-01', to: '2012-01-31' },
      { from: '2012-03-01', to: '2012-05-31' },
    ]);
    expect(settled(state, { dischargeDate: '2012-06-15' }).category).toBe('none');
    expect(settled(state, { dischargeDate: '2012-08-01' }).category).toBe('none');
  });

  it('given a revocation of one category, when settled, then other categories are untouched', () => {
    const state = given(assign('tekun', '2012-01-01'), assign('dibao', '2012-01-01'), revoke('tekun', '2012-01-01'));
    expect(settled(state).category).toBe('dibao');
  });
});

describe('approvals (同步结算申请审批表)', () => {
  const edge = given(assign('edge', '2012-01-01'));

  it('given a category that requires approval and no approval, when settled, then every aid layer is skipped but insurance pays', () => {
    const r = settled(edge);
    expect(r.aidBlockedReason).toBe('APPROVAL_REQUIRED');
    expect(r.category).toBe('edge');
    expect(r.layers.map((l) => [l.layerId, l.ruleId, l.payFen])).toEqual([
      ['basic', 'basic-all', 50000],
      ['aid', null, 0],
      ['aid2', null, 0],
    ]);
    expect(r.totals.aidPayFen).toBe(0);
  });

  it('given an approval covering the discharge date, when settled, then aid is paid', () => {
    const r = settled(given(assign('edge', '2012-01-01'), approve('2012-06-15', '2012-06-15')));
    expect(r.aidBlockedReason).toBeNull();
    expect(pays(r)).toEqual({ basic: 50000, aid: 30000, aid2: 3000 });
  });

  it('given an approval covering the admission date but not the discharge date, when settled, then aid is blocked', () => {
    const state = given(assign('edge', '2012-01-01'), approve('2012-06-01', '2012-06-14'));
    expect(settled(state, { admissionDate: '2012-06-10', dischargeDate: '2012-06-15' }).aidBlockedReason).toBe('APPROVAL_REQUIRED');
  });

  it('given a category that does not require approval, when settled without one, then aid is paid', () => {
    expect(settled(given(assign('dibao', '2012-01-01'))).aidBlockedReason).toBeNull();
  });
});

describe('death records (死亡比对)', () => {
  const dead = given(assign('tekun', '2012-01-01'), { type: 'RecordDeath', date: '2012-05-10' });

  it('given a recorded death, when admitted the day after, then it is PERSON_DECEASED', () => {
    expect(errorOf(settleOn(dead, discharge({ admissionDate: '2012-05-11', dischargeDate: '2012-05-20' })))).toBe('PERSON_DECEASED');
  });

  it('given a recorded death, when admitted on the death date (and discharged later), then it is settled', () => {
    expect(errorOf(settleOn(dead, discharge({ admissionDate: '2012-05-10', dischargeDate: '2012-05-12' })))).toBe('ok');
  });

  it('given a dead person, when an externalPayments key is not a layer, then VALIDATION_FAILED comes before PERSON_DECEASED', () => {
    const d = discharge({ admissionDate: '2012-05-11', externalPayments: { nope: 1 } });
    expect(errorOf(settleOn(dead, d))).toBe('VALIDATION_FAILED');
  });

  it('given a dead person, when an external amount is too large, then PERSON_DECEASED comes first', () => {
    const d = discharge({ admissionDate: '2012-05-11', externalPayments: { basic: 999999999 } });
    expect(errorOf(settleOn(dead, d))).toBe('PERSON_DECEASED');
  });
});

describe('reversal', () => {
  it('given a reversed settlement, when reversed again, then it is ALREADY_REVERSED', () => {
    const record = settled(initialPersonState());
    const reverse = {
      type: 'ReverseSettlement' as const,
      personId: PERSON,
      settlementId: record.settlementId,
      hospitalId: 'H1',
      visitId: record.discharge.visitId,
      reason: 'x',
    };
    let state = evolvePerson(initialPersonState(), { type: 'DischargeSettled', data: toSettledData(record) });
    const first = decidePerson(reverse, state, known);
    expect(errorOf(first)).toBe('ok');
    if (first.ok) state = first.value.reduce(evolvePerson, state);
    expect(errorOf(decidePerson(reverse, state, known))).toBe('ALREADY_REVERSED');
  });

  it('given a visit history, when reversing or settling again, then the visit decisions follow spec §7', () => {
    const attempt = { settlementId: 'H1/V1/1', personId: PERSON, revision: 1, fingerprint: 'f', status: 'settled' as const };
    expect(errorOf(decideVisitReversal(undefined, 'H1', 'V1'))).toBe('SETTLEMENT_NOT_FOUND');
    expect(errorOf(decideVisitReversal([{ ...attempt, status: 'reversed' }], 'H1', 'V1'))).toBe('ALREADY_REVERSED');
    expect(decideVisitSettlement([attempt], 'f')).toEqual({ ok: true, value: { kind: 'duplicate', active: attempt } });
    expect(errorOf(decideVisitSettlement([attempt], 'g'))).toBe('VISIT_CONFLICT');
    expect(decideVisitSettlement([{ ...attempt, status: 'reversed' }], 'g')).toEqual({ ok: true, value: { kind: 'new', attempt: 2 } });
  });
});

describe('per-year thresholds and annual caps', () => {
  it('given a per-year threshold, when settlements of one year accumulate, then the threshold is crossed once and restarts next year', () => {
    const p = aidOnly({ threshold: { fen: 100000, per: 'year' } });
    const [first, second, third, nextYear] = series(
      p,
      { totalFen: 60000, dischargeDate: '2012-03-01' },
      { totalFen: 60000, dischargeDate: '2012-07-01' },
      { totalFen: 30000, dischargeDate: '2012-12-31' },
      { totalFen: 60000, dischargeDate: '2013-01-01' },
    );
    expect([first!.layers[0]!.belowThresholdFen, first!.layers[0]!.payFen]).toEqual([60000, 0]);
    expect([second!.layers[0]!.belowThresholdFen, second!.layers[0]!.payFen]).toEqual([40000, 20000]);
    expect([third!.layers[0]!.belowThresholdFen, third!.layers[0]!.payFen]).toEqual([0, 30000]);
    expect([nextYear!.year, nextYear!.layers[0]!.belowThresholdFen, nextYear!.layers[0]!.payFen]).toEqual([2013, 60000, 0]);
  });

  it('given a per-settlement threshold, when settled twice in a year, then each settlement pays its own deductible', () => {
    const [first, second] = series(policy(), {}, {});
    expect([first!.totals.deductibleFen, second!.totals.deductibleFen]).toEqual([10000, 10000]);
  });

  it('given an annual cap, when the year uses it up, then pays are cut and cappedBy names the counter; a new year starts afresh', () => {
    const p = aidOnly({ annualCaps: [{ counter: 'aid-total', capFen: 50000 }] });
    const results = series(
      p,
      { totalFen: 30000 },
      { totalFen: 30000 },
      { totalFen: 30000 },
      { totalFen: 30000, dischargeDate: '2013-02-01' },
    );
    expect(results.map((r) => [r.layers[0]!.rawFen, r.layers[0]!.payFen, r.layers[0]!.cappedBy])).toEqual([
      [30000, 30000, null],
      [30000, 20000, 'aid-total'],
      [30000, 0, 'aid-total'],
      [30000, 30000, null],
    ]);
  });

  it('given a per-settlement cap, when the raw pay is above it, then cappedBy is "settlement" (listed before annual caps)', () => {
    const p = aidOnly({ perSettlementCapFen: 10000, annualCaps: [{ counter: 'aid-total', capFen: 15000 }] });
    const results = series(p, { totalFen: 30000 }, { totalFen: 30000 }, { totalFen: 3000 });
    expect(results.map((r) => [r.layers[0]!.payFen, r.layers[0]!.cappedBy])).toEqual([
      [10000, 'settlement'],
      [5000, 'aid-total'],
      [0, 'aid-total'],
    ]);
  });

  it('given two caps equally binding, when capped, then cappedBy is the first one in the list', () => {
    const p = aidOnly({
      annualCaps: [
        { counter: 'a', capFen: 7000 },
        { counter: 'b', capFen: 7000 },
      ],
    });
    expect(series(p, { totalFen: 30000 })[0]!.layers[0]!.cappedBy).toBe('a');
  });
});

describe('externalPayments (layers adjudicated elsewhere)', () => {
  it('given a key that is not a layer of the applied policy, when settled, then it is VALIDATION_FAILED', () => {
    const r = settleOn(initialPersonState(), discharge({ externalPayments: { critical: 100 } }));
    expect(r.ok ? 'ok' : [r.error.code, r.error.details.map((d) => d.field)]).toEqual(['VALIDATION_FAILED', ['externalPayments.critical']]);
  });

  it('given an amount above what remains when the layer is reached, when settled, then it is VALIDATION_FAILED', () => {
    // basic pays 50000 of 110000, so 60000 remain for the aid layer
    expect(errorOf(settleOn(initialPersonState(), discharge({ externalPayments: { aid: 60001 } })))).toBe('VALIDATION_FAILED');
    expect(errorOf(settleOn(initialPersonState(), discharge({ externalPayments: { aid: 60000 } })))).toBe('ok');
  });

  it('given a valid external payment, when settled, then the layer is recorded as external and later layers see what it left', () => {
    const r = settled(given(assign('tekun', '2012-01-01')), { externalPayments: { basic: 45000 } });
    expect(r.layers[0]).toEqual({
      layerId: 'basic',
      kind: 'insurance',
      fund: '390100',
      ruleId: null,
      external: true,
      baseFen: 110000,
      belowThresholdFen: 0,
      rawFen: 45000,
      payFen: 45000,
      cappedBy: null,
    });
    expect(pays(r)).toEqual({ basic: 45000, aid: 65000, aid2: 0 });
    expect(r.totals.deductibleFen).toBe(0);
  });

  it('given an external payment on a per-year threshold layer, when settled again that year, then its base counted toward the threshold', () => {
    const p = aidOnly({ threshold: { fen: 100000, per: 'year' } });
    const [, second] = series(p, { totalFen: 60000, externalPayments: { aid: 1000 } }, { totalFen: 60000 });
    expect([second!.layers[0]!.belowThresholdFen, second!.layers[0]!.payFen]).toEqual([40000, 20000]);
  });
});

// Regression: a well-formed id that names an Object.prototype member (`constructor`, `toString`,
// `__proto__` …) once read an inherited function instead of "absent" and the settlement threw.
// Spec §2 allows these ids and §3 accepts such a policy, so settling under it must work like any other.
describe('ids that are also names of Object.prototype members (spec §2 allows them)', () => {
  const renamed = (name: string, role: 'layer' | 'counter' | 'category'): Policy => ({
    policyId: 'odd',
    version: 1,
    region: 'r1',
    effectiveFrom: '2012-01-01',
    categories: [{ code: role === 'category' ? name : 'dibao', name: '低保' }],
    layers: [
      {
        id: role === 'layer' ? name : 'basic',
        kind: 'insurance',
        fund: '390100',
        rules: [
          {
            id: 'basic-all',
            threshold: { fen: 10000, per: 'year' },
            bands: [{ uptoFen: null, ratioBp: 5000 }],
            annualCaps: [{ counter: role === 'counter' ? name : 'basic', capFen: 80000 }],
          },
        ],
      },
    ],
  });

  it.each(
    ['plain-id', 'constructor', 'toString', '__proto__'].flatMap((name) =>
      (['layer', 'counter', 'category'] as const).map((role) => [name, role] as const),
    ),
  )(
    'given a valid policy using %s as its %s id, when a person is settled twice in a year, then the usual amounts are paid',
    (name, role) => {
      // 110000 in scope: the first settlement pays 50 % above the 10000 per-year threshold, the second
      // 50 % of all of it, until the 80000 annual cap stops it at 30000.
      const p = renamed(name, role);
      expect(validatePolicy(p).ok).toBe(true);
      let results: Array<number | string>;
      try {
        results = series(p, {}, {}).map((r) => r.layers[0]!.payFen);
      } catch (e) {
        results = [`throws: ${(e as Error).message}`];
      }
      expect(results).toEqual([50000, 30000]);
    },
  );
});

describe('fixed-sum rules (全费用定额救助, README "Fixed-sum rules")', () => {
  /** Basic insurance 50 % above 100 元, then a fixed 500 元 once a year when over 300 元 of in-scope self-pay is left. */
  const fixedPolicy = (fixedSum: { amountFen: number; aboveFen: number }, extra: Partial<Rule> = {}): Policy => ({
    ...policy(),
    layers: [policy().layers[0]!, { id: 'fixed', kind: 'aid', fund: '610103', rules: [{ id: 'fixed-all', fixedSum, ...extra }] }],
  });
  const p = fixedPolicy({ amountFen: 50000, aboveFen: 30000 });

  it('given a base above the line, then the fixed amount is paid; at or under it, nothing', () => {
    // in-scope 110000: basic 50 % of 100000 = 50000, left 60000 > 30000 → 50000
    const [over] = series(p, { totalFen: 110000 });
    expect(pays(over!)).toEqual({ basic: 50000, fixed: 50000 });
    expect(over!.layers[1]).toMatchObject({ ruleId: 'fixed-all', rawFen: 50000, belowThresholdFen: 30000, cappedBy: null });
    // in-scope 70000: basic 30000, left 40000 > 30000 → the fixed 50000 is more than the base: 40000
    const [capped] = series(p, { totalFen: 70000 });
    expect(pays(capped!)).toEqual({ basic: 30000, fixed: 40000 });
    // in-scope 70000 with a line of 40000: left 40000 is not above it → nothing
    const [under] = series(fixedPolicy({ amountFen: 50000, aboveFen: 40000 }), { totalFen: 70000 });
    expect(pays(under!)).toEqual({ basic: 30000, fixed: 0 });
  });

  it('given two qualifying settlements in a year, then only the first is paid; next year again; a reversal gives the year back', () => {
    const [first, second, nextYear] = series(
      p,
      { totalFen: 110000, dischargeDate: '2012-03-01' },
      { totalFen: 210000, dischargeDate: '2012-05-01' },
      { totalFen: 110000, dischargeDate: '2013-02-01' },
    );
    expect([pays(first!).fixed, pays(second!).fixed, pays(nextYear!).fixed]).toEqual([50000, 0, 50000]);
    expect(first!.contributions.used).toEqual({ 'fixed:fixed-all': 50000 });
    // reversed, the first gives its fixed sum back to the year: a later settlement is paid it
    let state = evolvePerson(initialPersonState(), { type: 'DischargeSettled', data: toSettledData(first!) });
    state = evolvePerson(state, {
      type: 'SettlementReversed',
      data: { personId: PERSON, settlementId: first!.settlementId, hospitalId: 'H1', visitId: first!.discharge.visitId, reason: 'x' },
    });
    expect(pays(settled(state, { totalFen: 210000, dischargeDate: '2012-05-01' }, p)).fixed).toBe(50000);
  });

  it('given an annual cap, then it limits the fixed sum like any pay', () => {
    const [capped] = series(fixedPolicy({ amountFen: 50000, aboveFen: 30000 }, { annualCaps: [{ counter: 'aid', capFen: 20000 }] }), {
      totalFen: 110000,
    });
    expect([pays(capped!).fixed, capped!.layers[1]!.cappedBy]).toEqual([20000, 'aid']);
  });

  it('validates: a positive amount, a line, and no bands or threshold next to it; fixed:… counters are reserved', () => {
    const raw = (rule: Record<string, unknown>) =>
      validatePolicy({ ...p, layers: [{ id: 'fixed', kind: 'aid', fund: '610103', rules: [{ id: 'f', ...rule }] }] });
    const problems = (rule: Record<string, unknown>) => {
      const r = raw(rule);
      return r.ok ? [] : r.error.details.map((d) => d.field);
    };
    expect(problems({ fixedSum: { amountFen: 50000, aboveFen: 30000 } })).toEqual([]);
    expect(problems({ fixedSum: { amountFen: 0, aboveFen: 30000 } })).toEqual(['layers[0].rules[0].fixedSum.amountFen']);
    expect(problems({ fixedSum: { amountFen: 1, aboveFen: -1 } })).toEqual(['layers[0].rules[0].fixedSum.aboveFen']);
    expect(problems({ fixedSum: { amountFen: 1, aboveFen: 0 }, bands: [{ uptoFen: null, ratioBp: 1 }] })).toEqual([
      'layers[0].rules[0].bands',
    ]);
    expect(problems({ fixedSum: { amountFen: 1, aboveFen: 0 }, threshold: { fen: 1, per: 'year' } })).toEqual([
      'layers[0].rules[0].threshold',
    ]);
    expect(problems({ fixedSum: { amountFen: 1, aboveFen: 0, extra: 1 } })).toEqual(['layers[0].rules[0].fixedSum.extra']);
    expect(problems({})).toEqual(['layers[0].rules[0].bands']);
    expect(problems({ bands: [{ uptoFen: null, ratioBp: 1 }], annualCaps: [{ counter: 'fixed:x', capFen: 1 }] })).toEqual([
      'layers[0].rules[0].annualCaps[0].counter',
    ]);
  });
});

describe('monitoring thresholds (防止因病返贫致贫动态监测, README "Monitoring thresholds")', () => {
  // without a category, a 110000 discharge leaves 60000 of self-pay (basic pays 50 % above 10000), a 50000 one 30000
  const monitored = (thresholds: unknown[]): Policy => ({ ...policy(), monitoring: { thresholds } as Policy['monitoring'] });
  const decide = (state: PersonState, p: Policy, d: Partial<Discharge>) => {
    const decided = decidePerson(
      { type: 'SettleDischarge', discharge: discharge(d), settlementId: `M${++settlementNo}`, policy: p },
      state,
      known,
    );
    if (!decided.ok) throw new Error(decided.error.message);
    return { events: decided.value, state: decided.value.reduce(evolvePerson, state) };
  };
  const types = (events: Array<{ type: string }>) => events.map((e) => e.type);

  it('given a year threshold, then the settlement that takes the year over it is flagged, once; a new year counts again', () => {
    const p = monitored([{ id: 'year-5000', per: 'year', aboveFen: 80000 }]);
    const first = decide(initialPersonState(), p, { totalFen: 110000, dischargeDate: '2012-03-01' }); // self-pay 60000 (no category)
    expect(types(first.events)).toEqual(['DischargeSettled']);
    const second = decide(first.state, p, { totalFen: 50000, dischargeDate: '2012-04-01' }); // + 30000 → 90000 > 80000
    expect(types(second.events)).toEqual(['DischargeSettled', 'HighMedicalCostFlagged']);
    expect(second.events[1]!.data).toMatchObject({ year: 2012, thresholdId: 'year-5000', per: 'year', aboveFen: 80000, amountFen: 90000 });
    const third = decide(second.state, p, { totalFen: 500000, dischargeDate: '2012-05-01' });
    expect(types(third.events)).toEqual(['DischargeSettled']); // once per person, year and threshold
    const nextYear = decide(third.state, p, { totalFen: 500000, dischargeDate: '2013-05-01' });
    expect(types(nextYear.events)).toEqual(['DischargeSettled', 'HighMedicalCostFlagged']);
    expect(Object.keys(nextYear.state.alerts ?? {}).sort()).toEqual(['2012/year-5000', '2013/year-5000']);
  });

  it('given a per-settlement threshold limited to a category, then only a single settlement above it of that category is flagged', () => {
    const p = monitored([{ id: 'admission-6000', per: 'settlement', aboveFen: 600000, categories: ['dibao'] }]);
    const none = decide(initialPersonState(), p, { totalFen: 5_000_000 });
    expect(types(none.events)).toEqual(['DischargeSettled']); // no category: not monitored by this threshold
    const dibao = given(assign('dibao', '2012-01-01'));
    const small = decide(dibao, p, { totalFen: 110000 });
    expect(types(small.events)).toEqual(['DischargeSettled']);
    const big = decide(small.state, p, { totalFen: 5_000_000, fullOwnPayFen: 1_000_000 });
    expect(types(big.events)).toEqual(['DischargeSettled', 'HighMedicalCostFlagged']);
    expect((big.events[1]!.data as { amountFen: number }).amountFen).toBeGreaterThan(600000);
  });

  it('given a reversal that takes the person back under, then the flag is cleared (and may come again); one that does not, keeps it', () => {
    const p = monitored([{ id: 'year', per: 'year', aboveFen: 80000 }]);
    const a = decide(initialPersonState(), p, { totalFen: 110000, dischargeDate: '2012-03-01' }); // 60000
    const b = decide(a.state, p, { totalFen: 50000, dischargeDate: '2012-04-01' }); // 90000: flagged
    const c = decide(b.state, p, { totalFen: 50000, dischargeDate: '2012-05-01' }); // 120000
    const reverse = (state: PersonState, settled: { events: Array<{ data: unknown }> }) => {
      const s = settled.events[0]!.data as { settlementId: string; discharge: Discharge };
      const r = decidePerson(
        {
          type: 'ReverseSettlement',
          personId: PERSON,
          settlementId: s.settlementId,
          hospitalId: 'H1',
          visitId: s.discharge.visitId,
          reason: 'x',
        },
        state,
        known,
      );
      if (!r.ok) throw new Error(r.error.message);
      return { events: r.value, state: r.value.reduce(evolvePerson, state) };
    };
    const keep = reverse(c.state, b); // 120000 − 30000 = 90000: still above
    expect(types(keep.events)).toEqual(['SettlementReversed']);
    const clear = reverse(keep.state, c); // 90000 − 30000 = 60000: back under
    expect(types(clear.events)).toEqual(['SettlementReversed', 'HighMedicalCostCleared']);
    expect(clear.events[1]!.data).toMatchObject({ year: 2012, thresholdId: 'year', amountFen: 60000 });
    expect(clear.state.alerts).toEqual({});
    const again = decide(clear.state, p, { totalFen: 90000, dischargeDate: '2012-06-01' }); // 60000 + 40000
    expect(types(again.events)).toEqual(['DischargeSettled', 'HighMedicalCostFlagged']);
  });

  it('validates thresholds: ids unique, per settlement or year, fen, known categories; a policy without them records no self-pay counter', () => {
    const problems = (monitoring: unknown) => {
      const r = validatePolicy({ ...policy(), monitoring });
      return r.ok ? [] : r.error.details.map((d) => d.field);
    };
    expect(problems({ thresholds: [{ id: 'a', per: 'year', aboveFen: 1, categories: ['dibao', 'none'] }] })).toEqual([]);
    expect(
      problems({
        thresholds: [
          { id: 'a', per: 'month', aboveFen: -1 },
          { id: 'a', per: 'year', aboveFen: 1, categories: ['nobody'] },
        ],
      }),
    ).toEqual([
      'monitoring.thresholds[0].per',
      'monitoring.thresholds[0].aboveFen',
      'monitoring.thresholds[1].id',
      'monitoring.thresholds[1].categories[0]',
    ]);
    expect(problems({ thresholds: [] })).toEqual(['monitoring.thresholds']);
    const [plain] = series(policy(), { totalFen: 110000 });
    expect(Object.keys(plain!.contributions.used)).not.toContain('monitor:selfPay');
  });
});
