// Funds (extension of the spec, README "Funds"): allocations, balance, usage rate, and a fund that
// may not be overdrawn limiting the layers it pays (cappedBy "fund:<code>").
import { describe, it, expect } from '@jest/globals';
import fc from 'fast-check';
import { Discharge, computeSettlement } from './calculation.js';
import {
  FundAccount,
  applyAllocation,
  byFundRegionYear,
  decideAllocation,
  emptyFundAccount,
  fundBalanceFen,
  fundKey,
  fundRoomFor,
  usageRateBp,
} from './funds.js';
import { Policy, validatePolicy } from './policy.js';
import { planSubsidies } from './subsidy.js';

/** 50 % insurance, then two aid layers from the same aid fund (70 % and 10 %), then a top-up from another fund. */
const policy = (funds?: Policy['funds']): Policy => ({
  policyId: 'f',
  version: 1,
  region: 'r1',
  effectiveFrom: '2012-01-01',
  categories: [{ code: 'dibao', name: '低保' }],
  layers: [
    { id: 'basic', kind: 'insurance', fund: '390100', rules: [{ id: 'b', bands: [{ uptoFen: null, ratioBp: 5000 }] }] },
    {
      id: 'aid',
      kind: 'aid',
      fund: '610100',
      rules: [{ id: 'a', match: { categories: ['dibao'] }, bands: [{ uptoFen: null, ratioBp: 7000 }] }],
    },
    {
      id: 'aid2',
      kind: 'aid',
      fund: '610100',
      rules: [{ id: 'a2', match: { categories: ['dibao'] }, bands: [{ uptoFen: null, ratioBp: 1000 }] }],
    },
    {
      id: 'aid3',
      kind: 'aid',
      fund: '640100',
      rules: [{ id: 'a3', match: { categories: ['dibao'] }, bands: [{ uptoFen: null, ratioBp: 5000 }] }],
    },
  ],
  ...(funds === undefined ? {} : { funds }),
});

const discharge = (totalFen: number): Discharge => ({
  hospitalId: 'H',
  visitId: 'V',
  personId: 'P',
  region: 'r1',
  scheme: 'nrcms',
  visitType: 'inpatient',
  hospitalLevel: 'county',
  admissionDate: '2012-03-01',
  dischargeDate: '2012-03-05',
  diagnosisCodes: [],
  totalFen,
  fullOwnPayFen: 0,
  overLimitFen: 0,
  preSelfPayFen: 0,
  externalPayments: {},
});
const dibao = { category: 'dibao', aidBlocked: false };
const noYear = { yearBase: {}, used: {} };

