// The year report (医疗救助 年度统计): persons and person-times, amounts by category, visit type,
// layer and fund, fund usage (资金使用率) and enrolment subsidies — folded from hand-built events.
import { describe, expect, it } from '@jest/globals';
import { SettledData } from './events.js';
import { Policy } from './policy.js';
import { ReportEvent, applyReportEvent, initialReportState } from './report.js';
import { YearReport, buildYearReport, ratioBp, reportFromEvents } from './report-year.js';

const policy: Policy = {
  policyId: 'county',
  version: 1,
  region: 'r1',
  effectiveFrom: '2012-01-01',
  categories: [
    { code: 'tekun', name: '特困供养人员' },
    { code: 'dibao', name: '城乡低保对象' },
  ],
  layers: [
    { id: 'basic', kind: 'insurance', fund: '390100', rules: [{ id: 'b', bands: [{ uptoFen: null, ratioBp: 5000 }] }] },
    { id: 'aid', kind: 'aid', fund: '610100', rules: [{ id: 'a', bands: [{ uptoFen: null, ratioBp: 7000 }] }] },
    { id: 'aid2', kind: 'aid', fund: '610102', rules: [{ id: 'a2', bands: [{ uptoFen: null, ratioBp: 3000 }] }] },
  ],
  funds: [{ code: '610100', name: '城乡医疗救助基金', mayOverdraw: true }],
};

interface Settle {
  id: string;
  person: string;
  category?: string;
  visitType?: 'inpatient' | 'outpatient' | 'chronic_outpatient';
  date?: string;
  totalFen: number;
  pays: [number, number, number];
  region?: string;
}

/** A DischargeSettled as the service records it (compact layers), with the given pays per layer. */
function settled(s: Settle): SettledData {
  const date = s.date ?? '2012-05-10';
  return {
    settlementId: s.id,
    fingerprint: `fp-${s.id}`,
    policy: { policyId: 'county', version: 1 },
    year: Number(date.slice(0, 4)),
    category: s.category ?? 'none',
    aidBlockedReason: null,
    contributions: { yearBase: {}, used: {} },
    discharge: {
      hospitalId: 'h1',
      visitId: s.id,
      personId: s.person,
      region: s.region ?? 'r1',
      scheme: 'nrcms',
      visitType: s.visitType ?? 'inpatient',
      hospitalLevel: 'county',
      admissionDate: date,
      dischargeDate: date,
      diagnosisCodes: [],
      totalFen: s.totalFen,
      fullOwnPayFen: 0,
      overLimitFen: 0,
      preSelfPayFen: 0,
      externalPayments: {},
    },
    layers: s.pays.map((pay, i) => [['b', 'a', 'a2'][i]!, 0, 0, pay, pay, null]),
  };
}

/** A log: each entry gets the next global position. */
function log(...events: Array<{ type: string; data: unknown }>): ReportEvent[] {
  return events.map((e, i) => ({ ...e, position: i + 1 }));
}
const published = (p: Policy = policy) => ({ type: 'PolicyPublished', data: { policy: p } });
const settle = (s: Settle) => ({ type: 'DischargeSettled', data: settled(s) });
const reverse = (settlementId: string) => ({
  type: 'SettlementReversed',
  data: { personId: 'x', settlementId, hospitalId: 'h1', visitId: settlementId, reason: '录入错误' },
});
const allocate = (fund: string, source: string, amountFen: number, year = 2012, region = 'r1') => ({
  type: 'FundAllocated',
  data: { fund, region, year, source, amountFen, reference: '民发〔2012〕1号' },
});
const adjust = (settlementId: string, layerId: string, fund: string, deltaFen: number) => ({
  type: 'AdjustmentApplied',
  data: {
    adjustmentId: `adj-${settlementId}-${deltaFen}`,
    settlementId,
    hospitalId: 'h1',
    visitId: settlementId,
    layerId,
    fund,
    region: 'r1',
    year: 2012,
    deltaFen,
    contributions: { yearBase: {}, used: {} },
    requestedBy: { kind: 'admin', id: 'maker' },
    approvedBy: { kind: 'admin', id: 'checker' },
  },
});
const subsidy = (personId: string, category: string, amountFen: number, year = 2012) => ({
  type: 'EnrolmentSubsidyGranted',
  data: {
    personId,
    year,
    region: 'r1',
    category,
    amountFen,
    fromFund: '610100',
    toFund: '390100',
    policy: { policyId: 'county', version: 1 },
  },
});
const flag = (personId: string, thresholdId: string, category: string, year = 2012) => ({
  type: 'HighMedicalCostFlagged',
  data: {
    personId,
    year,
    thresholdId,
    per: thresholdId === 'year-line' ? 'year' : 'settlement',
    aboveFen: thresholdId === 'year-line' ? 800_000 : 600_000,
    amountFen: 900_000,
    settlementId: `s-${personId}`,
    category,
    region: 'r1',
    dischargeDate: `${year}-05-10`,
  },
});
const clear = (personId: string, thresholdId: string, year = 2012) => ({
  type: 'HighMedicalCostCleared',
  data: { personId, year, thresholdId, amountFen: 100, settlementId: `s-${personId}` },
});
const report = (...events: Array<{ type: string; data: unknown }>): YearReport => reportFromEvents(log(...events), 2012);
const category = (r: YearReport, code: string) => r.byCategory.find((c) => c.category === code)!;

