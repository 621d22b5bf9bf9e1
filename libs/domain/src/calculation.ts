// The settlement computation of spec §6 — the one place that says how every payer's share is
// computed: basic insurance (基本医保: 起付线 deductible, ratios, annual cap), critical illness
// (大病保险), medical aid (医疗救助) and its second and third rounds (二次/三次救助). Each is just a
// layer of the policy, applied in order to what the previous layers left unpaid. Pure: integer
// 分 in, integer 分 out; no clock, no I/O.
import { Band, FixedSum, Layer, LayerKind, Match, Policy, Rule, fixedSumCounter } from './policy.js';
import {
  Fen,
  HospitalLevel,
  IsoDate,
  MAX_BP,
  NO_CATEGORY,
  Result,
  VisitType,
  assert,
  dict,
  fail,
  ok,
  own,
  setOwn,
  yearOf,
} from './primitives.js';

/** A discharge with defaults applied (absent amounts = 0, diagnoses = [], externalPayments = {}). */
export interface Discharge {
  hospitalId: string;
  visitId: string; // 就诊ID
  personId: string; // 人员编号
  region: string; // 参保地
  scheme: string;
  visitType: VisitType;
  hospitalLevel: HospitalLevel;
  admissionDate: IsoDate;
  dischargeDate: IsoDate;
  diagnosisCodes: string[];
  totalFen: Fen; // 医疗费总额 medfee_sumamt
  fullOwnPayFen: Fen; // 全自费金额 fulamt_ownpay_amt
  overLimitFen: Fen; // 超限价自费 overlmt_selfpay
  preSelfPayFen: Fen; // 先行自付 preselfpay_amt
  externalPayments: Record<string, Fen>; // layers already adjudicated elsewhere
}

/**
 * Canonical form of a discharge with defaults applied; two posts are "identical" iff equal.
 * Fields in a fixed order (diagnosis order is significant), external payments sorted by layer.
 */
export function dischargeFingerprint(d: Discharge): string {
  const external = Object.keys(d.externalPayments)
    .sort()
    .map((k) => [k, d.externalPayments[k]]);
  return JSON.stringify([
    d.hospitalId,
    d.visitId,
    d.personId,
    d.region,
    d.scheme,
    d.visitType,
    d.hospitalLevel,
    d.admissionDate,
    d.dischargeDate,
    d.diagnosisCodes,
    d.totalFen,
    d.fullOwnPayFen,
    d.overLimitFen,
    d.preSelfPayFen,
    external,
  ]);
}

/** Year-to-date state of one person for one settlement year, over active settlements. */
export interface YearState {
  yearBase: Record<string, Fen>; // by layer id
  used: Record<string, Fen>; // by annual-cap counter
}

export interface LayerResult {
  layerId: string;
  kind: LayerKind;
  fund: string;
  ruleId: string | null;
  external: boolean;
  baseFen: Fen;
  belowThresholdFen: Fen;
  rawFen: Fen;
  payFen: Fen;
  cappedBy: string | null;
}

export interface Totals {
  deductibleFen: Fen; // 实际支付起付线 act_pay_dedc
  insurancePayFen: Fen;
  criticalIllnessPayFen: Fen;
  aidPayFen: Fen;
  fundPayFen: Fen; // 基金支付总额 fund_pay_sumamt
  inScopeSelfPayFen: Fen;
  patientPayFen: Fen; // 个人负担 psn_part_amt
}

export interface Computation {
  inScopeFen: Fen; // 符合政策范围金额 inscp_scp_amt
  layers: LayerResult[];
  totals: Totals;
  /** What this settlement adds to the year's state; a reversal subtracts exactly this. */
  contributions: YearState;
}

export interface Eligibility {
  /** Effective category code, or "none". */
  category: string;
  /** True when the category requires an approval (审批表) and none covers the discharge date. */
  aidBlocked: boolean;
}

/** 符合政策范围金额: what the funds may pay on at all. Negative means the input is inconsistent. */
export function inScopeOf(d: Pick<Discharge, 'totalFen' | 'fullOwnPayFen' | 'overLimitFen' | 'preSelfPayFen'>): Fen {
  return d.totalFen - d.fullOwnPayFen - d.overLimitFen - d.preSelfPayFen;
}

/**
 * `fundRoomFen`: for each fund that may not be overdrawn (the policy's `funds` extension), what is
 * left of it for the discharge's region and year. Such a fund is one more limit of the layers it
 * pays, after the annual caps: `cappedBy: "fund:<code>"` when it is the one that binds.
 */