describe('a fund that may not be overdrawn', () => {
  it('given 300 元 left in the aid fund, when a settlement would take 2,000 元 from it over two layers, then they pay 300 元 in all and say why', () => {
    // Given 1,000,000 fen in scope: basic pays 500,000; aid would pay 350,000 and aid2 15,000 from fund 610100
    const p = policy([{ code: '610100', mayOverdraw: false }]);
    const r = computeSettlement(p, discharge(1_000_000), dibao, noYear, { '610100': 30_000 });
    if (!r.ok) throw new Error(r.error.message);
    const byLayer = Object.fromEntries(r.value.layers.map((l) => [l.layerId, [l.rawFen, l.payFen, l.cappedBy]]));
    // then the aid layer takes all 300 元, aid2 gets nothing, both capped by the fund; aid3 (another fund) is not limited
    expect(byLayer.aid).toEqual([350_000, 30_000, 'fund:610100']);
    expect(byLayer.aid2).toEqual([47_000, 0, 'fund:610100']);
    expect(byLayer.aid3![2]).toBeNull();
    expect(r.value.totals.fundPayFen + r.value.totals.patientPayFen).toBe(1_000_000);
  });

  it('given a fund with room to spare, when settled, then the result is the same as without the limit', () => {
    const p = policy([{ code: '610100', mayOverdraw: false }]);
    const limited = computeSettlement(p, discharge(1_000_000), dibao, noYear, { '610100': 10_000_000 });
    const free = computeSettlement(policy(), discharge(1_000_000), dibao, noYear);
    expect(limited).toEqual(free);
  });

  it('given any room and any bill, when settled, then the limited fund never pays more than its room and the totals identity holds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2_000_000 }), fc.integer({ min: 0, max: 50_000_000 }), (room, total) => {
        const p = policy([{ code: '610100', mayOverdraw: false }]);
        const r = computeSettlement(p, discharge(total), dibao, noYear, { '610100': room });
        if (!r.ok) return false;
        const fromFund = r.value.layers.filter((l) => l.fund === '610100').reduce((s, l) => s + l.payFen, 0);
        expect(fromFund).toBeLessThanOrEqual(room);
        expect(r.value.totals.fundPayFen + r.value.totals.patientPayFen).toBe(total);
        return true;
      }),
      { numRuns: 300 },
    );
  });

  it('given 1,000 元 left and 300 元 of aid paid elsewhere from that fund, when aid2 is reached, then it pays at most the 700 元 still left', () => {
    // Given the aid layer adjudicated elsewhere (externalPayments) at 30,000 fen of fund 610100
    const p = policy([{ code: '610100', mayOverdraw: false }]);
    const r = computeSettlement(p, { ...discharge(1_000_000), externalPayments: { aid: 30_000 } }, dibao, noYear, { '610100': 100_000 });
    if (!r.ok) throw new Error(r.error.message);
    const byLayer = Object.fromEntries(r.value.layers.map((l) => [l.layerId, [l.payFen, l.cappedBy]]));
    // then aid2 (raw 10 % of 470,000 = 47,000) fits in the 70,000 left; with 80,000 paid elsewhere only 20,000 is left for it
    expect(byLayer.aid).toEqual([30_000, null]);
    expect(byLayer.aid2).toEqual([47_000, null]);
    const tight = computeSettlement(p, { ...discharge(1_000_000), externalPayments: { aid: 80_000 } }, dibao, noYear, {
      '610100': 100_000,
    });
    if (!tight.ok) throw new Error(tight.error.message);
    expect(tight.value.layers.find((l) => l.layerId === 'aid2')).toMatchObject({ rawFen: 42_000, payFen: 20_000, cappedBy: 'fund:610100' });
    const fromFund = tight.value.layers.filter((l) => l.fund === '610100').reduce((sum, l) => sum + l.payFen, 0);
    expect(fromFund).toBe(100_000);
  });

  it('given 200 元 left in the fund, when an external payment of 500 元 from it is posted, then it is VALIDATION_FAILED on that field, saying what is left', () => {
    const p = policy([{ code: '610100', mayOverdraw: false }]);
    const r = computeSettlement(p, { ...discharge(1_000_000), externalPayments: { aid: 50_000 } }, dibao, noYear, { '610100': 20_000 });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect([r.error.code, r.error.details]).toEqual([
      'VALIDATION_FAILED',
      [{ field: 'externalPayments.aid', problem: 'must be at most 20000, what fund 610100 has left' }],
    ]);
    // an external payment that fits exactly is accepted, and leaves the fund's later layers nothing
    const exact = computeSettlement(p, { ...discharge(1_000_000), externalPayments: { aid: 20_000 } }, dibao, noYear, { '610100': 20_000 });
    expect(exact.ok && exact.value.layers.find((l) => l.layerId === 'aid2')).toMatchObject({ payFen: 0, cappedBy: 'fund:610100' });
    // and a fund that may be overdrawn takes any external payment within what remains
    expect(computeSettlement(policy(), { ...discharge(1_000_000), externalPayments: { aid: 50_000 } }, dibao, noYear).ok).toBe(true);
  });

  it('given the policy lists the fund as mayOverdraw, when the room is computed, then there is no limit for it', () => {
    const accounts = new Map<string, FundAccount>();
    const room = fundRoomFor(
      policy([
        { code: '610100', mayOverdraw: true },
        { code: '640100', mayOverdraw: false },
      ]),
      'r1',
      2012,
      (k) => accounts.get(k),
      () => 0,
    );
    expect(room).toEqual({ '640100': 0 });
  });

  it('given allocations, payouts and reservations, when the room is computed, then it is the balance less what is reserved, never negative', () => {
    const key = fundKey('610100', 'r1', 2012);
    let a = emptyFundAccount('610100', 'r1', 2012);
    a = applyAllocation(a, { fund: '610100', region: 'r1', year: 2012, source: 'superior', amountFen: 100_000, reference: 'x' });
    a = applyAllocation(a, { fund: '610100', region: 'r1', year: 2012, source: 'local', amountFen: 50_000, reference: 'y' });
    a = { ...a, paidFen: 120_000 };
    const p = policy([{ code: '610100', mayOverdraw: false }]);
    expect(
      fundRoomFor(
        p,
        'r1',
        2012,
        (k) => (k === key ? a : undefined),
        () => 10_000,
      ),
    ).toEqual({ '610100': 20_000 });
    expect(
      fundRoomFor(
        p,
        'r1',
        2012,
        (k) => (k === key ? a : undefined),
        () => 90_000,
      ),
    ).toEqual({ '610100': 0 });
    expect([fundBalanceFen(a), usageRateBp(a)]).toEqual([30_000, 8_000]);
  });
});