describe('the year report: persons and person-times (人数 / 人次)', () => {
  it('given settlements of three persons in two categories and none, when reported, then persons, person-times and sums are per category and visit type', () => {
    const r = report(
      published(),
      settle({ id: 's1', person: 'p1', category: 'tekun', totalFen: 100_000, pays: [50_000, 40_000, 0] }),
      settle({ id: 's2', person: 'p2', category: 'dibao', totalFen: 200_000, pays: [100_000, 70_000, 9_000] }),
      settle({ id: 's3', person: 'p2', category: 'dibao', visitType: 'outpatient', totalFen: 10_000, pays: [5_000, 3_500, 0] }),
      settle({ id: 's4', person: 'p3', totalFen: 30_000, pays: [15_000, 0, 0] }),
    );

    expect(r.overall).toMatchObject({
      persons: 3,
      personTimes: 4,
      aidedPersons: 2,
      aidedPersonTimes: 3,
      totalFen: 340_000,
      insurancePayFen: 170_000,
      aidPayFen: 122_500,
      criticalIllnessPayFen: 0,
      fundPayFen: 292_500,
      patientPayFen: 47_500,
      reimbursementRateBp: 8603,
      patientShareBp: 1397,
    });
    expect(r.byCategory.map((c) => [c.category, c.name, c.persons, c.personTimes, c.aidPayFen])).toEqual([
      ['tekun', '特困供养人员', 1, 1, 40_000],
      ['dibao', '城乡低保对象', 1, 2, 82_500],
      ['none', null, 1, 1, 0],
    ]);
    expect(category(r, 'dibao').byVisitType.map((t) => [t.visitType, t.personTimes, t.totalFen])).toEqual([
      ['inpatient', 1, 200_000],
      ['outpatient', 1, 10_000],
      ['chronic_outpatient', 0, 0],
    ]);
    expect(category(r, 'none')).toMatchObject({ aidedPersons: 0, aidedPersonTimes: 0, insurancePayFen: 15_000 });
  });

  it('given one person settled twice under two categories, when reported, then the person counts once overall and once in each category', () => {
    const r = report(
      published(),
      settle({ id: 's1', person: 'p1', category: 'dibao', totalFen: 1_000, pays: [500, 350, 0] }),
      settle({ id: 's2', person: 'p1', category: 'tekun', totalFen: 1_000, pays: [500, 500, 0] }),
    );

    expect([r.overall.persons, r.overall.personTimes]).toEqual([1, 2]);
    expect(r.byCategory.map((c) => [c.category, c.persons, c.personTimes])).toEqual([
      ['tekun', 1, 1],
      ['dibao', 1, 1],
    ]);
  });

  it('given a settlement that was reversed, when reported, then it counts nowhere, and its person only through another settlement', () => {
    const events = [
      published(),
      settle({ id: 's1', person: 'p1', category: 'dibao', totalFen: 100_000, pays: [50_000, 35_000, 0] }),
      settle({ id: 's2', person: 'p2', category: 'dibao', totalFen: 80_000, pays: [40_000, 28_000, 0] }),
      reverse('s1'),
    ];
    const r = report(...events);

    expect(r.overall).toMatchObject({ persons: 1, personTimes: 1, totalFen: 80_000, aidPayFen: 28_000 });
    expect(r.funds.find((f) => f.fund === '610100')?.paid.settlementsFen).toBe(28_000);
    // and the visit settled anew after its reversal counts again
    const again = report(...events, settle({ id: 's1b', person: 'p1', category: 'dibao', totalFen: 90_000, pays: [45_000, 31_500, 0] }));
    expect(again.overall).toMatchObject({ persons: 2, personTimes: 2, totalFen: 170_000 });
  });

  it('given settlements of 2012 and 2013, when 2012 is reported, then only the discharges of 2012 count', () => {
    const events = log(
      published(),
      settle({ id: 's1', person: 'p1', totalFen: 1_000, pays: [500, 0, 0], date: '2012-12-31' }),
      settle({ id: 's2', person: 'p1', totalFen: 7_000, pays: [3_500, 0, 0], date: '2013-01-01' }),
    );
    const state = initialReportState();
    events.forEach((e) => applyReportEvent(state, e));

    expect(buildYearReport(state, 2012).overall.totalFen).toBe(1_000);
    expect(buildYearReport(state, 2013).overall.totalFen).toBe(7_000);
    expect(buildYearReport(state, 2014).overall).toMatchObject({ persons: 0, personTimes: 0, reimbursementRateBp: null });
  });

  it('given inpatient, outpatient and chronic outpatient settlements, when reported, then 门诊 is outpatient plus chronic outpatient', () => {
    const r = report(
      published(),
      settle({ id: 's1', person: 'p1', visitType: 'inpatient', totalFen: 5_000, pays: [1, 0, 0] }),
      settle({ id: 's2', person: 'p1', visitType: 'outpatient', totalFen: 300, pays: [2, 0, 0] }),
      settle({ id: 's3', person: 'p2', visitType: 'chronic_outpatient', totalFen: 700, pays: [3, 0, 0] }),
    );

    expect(r.byVisitType.map((t) => [t.visitType, t.persons, t.totalFen])).toEqual([
      ['inpatient', 1, 5_000],
      ['outpatient', 1, 300],
      ['chronic_outpatient', 1, 700],
    ]);
    expect(r.byVisitGroup.map((g) => [g.group, g.persons, g.personTimes, g.totalFen])).toEqual([
      ['inpatient', 1, 1, 5_000],
      ['outpatient', 2, 2, 1_000],
    ]);
  });
});