export function computeSettlement(
  policy: Policy,
  d: Discharge,
  who: Eligibility,
  year: YearState,
  fundRoomFen: Readonly<Record<string, Fen>> = {},
): Result<Computation> {
  const inScopeFen = inScopeOf(d);
  if (inScopeFen < 0) {
    return fail('VALIDATION_FAILED', 'totalFen is less than fullOwnPayFen + overLimitFen + preSelfPayFen', [
      { field: 'totalFen', problem: 'must be at least fullOwnPayFen + overLimitFen + preSelfPayFen' },
    ]);
  }
  const contributions: YearState = { yearBase: dict(), used: dict() };
  const layers: LayerResult[] = [];
  let remaining = inScopeFen;
  const fundLeft: Record<string, Fen> = dict(fundRoomFen); // less what earlier layers of this settlement took

  for (const layer of policy.layers) {
    const external = own(d.externalPayments, layer.id);
    if (external !== undefined) {
      if (external > remaining) {
        return fail(
          'VALIDATION_FAILED',
          `externalPayments.${layer.id} (${external}) is more than the ${remaining} fen left when that layer is reached`,
          [{ field: `externalPayments.${layer.id}`, problem: `must be at most ${remaining}` }],
        );
      }
      // An amount adjudicated elsewhere is still paid from the layer's fund (it is posted there),
      // so it takes from a fund that may not be overdrawn like any pay, and may not exceed it.
      const room = own(fundLeft, layer.fund);
      if (room !== undefined && external > room) {
        return fail(
          'VALIDATION_FAILED',
          `externalPayments.${layer.id} (${external}) is more than the ${room} fen fund ${layer.fund} has left for region ${d.region} in ${yearOf(d.dischargeDate)}`,
          [{ field: `externalPayments.${layer.id}`, problem: `must be at most ${room}, what fund ${layer.fund} has left` }],
        );
      }
      if (room !== undefined) setOwn(fundLeft, layer.fund, room - external);
      layers.push(layerResult(layer, null, true, remaining, 0, external, external, null));
      add(contributions.yearBase, layer.id, remaining);
      remaining -= external;
      continue;
    }
    const rule = who.aidBlocked && layer.kind === 'aid' ? undefined : layer.rules.find((r) => matches(r.match, d, who.category));
    if (rule === undefined) {
      layers.push(layerResult(layer, null, false, remaining, 0, 0, 0, null));
      continue;
    }
    const room = own(fundLeft, layer.fund);
    const r = applyRule(rule, remaining, layer.id, year, contributions, room === undefined ? undefined : [`fund:${layer.fund}`, room]);
    if (room !== undefined) setOwn(fundLeft, layer.fund, room - r.payFen);
    layers.push(layerResult(layer, rule.id, false, remaining, r.belowThresholdFen, r.rawFen, r.payFen, r.cappedBy));
    remaining -= r.payFen;
  }
  assert(remaining >= 0, 'layers never pay more than what remains');
  return ok({ inScopeFen, layers, totals: totalsOf(d, layers, remaining), contributions });
}

/** One layer's rule applied to what remains: threshold (起付线) and bands — or its fixed sum — then the caps. */
function applyRule(rule: Rule, baseFen: Fen, layerId: string, year: YearState, contributions: YearState, fundLimit?: [string, Fen]) {
  const { rawFen, belowThresholdFen } =
    rule.fixedSum === undefined
      ? bandsDue(rule, baseFen, layerId, year, contributions)
      : fixedSumDue(rule.id, rule.fixedSum, baseFen, year, contributions);
  const { payFen, cappedBy } = limited(rule, rawFen, baseFen, year, contributions, fundLimit);

  // The year's base counts every settlement in which the layer matched a rule (spec §6, "State").
  add(contributions.yearBase, layerId, baseFen);
  for (const cap of rule.annualCaps ?? []) add(contributions.used, cap.counter, payFen);
  if (rule.fixedSum !== undefined) add(contributions.used, fixedSumCounter(rule.id), payFen);
  assert(payFen >= 0 && payFen <= baseFen, 'a layer pays between 0 and its base');
  return { rawFen, payFen, cappedBy, belowThresholdFen };
}

/** What the bands give above the threshold, and the part of the base under it. */
function bandsDue(rule: Rule, baseFen: Fen, layerId: string, year: YearState, contributions: YearState) {
  // For per-year thresholds, the bands are in the coordinates of the year's cumulative base,
  // so a band pays on the part of this settlement that falls within it, whichever settlement
  // crossed the threshold.
  const perYear = rule.threshold?.per === 'year';
  const thresholdFen = rule.threshold?.fen ?? 0;
  const prevFen = perYear ? (own(year.yearBase, layerId) ?? 0) + (own(contributions.yearBase, layerId) ?? 0) : 0;
  const lo = Math.max(prevFen, thresholdFen);
  const hi = prevFen + baseFen;
  return {
    rawFen: roundHalfUpBp(bandNumerator(rule.bands ?? [], lo, hi)),
    belowThresholdFen: Math.min(baseFen, Math.max(0, thresholdFen - prevFen)),
  };
}

/**
 * 全费用定额救助 (README, "Fixed-sum rules"): `amountFen` when the base is above `aboveFen` and the
 * rule has not paid this person yet this year (its counter, fixedSumCounter, is 0); the caps and
 * the fund then limit it as any pay. `belowThresholdFen` is the part of the base at or under `aboveFen`.
 */
