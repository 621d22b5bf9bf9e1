// The year report an auditor or a civil-affairs bureau writes from the settlement log — the figures
// the source documents report (../shared/seeds): persons (人数) and person-times (人次) settled and
// aided, by beneficiary category and visit type (住院 / 门诊 / 门诊慢特病); amounts by layer and by
// fund (基本医保 / 大病保险 / 医疗救助 / 二次救助 …); total cost and the patient's share (个人负担,
// 实际报销比); per fund and region the allocations (上级下拨 / 本级配套 / 结转), payouts, balance and
// usage rate (资金使用率); enrolment subsidies (资助参保). Built from the report projection
// (report.ts) for one settlement year. Pure, no I/O.
import { byFundRegionYear, emptyFundAccount, fundBalanceFen, fundKey, usageRateBp } from './funds.js';
import { LayerKind, LAYER_KINDS } from './policy.js';
import { assert, byCodePoint, Fen, NO_CATEGORY, VisitType, VISIT_TYPES } from './primitives.js';
import {
  Allocation,
  LayerRef,
  ReportAnomalies,
  ReportEvent,
  ReportState,
  SettlementFact,
  applyReportEvent,
  initialReportState,
} from './report.js';

export type VisitGroup = 'inpatient' | 'outpatient'; // 住院 / 门诊 (普通门诊 + 门诊慢特病)

/** Fund codes of the national fund-pay-type list (spec §3), named when no policy names them. */
export const KNOWN_FUND_NAMES: Readonly<Record<string, string>> = {
  '390100': '城乡居民基本医疗保险基金',
  '390200': '城乡居民大病医疗保险基金',
  '610100': '医疗救助基金',
  '610102': '医疗再救助基金',
  '640100': '政府兜底基金',
};

/** One line of figures over a set of active settlements. Amounts include applied adjustments. */
export interface ReportRow {
  persons: number; // 人数: distinct persons
  personTimes: number; // 人次: settlements
  aidedPersons: number; // 救助人数: persons with aid (any aid layer) paid
  aidedPersonTimes: number; // 救助人次
  totalFen: Fen; // 医疗费总额
  inScopeFen: Fen; // 政策范围内费用
  insurancePayFen: Fen; // 基本医保支付
  criticalIllnessPayFen: Fen; // 大病保险支付
  aidPayFen: Fen; // 医疗救助支付 (all aid layers: 救助, 二次/三次救助)
  fundPayFen: Fen; // 基金支付合计
  adjustmentFen: Fen; // of which applied adjustments (调整)
  patientPayFen: Fen; // 个人负担
  reimbursementRateBp: number | null; // 实际报销比 = fundPay / total
  patientShareBp: number | null; // 个人负担比例 = patientPay / total
}
export interface PayRow {
  persons: number;
  personTimes: number;
  payFen: Fen;
  adjustmentFen: Fen;
}
export interface FundRow {
  fund: string;
  name: string | null;
  region: string;
  allocated: { superiorFen: Fen; localFen: Fen; carryoverFen: Fen; totalFen: Fen }; // 上级下拨 / 本级配套 / 结转
  /** Settlements = payouts − reversals; adjustments ±; subsidies 资助参保 paid from this fund. */
  paid: { settlementsFen: Fen; adjustmentsFen: Fen; subsidiesFen: Fen; totalFen: Fen };
  receivedFen: Fen; // 资助参保 received into this fund
  balanceFen: Fen; // allocated + received − paid
  usageRateBp: number | null; // 资金使用率 = paid / (allocated + received), rounded down; null when nothing came in
  persons: number;
  personTimes: number; // settlements this fund paid in this region
}
/** Persons flagged by a monitoring threshold in the year (防止因病返贫致贫动态监测): flagged = standing + cleared. */
export interface MonitoringCounts {
  flaggedPersons: number;
  standingPersons: number; // the flag stands at the report's position
  clearedPersons: number; // a reversal took them back under, and no later settlement over again
}
export interface MonitoringRow extends MonitoringCounts {
  thresholdId: string;
  per: 'settlement' | 'year';
  aboveFen: Fen;
  byCategory: Array<{ category: string; name: string | null } & MonitoringCounts>;
}
export interface YearReport {
  year: number;
  basis: { position: number; events: number };
  anomalies: ReportAnomalies;
  overall: ReportRow;
  byVisitType: Array<{ visitType: VisitType } & ReportRow>;
  byVisitGroup: Array<{ group: VisitGroup } & ReportRow>;
  byCategory: Array<{ category: string; name: string | null } & ReportRow & { byVisitType: Array<{ visitType: VisitType } & ReportRow> }>;
  byKind: Array<{ kind: LayerKind } & PayRow>;
  byLayer: Array<{ layerId: string; kind: LayerKind; fund: string } & PayRow>;
  byFund: Array<{ fund: string; name: string | null } & PayRow>;
  funds: FundRow[];
  subsidies: {
    persons: number;
    amountFen: Fen;
    byCategory: Array<{ category: string; name: string | null; persons: number; amountFen: Fen }>;
  };
  /** One row per threshold (id, per, line) that flagged anyone in the year; the category of each person's latest flag. */
  monitoring: MonitoringRow[];
}