describe('the year report: layers and funds', () => {
  it('given settlements, when reported, then amounts are by layer kind, by layer and by fund, each counting a settlement where it paid', () => {
    const r = report(
      published(),
      settle({ id: 's1', person: 'p1', category: 'dibao', totalFen: 100_000, pays: [50_000, 35_000, 4_000] }),
      settle({ id: 's2', person: 'p2', category: 'dibao', totalFen: 10_000, pays: [5_000, 3_500, 0] }),
    );

    expect(r.byKind).toEqual([
      { kind: 'insurance', persons: 2, personTimes: 2, payFen: 55_000, adjustmentFen: 0 },
      { kind: 'critical_illness', persons: 0, personTimes: 0, payFen: 0, adjustmentFen: 0 },
      { kind: 'aid', persons: 2, personTimes: 2, payFen: 42_500, adjustmentFen: 0 },
    ]);
    expect(r.byLayer.map((l) => [l.layerId, l.kind, l.fund, l.personTimes, l.payFen])).toEqual([
      ['basic', 'insurance', '390100', 2, 55_000],
      ['aid', 'aid', '610100', 2, 38_500],
      ['aid2', 'aid', '610102', 1, 4_000],
    ]);
    expect(r.byFund.map((f) => [f.fund, f.name, f.payFen])).toEqual([
      ['390100', '城乡居民基本医疗保险基金', 55_000],
      ['610100', '城乡医疗救助基金', 38_500],
      ['610102', '医疗再救助基金', 4_000],
    ]);
  });

  it('given allocations from three sources, payouts, a reversal, an adjustment and a subsidy, when reported, then the fund shows allocated, paid, balance and usage rate', () => {
    const r = report(
      published(),
      allocate('610100', 'superior', 60_000),
      allocate('610100', 'local', 20_000),
      allocate('610100', 'carryover', 10_000),
      allocate('610100', 'superior', 5_000, 2013),
      settle({ id: 's1', person: 'p1', category: 'dibao', totalFen: 200_000, pays: [100_000, 70_000, 0] }),
      settle({ id: 's2', person: 'p2', category: 'dibao', totalFen: 50_000, pays: [25_000, 17_500, 0] }),
      settle({ id: 's3', person: 'p3', category: 'dibao', totalFen: 40_000, pays: [20_000, 14_000, 0] }),
      reverse('s3'),
      adjust('s2', 'aid', '610100', -2_500),
      subsidy('p1', 'dibao', 9_000),
    );

    const aid = r.funds.find((f) => f.fund === '610100' && f.region === 'r1')!;
    expect(aid).toEqual({
      fund: '610100',
      name: '城乡医疗救助基金',
      region: 'r1',
      allocated: { superiorFen: 60_000, localFen: 20_000, carryoverFen: 10_000, totalFen: 90_000 },
      paid: { settlementsFen: 87_500, adjustmentsFen: -2_500, subsidiesFen: 9_000, totalFen: 94_000 },
      receivedFen: 0,
      balanceFen: -4_000,
      usageRateBp: 10444,
      persons: 2,
      personTimes: 2,
    });
    // The insurance fund received the premium subsidy (资助参保); as GET /v1/funds, its rate is paid / (allocated + received).
    expect(r.funds.find((f) => f.fund === '390100')).toMatchObject({
      receivedFen: 9_000,
      paid: { totalFen: 125_000 },
      balanceFen: -116_000,
      usageRateBp: 138_888,
    });
    expect(r.funds.map((f) => f.fund)).toEqual(['390100', '610100', '610102']);
  });

  it('given a fund with nothing allocated or received, when reported, then its usage rate is null', () => {
    const r = report(published(), settle({ id: 's1', person: 'p1', category: 'tekun', totalFen: 1_000, pays: [500, 500, 0] }));

    expect(r.funds.find((f) => f.fund === '610100')).toMatchObject({ usageRateBp: null, balanceFen: -500 });
  });

  it('given an applied adjustment, when reported, then it moves its layer, kind, fund and the totals, and shows as the adjusted part', () => {
    const r = report(
      published(),
      settle({ id: 's1', person: 'p1', category: 'dibao', totalFen: 100_000, pays: [50_000, 35_000, 0] }),
      adjust('s1', 'aid2', '610102', 1_200),
    );

    expect(r.overall).toMatchObject({ aidPayFen: 36_200, fundPayFen: 86_200, adjustmentFen: 1_200, patientPayFen: 13_800 });
    expect(r.byLayer.find((l) => l.layerId === 'aid2')).toMatchObject({ personTimes: 1, payFen: 1_200, adjustmentFen: 1_200 });
    expect(r.funds.find((f) => f.fund === '610102')?.paid).toEqual({
      settlementsFen: 0,
      adjustmentsFen: 1_200,
      subsidiesFen: 0,
      totalFen: 1_200,
    });
  });

  it('given an adjustment of a settlement reversed later, when reported, then the reversal takes the adjustment back too', () => {
    const r = report(
      published(),
      settle({ id: 's1', person: 'p1', category: 'dibao', totalFen: 100_000, pays: [50_000, 35_000, 0] }),
      adjust('s1', 'aid', '610100', 1_000),
      reverse('s1'),
      adjust('s1', 'aid', '610100', 500),
    );

    expect(r.overall.personTimes).toBe(0);
    expect(r.funds).toEqual([]);
    expect(r.anomalies.adjustmentsOfInactiveSettlements).toBe(1);
  });
});