function fixedSumDue(ruleId: string, fixed: FixedSum, baseFen: Fen, year: YearState, contributions: YearState) {
  const counter = fixedSumCounter(ruleId);
  const paidBefore = (own(year.used, counter) ?? 0) + (own(contributions.used, counter) ?? 0);
  return {
    rawFen: baseFen > fixed.aboveFen && paidBefore === 0 ? fixed.amountFen : 0,
    belowThresholdFen: Math.min(baseFen, fixed.aboveFen),
  };
}

/** What a rule pays of `rawFen`: at most the base, the per-settlement cap, each annual cap's room and the fund's room. */
function limited(rule: Rule, rawFen: Fen, baseFen: Fen, year: YearState, contributions: YearState, fundLimit?: [string, Fen]) {
  const limits: Array<[string, Fen]> = [];
  if (rule.perSettlementCapFen !== undefined && rule.perSettlementCapFen !== null) limits.push(['settlement', rule.perSettlementCapFen]);
  for (const cap of rule.annualCaps ?? []) {
    const usedFen = (own(year.used, cap.counter) ?? 0) + (own(contributions.used, cap.counter) ?? 0);
    limits.push([cap.counter, Math.max(0, cap.capFen - usedFen)]);
  }
  if (fundLimit !== undefined) limits.push([fundLimit[0], Math.max(0, fundLimit[1])]);
  const payFen = Math.min(rawFen, baseFen, ...limits.map(([, fen]) => fen));
  const cappedBy = payFen === rawFen ? null : (limits.find(([, fen]) => fen === payFen)?.[0] ?? null);
  return { payFen, cappedBy };
}

/** Σ over bands of overlap((lo, hi], (upto_{i−1}, upto_i]) × ratioBp_i, in fen·bp. */
export function bandNumerator(bands: readonly Band[], lo: Fen, hi: Fen): number {
  let numerator = 0;
  let bandLo = 0;
  for (const band of bands) {
    const bandHi = band.uptoFen ?? Number.POSITIVE_INFINITY;
    const overlap = Math.max(0, Math.min(hi, bandHi) - Math.max(lo, bandLo));
    numerator += overlap * band.ratioBp;
    if (bandHi >= hi) break;
    bandLo = bandHi;
  }
  assert(Number.isSafeInteger(numerator), 'band numerator fits in a safe integer');
  return numerator;
}

/** One half-up rounding to 分 per layer: floor((n + 5000) / 10000), in exact integer arithmetic. */
export function roundHalfUpBp(numerator: number): Fen {
  const shifted = numerator + MAX_BP / 2;
  return (shifted - (shifted % MAX_BP)) / MAX_BP;
}

/** A rule's match holds when every present array contains the discharge's value. */
export function matches(match: Match | undefined, d: Discharge, category: string): boolean {
  if (match === undefined) return true;
  if (match.visitTypes && !match.visitTypes.includes(d.visitType)) return false;
  if (match.hospitalLevels && !match.hospitalLevels.includes(d.hospitalLevel)) return false;
  if (match.schemes && !match.schemes.includes(d.scheme)) return false;
  if (match.categories && !match.categories.includes(category || NO_CATEGORY)) return false;
  if (match.diagnosisPrefixes) {
    const prefixes = match.diagnosisPrefixes;
    if (!d.diagnosisCodes.some((code) => prefixes.some((p) => code.startsWith(p)))) return false;
  }
  return true;
}

/** The totals of spec §6, derived from the layer results. */
export function totalsOf(d: Discharge, layers: LayerResult[], remaining: Fen): Totals {
  let deductibleFen = 0;
  const byKind: Record<LayerKind, Fen> = { insurance: 0, critical_illness: 0, aid: 0 };
  for (const l of layers) {
    byKind[l.kind] += l.payFen;
    if (l.kind === 'insurance') deductibleFen += l.belowThresholdFen;
  }
  const fundPayFen = byKind.insurance + byKind.critical_illness + byKind.aid;
  const patientPayFen = d.totalFen - fundPayFen;
  assert(fundPayFen + patientPayFen === d.totalFen && patientPayFen >= 0, 'totalFen = fundPayFen + patientPayFen');
  return {
    deductibleFen,
    insurancePayFen: byKind.insurance,
    criticalIllnessPayFen: byKind.critical_illness,
    aidPayFen: byKind.aid,
    fundPayFen,
    inScopeSelfPayFen: remaining,
    patientPayFen,
  };
}

function layerResult(
  layer: Layer,
  ruleId: string | null,
  external: boolean,
  baseFen: Fen,
  belowThresholdFen: Fen,
  rawFen: Fen,
  payFen: Fen,
  cappedBy: string | null,
): LayerResult {
  return { layerId: layer.id, kind: layer.kind, fund: layer.fund, ruleId, external, baseFen, belowThresholdFen, rawFen, payFen, cappedBy };
}

function add(map: Record<string, Fen>, key: string, fen: Fen): void {
  setOwn(map, key, (own(map, key) ?? 0) + fen);
}