describe('enrolment subsidies when the paying fund runs short (planSubsidies)', () => {
  const p = {
    ...policy(),
    categories: [
      { code: 'tekun', name: '特困' },
      { code: 'dibao', name: '低保' },
    ],
  };
  const candidates = [
    { personId: 'd-2', category: 'dibao', amountFen: 4000 },
    { personId: 't-9', category: 'tekun', amountFen: 9000 },
    { personId: 'd-1', category: 'dibao', amountFen: 4000 },
    { personId: 'x', category: 'dibao', amountFen: 1000 },
  ];
  const ids = (list: Array<{ personId: string }>) => list.map((c) => c.personId);

  it('given room for some, then the most favourable category goes first, then person id, and from the first that does not fit nobody is granted', () => {
    const plan = planSubsidies(p, candidates, 13_500);
    expect([ids(plan.grant), ids(plan.shortOfFunds)]).toEqual([
      ['t-9', 'd-1'],
      ['d-2', 'x'],
    ]);
  });

  it('given a fund that may be overdrawn (no room given), then everyone is granted in the same order; given none, nobody', () => {
    expect(ids(planSubsidies(p, candidates, undefined).grant)).toEqual(['t-9', 'd-1', 'd-2', 'x']);
    expect(ids(planSubsidies(p, candidates, 0).shortOfFunds)).toEqual(['t-9', 'd-1', 'd-2', 'x']);
  });

  it('given any room, then what is granted never exceeds it, and granted + short are exactly the candidates', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 30_000 }), fc.shuffledSubarray(candidates), (room, some) => {
        const plan = planSubsidies(p, some, room);
        expect(plan.grant.reduce((sum, c) => sum + c.amountFen, 0)).toBeLessThanOrEqual(room);
        expect([...ids(plan.grant), ...ids(plan.shortOfFunds)].sort()).toEqual(ids(some).sort());
      }),
    );
  });
});

describe('the order of fund accounts', () => {
  it('given accounts in any order, then they list by fund, region and year in code-point order, whatever the locale', () => {
    const accounts = [
      { fund: '610100', region: 'ra', year: 2021 },
      { fund: '610100', region: 'Rb', year: 2020 },
      { fund: '390100', region: 'ra', year: 2020 },
      { fund: '610100', region: 'ra', year: 2020 },
    ];
    // localeCompare would put "ra" before "Rb"; code points put "R" (U+0052) before "r" (U+0072)
    expect(accounts.sort(byFundRegionYear).map((a) => `${a.fund}/${a.region}/${a.year}`)).toEqual([
      '390100/ra/2020',
      '610100/Rb/2020',
      '610100/ra/2020',
      '610100/ra/2021',
    ]);
  });
});

describe('usage rate (资金使用率)', () => {
  it('given nothing allocated, then the rate is null; given an overdrawn fund, then it is over 10000 bp', () => {
    const a = emptyFundAccount('390100', 'r1', 2012);
    expect(usageRateBp({ ...a, paidFen: 5 })).toBeNull();
    const over = {
      ...applyAllocation(a, { fund: '390100', region: 'r1', year: 2012, source: 'superior', amountFen: 100_000, reference: 'x' }),
      paidFen: 125_000,
    };
    expect(usageRateBp(over)).toBe(12_500);
  });
});

describe('allocation input and the policy extension', () => {
  it('given bad allocations, then each is VALIDATION_FAILED naming the field', () => {
    const good = { fund: '610100', region: 'r1', year: 2012, source: 'superior', amountFen: 1, reference: '文号' };
    expect(decideAllocation(good).ok).toBe(true);
    for (const [field, value] of [
      ['amountFen', 0],
      ['amountFen', 1.5],
      ['source', 'gift'],
      ['year', 1999],
      ['reference', ''],
      ['region', 'a b'],
    ] as const) {
      const r = decideAllocation({ ...good, [field]: value });
      expect([field, r.ok ? 'ok' : r.error.details[0]?.field]).toEqual([field, field]);
    }
  });

  it('given policies with funds and an enrolment subsidy, when validated, then good ones pass and each mistake is INVALID_POLICY with its path', () => {
    const base = policy() as unknown as Record<string, unknown>;
    const subsidy = { premiumFen: 9_000, fromFund: '610100', toFund: '390100', byCategory: [{ category: 'dibao', full: true }] };
    expect(validatePolicy({ ...base, funds: [{ code: '610100', mayOverdraw: false }], enrolmentSubsidy: subsidy }).ok).toBe(true);
    const problem = (doc: unknown) => {
      const r = validatePolicy(doc);
      return r.ok ? 'ok' : r.error.details.map((d) => d.field);
    };
    expect(problem({ ...base, funds: [{ code: '610100' }] })).toEqual(['funds[0].mayOverdraw']);
    expect(
      problem({
        ...base,
        funds: [
          { code: 'x', mayOverdraw: true },
          { code: 'x', mayOverdraw: false },
        ],
      }),
    ).toEqual(['funds[1].code']);
    expect(problem({ ...base, enrolmentSubsidy: { ...subsidy, byCategory: [{ category: 'dibao', full: true, amountFen: 5 }] } })).toEqual([
      'enrolmentSubsidy.byCategory[0]',
    ]);
    expect(problem({ ...base, enrolmentSubsidy: { ...subsidy, byCategory: [{ category: 'nobody', amountFen: 5 }] } })).toEqual([
      'enrolmentSubsidy.byCategory[0].category',
    ]);
  });
});