describe('the year report: enrolment subsidies (资助参保) and the log itself', () => {
  it('given subsidies of two categories and a repeated grant, when reported, then persons and amounts are by category, the repeat counted once', () => {
    const r = report(
      published(),
      subsidy('p1', 'tekun', 12_000),
      subsidy('p2', 'dibao', 6_000),
      subsidy('p3', 'dibao', 6_000),
      subsidy('p3', 'dibao', 6_000),
      subsidy('p4', 'dibao', 6_000, 2013),
    );

    expect(r.subsidies).toEqual({
      persons: 3,
      amountFen: 24_000,
      byCategory: [
        { category: 'tekun', name: '特困供养人员', persons: 1, amountFen: 12_000 },
        { category: 'dibao', name: '城乡低保对象', persons: 2, amountFen: 12_000 },
      ],
    });
    expect(r.anomalies.repeatedSubsidies).toBe(1);
  });

  it('given a settlement naming a policy that is not in the log, when reported, then it is counted as an anomaly, not as a settlement', () => {
    const r = report(settle({ id: 's1', person: 'p1', totalFen: 1_000, pays: [1, 0, 0] }), reverse('nope'));

    expect(r.overall.personTimes).toBe(0);
    expect(r.anomalies).toMatchObject({ settlementsWithoutPolicy: 1, reversalsOfInactiveSettlements: 1 });
  });

  it('given the same log, when reported twice, then the reports are identical, and they say which part of the log they cover', () => {
    const events = [
      published(),
      allocate('610102', 'local', 1),
      allocate('610100', 'local', 1),
      settle({ id: 's2', person: 'p2', category: 'dibao', totalFen: 10, pays: [1, 1, 1] }),
      settle({ id: 's1', person: 'p1', category: 'tekun', totalFen: 10, pays: [1, 1, 1] }),
    ];

    expect(JSON.stringify(report(...events))).toBe(JSON.stringify(report(...events)));
    expect(report(...events).basis).toEqual({ position: 5, events: 5 });
  });

  it('given an event out of global order, when folded, then the fold refuses it', () => {
    const state = initialReportState();
    applyReportEvent(state, { ...published(), position: 5 });

    expect(() => applyReportEvent(state, { ...published(), position: 5 })).toThrow(/global order/);
  });
});