/** The years a report may be asked for (the allocations' range too): a 4-digit year from 2000 to 2100. */
export function parseReportYear(text: string): number | null {
  const year = /^[0-9]{4}$/.test(text) ? Number(text) : NaN;
  return year >= 2000 && year <= 2100 ? year : null;
}

export const visitGroupOf = (t: VisitType): VisitGroup => (t === 'inpatient' ? 'inpatient' : 'outpatient');

/** a / b in basis points, rounded half away from zero; null when b is 0. BigInt: a × 10000 may pass 2^53. */
export function ratioBp(a: Fen, b: Fen): number | null {
  if (b === 0) return null;
  const n = BigInt(a) * 10_000n;
  const d = BigInt(b);
  const negative = n < 0n !== d < 0n;
  const abs = (x: bigint) => (x < 0n ? -x : x);
  const q = (2n * abs(n) + abs(d)) / (2n * abs(d));
  return Number(negative ? -q : q);
}

interface RowAcc {
  persons: Set<string>;
  aided: Set<string>;
  times: number;
  aidedTimes: number;
  fen: Omit<
    ReportRow,
    | 'persons'
    | 'personTimes'
    | 'aidedPersons'
    | 'aidedPersonTimes'
    | 'fundPayFen'
    | 'patientPayFen'
    | 'reimbursementRateBp'
    | 'patientShareBp'
  >;
}
interface PayAcc {
  persons: Set<string>;
  times: number;
  payFen: Fen;
  adjustmentFen: Fen;
}
/** A settlement's figures with its adjustments applied. */
interface FactView {
  net: readonly Fen[];
  adjustmentByLayer: readonly Fen[];
  byKind: Record<LayerKind, Fen>;
  adjustmentByKind: Record<LayerKind, Fen>;
  adjustmentFen: Fen;
}

const rowAcc = (): RowAcc => ({
  persons: new Set(),
  aided: new Set(),
  times: 0,
  aidedTimes: 0,
  fen: { totalFen: 0, inScopeFen: 0, insurancePayFen: 0, criticalIllnessPayFen: 0, aidPayFen: 0, adjustmentFen: 0 },
});
const payAcc = (): PayAcc => ({ persons: new Set(), times: 0, payFen: 0, adjustmentFen: 0 });

function viewOf(f: SettlementFact, zeros: readonly Fen[]): FactView {
  let net: readonly Fen[] = f.pays;
  let adjustmentByLayer = zeros;
  let adjustmentFen = 0;
  if (f.adjustments.length > 0) {
    const n = [...f.pays];
    const a = [...zeros];
    for (const adj of f.adjustments) {
      n[adj.layer]! += adj.deltaFen;
      a[adj.layer]! += adj.deltaFen;
      adjustmentFen += adj.deltaFen;
    }
    net = n;
    adjustmentByLayer = a;
  }
  const byKind: Record<LayerKind, Fen> = { insurance: 0, critical_illness: 0, aid: 0 };
  const adjustmentByKind: Record<LayerKind, Fen> = { insurance: 0, critical_illness: 0, aid: 0 };
  for (let i = 0; i < f.layers.length; i++) {
    const kind = f.layers[i]!.kind;
    byKind[kind] += net[i]!;
    adjustmentByKind[kind] += adjustmentByLayer[i]!;
  }
  return { net, adjustmentByLayer, byKind, adjustmentByKind, adjustmentFen };
}

function addRow(acc: RowAcc, f: SettlementFact, v: FactView): void {
  acc.persons.add(f.personId);
  acc.times += 1;
  if (v.byKind.aid > 0) {
    acc.aided.add(f.personId);
    acc.aidedTimes += 1;
  }
  acc.fen.totalFen += f.totalFen;
  acc.fen.inScopeFen += f.inScopeFen;
  acc.fen.insurancePayFen += v.byKind.insurance;
  acc.fen.criticalIllnessPayFen += v.byKind.critical_illness;
  acc.fen.aidPayFen += v.byKind.aid;
  acc.fen.adjustmentFen += v.adjustmentFen;
}

function addPay(acc: PayAcc, person: string, payFen: Fen, adjustmentFen: Fen): void {
  if (payFen > 0) {
    acc.persons.add(person);
    acc.times += 1;
  }
  acc.payFen += payFen;
  acc.adjustmentFen += adjustmentFen;
}

function rowOf(acc: RowAcc): ReportRow {
  const { totalFen, inScopeFen, insurancePayFen, criticalIllnessPayFen, aidPayFen, adjustmentFen } = acc.fen;
  const fundPayFen = insurancePayFen + criticalIllnessPayFen + aidPayFen;
  const patientPayFen = totalFen - fundPayFen;
  assert(Number.isSafeInteger(totalFen) && Number.isSafeInteger(fundPayFen), 'report sums stay exact integers of fen');
  return {
    persons: acc.persons.size,
    personTimes: acc.times,
    aidedPersons: acc.aided.size,
    aidedPersonTimes: acc.aidedTimes,
    totalFen,
    inScopeFen,
    insurancePayFen,
    criticalIllnessPayFen,
    aidPayFen,
    fundPayFen,
    adjustmentFen,
    patientPayFen,
    reimbursementRateBp: ratioBp(fundPayFen, totalFen),
    patientShareBp: ratioBp(patientPayFen, totalFen),
  };
}

const payRowOf = (acc: PayAcc): PayRow => ({
  persons: acc.persons.size,
  personTimes: acc.times,
  payFen: acc.payFen,
  adjustmentFen: acc.adjustmentFen,
});

function getOr<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let v = map.get(key);
  if (v === undefined) map.set(key, (v = make()));
  return v;
}

interface Plan {
  zeros: Fen[];
  layers: PayAcc[];
  funds: Array<{ fund: string; layers: number[]; acc: PayAcc }>;
  byRegion: Map<string, FundAcc[]>;
}
interface FundAcc {
  paid: PayAcc;
  settlementsFen: Fen;
  adjustmentsFen: Fen;
  subsidiesFen: Fen;
  receivedFen: Fen;
}
const fundAcc = (): FundAcc => ({ paid: payAcc(), settlementsFen: 0, adjustmentsFen: 0, subsidiesFen: 0, receivedFen: 0 });