describe('the year report: monitoring flags (因病返贫致贫监测)', () => {
  it('given flags, clearings and a flag raised again, when reported, then persons flagged, standing and cleared are per threshold and category', () => {
    const r = report(
      published(),
      flag('p1', 'year-line', 'dibao'),
      flag('p2', 'year-line', 'none'),
      flag('p3', 'year-line', 'dibao'),
      clear('p3', 'year-line'),
      flag('p2', 'admission', 'none'),
      clear('p2', 'admission'),
      flag('p2', 'admission', 'none'), // raised again by a later settlement: one person, standing
      flag('p4', 'year-line', 'dibao', 2013),
      clear('p5', 'year-line'), // no flag: an anomaly
    );

    expect(r.monitoring).toEqual([
      {
        thresholdId: 'admission',
        per: 'settlement',
        aboveFen: 600_000,
        flaggedPersons: 1,
        standingPersons: 1,
        clearedPersons: 0,
        byCategory: [{ category: 'none', name: null, flaggedPersons: 1, standingPersons: 1, clearedPersons: 0 }],
      },
      {
        thresholdId: 'year-line',
        per: 'year',
        aboveFen: 800_000,
        flaggedPersons: 3,
        standingPersons: 2,
        clearedPersons: 1,
        byCategory: [
          { category: 'dibao', name: '城乡低保对象', flaggedPersons: 2, standingPersons: 1, clearedPersons: 1 },
          { category: 'none', name: null, flaggedPersons: 1, standingPersons: 1, clearedPersons: 0 },
        ],
      },
    ]);
    expect(r.anomalies.clearingsWithoutFlag).toBe(1);
    expect(reportFromEvents(log(published()), 2012).monitoring).toEqual([]);
  });
});

describe('ratioBp', () => {
  it('rounds half away from zero, stays exact beyond 2^53 and is null for a zero denominator', () => {
    expect([ratioBp(1, 3), ratioBp(2, 3), ratioBp(1, 20_000), ratioBp(-1, 20_000), ratioBp(5, 0)]).toEqual([3333, 6667, 1, -1, null]);
    expect(ratioBp(99_999_999_999_999, 100_000_000_000_000)).toBe(10_000);
    expect(ratioBp(121_300_000_000_001, 100_000_000_000_000)).toBe(12_130);
  });
});