/** The report of one settlement year (the calendar year of the discharge date) over active settlements. */
export function buildYearReport(state: ReportState, year: number): YearReport {
  const overall = rowAcc();
  const byType = new Map(VISIT_TYPES.map((t) => [t, rowAcc()] as const));
  const byGroup = new Map((['inpatient', 'outpatient'] as const).map((g) => [g, rowAcc()] as const));
  const byCategory = new Map<string, { all: RowAcc; byType: Map<VisitType, RowAcc> }>();
  const byKind = new Map(LAYER_KINDS.map((k) => [k, payAcc()] as const));
  const byLayer = new Map<string, { layer: LayerRef; acc: PayAcc }>();
  const byFund = new Map<string, PayAcc>();
  const funds = new Map<string, { fund: string; region: string; acc: FundAcc }>();
  const fundOf = (fund: string, region: string) => getOr(funds, `${fund}\u0000${region}`, () => ({ fund, region, acc: fundAcc() })).acc;
  // The accumulators of a policy version's layers, found once per version (and region), not per settlement.
  const plans = new Map<readonly LayerRef[], Plan>();
  const planOf = (layers: readonly LayerRef[]): Plan =>
    getOr(plans, layers, () => ({
      zeros: layers.map(() => 0),
      layers: layers.map((l) => getOr(byLayer, `${l.id}\u0000${l.kind}\u0000${l.fund}`, () => ({ layer: l, acc: payAcc() })).acc),
      // A settlement counts once per fund even when two of its layers share that fund.
      funds: [...new Set(layers.map((l) => l.fund))].map((fund) => ({
        fund,
        layers: layers.flatMap((l, i) => (l.fund === fund ? [i] : [])),
        acc: getOr(byFund, fund, payAcc),
      })),
      byRegion: new Map(),
    }));

  for (const f of state.facts.settlementsOf(year, state.policies)) {
    const plan = planOf(f.layers);
    const v = viewOf(f, plan.zeros);
    addRow(overall, f, v);
    addRow(byType.get(f.visitType)!, f, v);
    addRow(byGroup.get(visitGroupOf(f.visitType))!, f, v);
    const cat = getOr(byCategory, f.category, () => ({ all: rowAcc(), byType: new Map(VISIT_TYPES.map((t) => [t, rowAcc()] as const)) }));
    addRow(cat.all, f, v);
    addRow(cat.byType.get(f.visitType)!, f, v);
    for (const k of LAYER_KINDS) addPay(byKind.get(k)!, f.personId, v.byKind[k], v.adjustmentByKind[k]);
    for (let i = 0; i < plan.layers.length; i++) addPay(plan.layers[i]!, f.personId, v.net[i]!, v.adjustmentByLayer[i]!);
    const regional = getOr(plan.byRegion, f.region, () => plan.funds.map((g) => fundOf(g.fund, f.region)));
    plan.funds.forEach((g, j) => {
      let net = 0;
      let adjustment = 0;
      let settled = 0;
      for (const i of g.layers) {
        net += v.net[i]!;
        adjustment += v.adjustmentByLayer[i]!;
        settled += f.pays[i]!;
      }
      addPay(g.acc, f.personId, net, adjustment);
      addPay(regional[j]!.paid, f.personId, net, 0);
      regional[j]!.settlementsFen += settled;
    });
    // Money moves on the fund the adjustment names (the ledger posts it there).
    for (const a of f.adjustments) fundOf(a.fund, a.region).adjustmentsFen += a.deltaFen;
  }
  const allocations = new Map<string, Allocation>();
  for (const a of state.facts.allocationsOf(year)) {
    allocations.set(fundKey(a.fund, a.region, year), a);
    fundOf(a.fund, a.region);
  }
  const subsidyByCategory = new Map<string, { persons: number; amountFen: Fen }>();
  let subsidyFen = 0;
  let subsidyPersons = 0;
  for (const s of state.facts.subsidiesOf(year)) {
    subsidyPersons += 1;
    subsidyFen += s.amountFen;
    const c = getOr(subsidyByCategory, s.category, () => ({ persons: 0, amountFen: 0 }));
    c.persons += 1;
    c.amountFen += s.amountFen;
    fundOf(s.fromFund, s.region).subsidiesFen += s.amountFen;
    fundOf(s.toFund, s.region).receivedFen += s.amountFen;
  }

  const monitoring = new Map<string, { row: MonitoringRow; byCategory: Map<string, MonitoringCounts> }>();
  for (const a of state.facts.alertsOf(year)) {
    const key = `${a.thresholdId}\u0000${a.per}\u0000${a.aboveFen}`;
    const m = getOr(monitoring, key, () => ({
      row: { thresholdId: a.thresholdId, per: a.per, aboveFen: a.aboveFen, ...noMonitoring(), byCategory: [] },
      byCategory: new Map<string, MonitoringCounts>(),
    }));
    for (const counts of [m.row, getOr(m.byCategory, a.category, noMonitoring)]) {
      counts.flaggedPersons += 1;
      if (a.standing) counts.standingPersons += 1;
      else counts.clearedPersons += 1;
    }
  }

  const categoryName = (code: string) => (code === NO_CATEGORY ? null : (state.categoryOrder.get(code)?.name ?? null));
  const fundName = (code: string) => state.fundNames.get(code) ?? KNOWN_FUND_NAMES[code] ?? null;
  const rank = (code: string) => (code === NO_CATEGORY ? Infinity : (state.categoryOrder.get(code)?.rank ?? Number.MAX_SAFE_INTEGER));
  const categoryOrder = (a: string, b: string) => rank(a) - rank(b) || byCodePoint(a, b);
  const layerRank = (id: string) => state.layerOrder.get(id) ?? Number.MAX_SAFE_INTEGER;
  return {
    year,
    basis: { position: state.position, events: state.events },
    anomalies: { ...state.anomalies },
    overall: rowOf(overall),
    byVisitType: VISIT_TYPES.map((visitType) => ({ visitType, ...rowOf(byType.get(visitType)!) })),
    byVisitGroup: (['inpatient', 'outpatient'] as const).map((group) => ({ group, ...rowOf(byGroup.get(group)!) })),
    byCategory: [...byCategory.keys()].sort(categoryOrder).map((category) => {
      const c = byCategory.get(category)!;
      return {
        category,
        name: categoryName(category),
        ...rowOf(c.all),
        byVisitType: VISIT_TYPES.map((visitType) => ({ visitType, ...rowOf(c.byType.get(visitType)!) })),
      };
    }),
    byKind: LAYER_KINDS.map((kind) => ({ kind, ...payRowOf(byKind.get(kind)!) })),
    byLayer: [...byLayer.values()]
      .sort(
        (a, b) =>
          layerRank(a.layer.id) - layerRank(b.layer.id) ||
          byCodePoint(a.layer.id, b.layer.id) ||
          byCodePoint(a.layer.kind, b.layer.kind) ||
          byCodePoint(a.layer.fund, b.layer.fund),
      )
      .map(({ layer, acc }) => ({ layerId: layer.id, kind: layer.kind, fund: layer.fund, ...payRowOf(acc) })),
    byFund: [...byFund.keys()].sort(byCodePoint).map((fund) => ({ fund, name: fundName(fund), ...payRowOf(byFund.get(fund)!) })),
    funds: [...funds.values()].sort(byFundRegionYear).map(({ fund, region, acc }) => {
      const fen = allocations.get(fundKey(fund, region, year))?.fen ?? { superior: 0, local: 0, carryover: 0 };
      const paidFen = acc.settlementsFen + acc.adjustmentsFen + acc.subsidiesFen;
      // Balance and usage rate as GET /v1/funds computes them (funds.ts), so the two never disagree.
      const account = { ...emptyFundAccount(fund, region, year), allocatedFen: fen, receivedFen: acc.receivedFen, paidFen };
      return {
        fund,
        name: fundName(fund),
        region,
        allocated: {
          superiorFen: fen.superior,
          localFen: fen.local,
          carryoverFen: fen.carryover,
          totalFen: fen.superior + fen.local + fen.carryover,
        },
        paid: { settlementsFen: acc.settlementsFen, adjustmentsFen: acc.adjustmentsFen, subsidiesFen: acc.subsidiesFen, totalFen: paidFen },
        receivedFen: acc.receivedFen,
        balanceFen: fundBalanceFen(account),
        usageRateBp: usageRateBp(account),
        persons: acc.paid.persons.size,
        personTimes: acc.paid.times,
      };
    }),
    subsidies: {
      persons: subsidyPersons,
      amountFen: subsidyFen,
      byCategory: [...subsidyByCategory.keys()]
        .sort(categoryOrder)
        .map((category) => ({ category, name: categoryName(category), ...subsidyByCategory.get(category)! })),
    },
    monitoring: [...monitoring.values()]
      .sort(
        (a, b) => byCodePoint(a.row.thresholdId, b.row.thresholdId) || byCodePoint(a.row.per, b.row.per) || a.row.aboveFen - b.row.aboveFen,
      )
      .map(({ row, byCategory }) => ({
        ...row,
        byCategory: [...byCategory.keys()]
          .sort(categoryOrder)
          .map((category) => ({ category, name: categoryName(category), ...byCategory.get(category)! })),
      })),
  };
}

const noMonitoring = (): MonitoringCounts => ({ flaggedPersons: 0, standingPersons: 0, clearedPersons: 0 });

/** Folds a whole log and reports one year: what `medaid audit report` does, for a log in memory. */
export function reportFromEvents(events: Iterable<ReportEvent>, year: number): YearReport {
  const state = initialReportState();
  for (const e of events) applyReportEvent(state, e);
  return buildYearReport(state, year);
}
