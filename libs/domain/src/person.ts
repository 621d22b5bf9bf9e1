// The person aggregate (spec §4, §6, §7): one stream per person holds their categories,
// approvals (同步结算申请审批表), death record (死亡比对) and settlements, because the annual caps are
// per person — so the person stream is the consistency boundary that keeps two concurrent
// settlements from using the same cap room. decide() and evolve() are pure.
import {
  Computation,
  Discharge,
  Eligibility,
  LayerResult,
  Totals,
  YearState,
  computeSettlement,
  dischargeFingerprint,
  inScopeOf,
  totalsOf,
} from './calculation.js';
import type { AdjustmentAppliedData, PersonEvent, SettledData } from './events.js';
import { Policy } from './policy.js';
import { Fen, IsoDate, NO_CATEGORY, Result, assert, dayBefore, dict, fail, ok, own, setOwn, yearOf } from './primitives.js';

export interface Interval {
  from: IsoDate;
  to: IsoDate | null;
}
export interface Approval {
  approvalNo: string;
  validFrom: IsoDate;
  validTo: IsoDate;
}

/**
 * Everything recorded about a settlement, in full: the event's data (events.ts) with each layer's
 * result named, and the in-scope amount and totals that follow from them. Callers see this.
 */
export interface SettlementRecord extends Omit<SettledData, 'layers'> {
  inScopeFen: Fen;
  layers: LayerResult[];
  totals: Totals;
}

export function toSettledData(r: SettlementRecord): SettledData {
  return {
    settlementId: r.settlementId,
    fingerprint: r.fingerprint,
    discharge: r.discharge,
    policy: r.policy,
    year: r.year,
    category: r.category,
    aidBlockedReason: r.aidBlockedReason,
    layers: r.layers.map((l) => [l.ruleId, l.baseFen, l.belowThresholdFen, l.rawFen, l.payFen, l.cappedBy]),
    contributions: r.contributions,
  };
}

/** The full record of a recorded settlement, given the policy version it names. */
export function fromSettledData(s: SettledData, policy: Policy): SettlementRecord {
  assert(
    policy.policyId === s.policy.policyId && policy.version === s.policy.version,
    'a settlement is read with the policy version it names',
  );
  assert(policy.layers.length === s.layers.length, 'a settlement records one result per layer of its policy');
  let remaining = inScopeOf(s.discharge);
  const inScopeFen = remaining;
  const layers: LayerResult[] = s.layers.map(([ruleId, baseFen, belowThresholdFen, rawFen, payFen, cappedBy], i) => {
    const layer = policy.layers[i]!;
    remaining -= payFen;
    const external = own(s.discharge.externalPayments, layer.id) !== undefined;
    return {
      layerId: layer.id,
      kind: layer.kind,
      fund: layer.fund,
      ruleId,
      external,
      baseFen,
      belowThresholdFen,
      rawFen,
      payFen,
      cappedBy,
    };
  });
  const { settlementId, fingerprint, discharge, year, category, aidBlockedReason, contributions } = s;
  return {
    settlementId,
    fingerprint,
    discharge,
    policy: s.policy,
    year,
    category,
    aidBlockedReason,
    inScopeFen,
    layers,
    totals: totalsOf(discharge, layers, remaining),
    contributions,
  };
}

/** An applied adjustment as the person state keeps it, with the active settlement it belongs to. */
export interface AppliedAdjustment {
  adjustmentId: string;
  layerId: string;
  deltaFen: Fen;
}

export interface ActiveSettlement {
  settlementId: string;
  year: number;
  contributions: YearState;
  hospitalId: string;
  visitId: string;
  /** Approved adjustments of this settlement (adjustment.ts); `contributions` includes theirs, so a reversal removes them too. */
  adjustments?: readonly AppliedAdjustment[];
}

/**
 * The person's active (not reversed) settlements, newest first, as an immutable list: settling
 * adds one in O(1) instead of copying a map that grows with every settlement of the person.
 */
export interface ActiveList {
  readonly head: ActiveSettlement;
  readonly tail: ActiveList | null;
}

export interface PersonState {
  categories: Record<string, Interval[]>;
  approvals: Approval[];
  deathDate: IsoDate | null;
  years: Record<number, YearState>;
  active: ActiveList | null;
  /** Enrolment subsidies (资助参保) granted, by year: at most one per person and year. */
  subsidies?: Record<number, Fen>;
  /** Monitoring flags standing (HighMedicalCostFlagged, not cleared), by alertKey(year, thresholdId). */
  alerts?: Record<string, StandingAlert>;
}

export interface StandingAlert {
  year: number;
  thresholdId: string;
  per: 'settlement' | 'year';
  aboveFen: Fen;
  settlementId: string;
}

export const alertKey = (year: number, thresholdId: string) => `${year}/${thresholdId}`;

/**
 * The year's counter of the patient's self-pay (patientPayFen) over active settlements, kept only
 * under a policy with monitoring thresholds (README, "Monitoring thresholds"); reserved like fixed:….
 */
export const SELF_PAY_COUNTER = 'monitor:selfPay';

/** The self-pay of a year's active settlements, as its counter says (0 without monitoring). */
const yearSelfPay = (state: PersonState, year: number): Fen => own(state.years[year]?.used ?? {}, SELF_PAY_COUNTER) ?? 0;

/** Active settlements, oldest first. */
export function activeSettlements(state: PersonState): ActiveSettlement[] {
  const out: ActiveSettlement[] = [];
  for (let l = state.active; l !== null; l = l.tail) out.push(l.head);
  return out.reverse();
}

export function findActive(state: PersonState, settlementId: string): ActiveSettlement | undefined {
  for (let l = state.active; l !== null; l = l.tail) if (l.head.settlementId === settlementId) return l.head;
  return undefined;
}

/** The list without one settlement; the part after it is shared, the part before it copied. */
function withoutActive(list: ActiveList | null, settlementId: string): ActiveList | null {
  if (list === null) return null;
  if (list.head.settlementId === settlementId) return list.tail;
  return { head: list.head, tail: withoutActive(list.tail, settlementId) };
}

export type PersonCommand =
  | { type: 'AssignCategory'; personId: string; category: string; validFrom: IsoDate; validTo?: IsoDate }
  | { type: 'RevokeCategory'; personId: string; category: string; from: IsoDate }
  | { type: 'GrantApproval'; personId: string; approvalNo: string; validFrom: IsoDate; validTo: IsoDate }
  | { type: 'RecordDeath'; personId: string; date: IsoDate }
  | {
      type: 'SettleDischarge';
      discharge: Discharge;
      settlementId: string;
      policy: Policy;
      fingerprint?: string;
      fundRoomFen?: Readonly<Record<string, Fen>>;
    }
  | { type: 'ReverseSettlement'; personId: string; settlementId: string; hospitalId: string; visitId: string; reason: string };

/** What the decider needs to know beyond the person's own stream. */
export interface PersonContext {
  /** Category codes defined by at least one published policy. */
  isKnownCategory(code: string): boolean;
}

export const initialPersonState = (): PersonState => ({ categories: dict(), approvals: [], deathDate: null, years: {}, active: null });

export function decidePerson(command: PersonCommand, state: PersonState, ctx: PersonContext): Result<PersonEvent[]> {
  switch (command.type) {
    case 'AssignCategory':
    case 'RevokeCategory': {
      if (!ctx.isKnownCategory(command.category)) {
        return fail('UNKNOWN_CATEGORY', `category "${command.category}" is not defined by any published policy`, [
          { field: 'category', problem: 'is not defined by any published policy' },
        ]);
      }
      if (command.type === 'AssignCategory') {
        const { personId, category, validFrom } = command;
        if (command.validTo !== undefined && command.validTo < validFrom)
          return fail('VALIDATION_FAILED', 'validTo is before validFrom', [{ field: 'validTo', problem: 'must not be before validFrom' }]);
        return ok([{ type: 'CategoryAssigned', data: { personId, category, validFrom, validTo: command.validTo ?? null } }]);
      }
      const { personId, category, from } = command;
      return ok([{ type: 'CategoryRevoked', data: { personId, category, from } }]);
    }
    case 'GrantApproval': {
      const { personId, approvalNo, validFrom, validTo } = command;
      if (validTo < validFrom)
        return fail('VALIDATION_FAILED', 'validTo is before validFrom', [{ field: 'validTo', problem: 'must not be before validFrom' }]);
      return ok([{ type: 'ApprovalGranted', data: { personId, approvalNo, validFrom, validTo } }]);
    }
    case 'RecordDeath':
      return ok([{ type: 'DeathRecorded', data: { personId: command.personId, date: command.date } }]);
    case 'SettleDischarge': {
      const settled = settle(command.discharge, command.policy, command.settlementId, state, command.fingerprint, command.fundRoomFen);
      if (!settled.ok) return settled;
      return ok([{ type: 'DischargeSettled', data: toSettledData(settled.value) }, ...flagsOf(settled.value, command.policy, state)]);
    }
    case 'ReverseSettlement': {
      const reversed = findActive(state, command.settlementId);
      if (reversed === undefined) {
        return fail('ALREADY_REVERSED', `settlement of visit ${command.hospitalId}/${command.visitId} is already reversed`);
      }
      const { personId, settlementId, hospitalId, visitId, reason } = command;
      return ok([
        { type: 'SettlementReversed', data: { personId, settlementId, hospitalId, visitId, reason } },
        ...clearedBy(state, reversed, personId),
      ]);
    }
  }
}

/**
 * The monitoring thresholds a new settlement takes the person above for the first time in its
 * year (README, "Monitoring thresholds"): per settlement, its own self-pay; per year, the year's
 * self-pay over the active settlements with this one. A threshold already standing is not flagged again.
 */
export function flagsOf(r: SettlementRecord, policy: Policy, state: PersonState): PersonEvent[] {
  const out: PersonEvent[] = [];
  for (const t of policy.monitoring?.thresholds ?? []) {
    if (t.categories !== undefined && !t.categories.includes(r.category)) continue;
    if (state.alerts !== undefined && own(state.alerts, alertKey(r.year, t.id)) !== undefined) continue;
    const amountFen = t.per === 'settlement' ? r.totals.patientPayFen : yearSelfPay(state, r.year) + r.totals.patientPayFen;
    if (amountFen <= t.aboveFen) continue;
    out.push({
      type: 'HighMedicalCostFlagged',
      data: {
        personId: r.discharge.personId,
        year: r.year,
        thresholdId: t.id,
        per: t.per,
        aboveFen: t.aboveFen,
        amountFen,
        settlementId: r.settlementId,
        category: r.category,
        region: r.discharge.region,
        dischargeDate: r.discharge.dischargeDate,
      },
    });
  }
  return out;
}

/**
 * The flags of the reversed settlement's year that its reversal takes the person back under: per
 * year, when the year's self-pay left is at or under the line; per settlement, when no other
 * active settlement of the year is above it. The flag's own record says the line: no policy needed.
 */
export function clearedBy(state: PersonState, reversed: ActiveSettlement, personId: string): PersonEvent[] {
  if (state.alerts === undefined) return [];
  const out: PersonEvent[] = [];
  const selfPay = (s: ActiveSettlement) => own(s.contributions.used, SELF_PAY_COUNTER) ?? 0;
  for (const alert of Object.values(state.alerts)) {
    if (alert.year !== reversed.year) continue;
    let amountFen: Fen;
    if (alert.per === 'year') amountFen = yearSelfPay(state, alert.year) - selfPay(reversed);
    else
      amountFen = Math.max(
        0,
        ...activeSettlements(state)
          .filter((s) => s.year === alert.year && s.settlementId !== reversed.settlementId)
          .map(selfPay),
      );
    if (amountFen > alert.aboveFen) continue;
    out.push({
      type: 'HighMedicalCostCleared',
      data: { personId, year: alert.year, thresholdId: alert.thresholdId, amountFen, settlementId: reversed.settlementId },
    });
  }
  return out;
}

/**
 * Settles (or previews) a discharge against the person's current state. The caller has already
 * done the duplicate check and chosen the policy in force; the remaining checks run in the
 * order of spec §8.
 */
export function settle(
  d: Discharge,
  policy: Policy,
  settlementId: string,
  state: PersonState,
  fingerprint?: string,
  fundRoomFen?: Readonly<Record<string, Fen>>,
): Result<SettlementRecord> {
  for (const layerId of Object.keys(d.externalPayments)) {
    if (!policy.layers.some((l) => l.id === layerId)) {
      return fail(
        'VALIDATION_FAILED',
        `externalPayments names "${layerId}", which is not a layer of policy ${policy.policyId} v${policy.version}`,
        [{ field: `externalPayments.${layerId}`, problem: 'is not a layer of the applied policy' }],
      );
    }
  }
  if (state.deathDate !== null && d.admissionDate > state.deathDate) {
    return fail(
      'PERSON_DECEASED',
      `person ${d.personId} was recorded deceased on ${state.deathDate}, before admission on ${d.admissionDate}`,
      [{ field: 'admissionDate', problem: `is after the recorded date of death ${state.deathDate}` }],
    );
  }
  const who = eligibility(state, policy, d.dischargeDate);
  const year = yearOf(d.dischargeDate);
  const computed: Result<Computation> = computeSettlement(policy, d, who, state.years[year] ?? { yearBase: {}, used: {} }, fundRoomFen);
  if (!computed.ok) return computed;
  const c = computed.value;
  // Under monitoring thresholds the year also counts the patient's self-pay (reversal removes it with the rest).
  if (policy.monitoring !== undefined) setOwn(c.contributions.used, SELF_PAY_COUNTER, c.totals.patientPayFen);
  return ok({
    settlementId,
    // The service passes a digest of the canonical form; without one, the canonical form itself.
    fingerprint: fingerprint ?? dischargeFingerprint(d),
    discharge: d,
    policy: { policyId: policy.policyId, version: policy.version },
    year,
    category: who.category,
    aidBlockedReason: who.aidBlocked ? 'APPROVAL_REQUIRED' : null,
    inScopeFen: c.inScopeFen,
    layers: c.layers,
    totals: c.totals,
    contributions: c.contributions,
  });
}

/**
 * Effective category: the first of the policy's categories (most favourable first) that the
 * person holds on the discharge date — a person with several identities is aided under the
 * highest one only (按较高一类救助, 不重复救助).
 */
export function eligibility(state: PersonState, policy: Policy, date: IsoDate): Eligibility {
  const held = policy.categories.find((c) =>
    (own(state.categories, c.code) ?? []).some((i) => i.from <= date && (i.to === null || date <= i.to)),
  );
  if (held === undefined) return { category: NO_CATEGORY, aidBlocked: false };
  const approved = state.approvals.some((a) => a.validFrom <= date && date <= a.validTo);
  return { category: held.code, aidBlocked: held.requiresApproval === true && !approved };
}

export function evolvePerson(state: PersonState, event: PersonEvent): PersonState {
  switch (event.type) {
    case 'CategoryAssigned': {
      const { category, validFrom, validTo } = event.data;
      const intervals = [...(own(state.categories, category) ?? []), { from: validFrom, to: validTo }];
      return { ...state, categories: withEntry(state.categories, category, intervals) };
    }
    case 'CategoryRevoked': {
      // Every interval ends on the day before `from`; those starting on or after it disappear.
      const { category, from } = event.data;
      const lastDay = dayBefore(from);
      const intervals = (own(state.categories, category) ?? [])
        .filter((i) => i.from < from)
        .map((i) => (i.to === null || i.to > lastDay ? { from: i.from, to: lastDay } : i));
      return { ...state, categories: withEntry(state.categories, category, intervals) };
    }
    case 'ApprovalGranted': {
      const { approvalNo, validFrom, validTo } = event.data;
      return { ...state, approvals: [...state.approvals, { approvalNo, validFrom, validTo }] };
    }
    case 'DeathRecorded':
      return { ...state, deathDate: event.data.date };
    case 'DischargeSettled': {
      const s = event.data;
      const head: ActiveSettlement = {
        settlementId: s.settlementId,
        year: s.year,
        contributions: s.contributions,
        hospitalId: s.discharge.hospitalId,
        visitId: s.discharge.visitId,
      };
      return {
        ...state,
        active: { head, tail: state.active },
        years: { ...state.years, [s.year]: applyContributions(state.years[s.year], s.contributions, 1) },
      };
    }
    case 'SettlementReversed': {
      // A reversal removes exactly what the settlement added; other settlements are not recomputed.
      const reversed = findActive(state, event.data.settlementId);
      if (reversed === undefined) return state;
      const active = withoutActive(state.active, event.data.settlementId);
      return {
        ...state,
        active,
        years: { ...state.years, [reversed.year]: applyContributions(state.years[reversed.year], reversed.contributions, -1) },
      };
    }
    case 'EnrolmentSubsidyGranted':
      return { ...state, subsidies: { ...state.subsidies, [event.data.year]: event.data.amountFen } };
    case 'AdjustmentApplied':
      return applyAdjustment(state, event.data);
    case 'HighMedicalCostFlagged': {
      const { year, thresholdId, per, aboveFen, settlementId } = event.data;
      return {
        ...state,
        alerts: withEntry(state.alerts ?? dict(), alertKey(year, thresholdId), { year, thresholdId, per, aboveFen, settlementId }),
      };
    }
    case 'HighMedicalCostCleared': {
      const alerts = dict(state.alerts);
      delete alerts[alertKey(event.data.year, event.data.thresholdId)];
      return { ...state, alerts };
    }
  }
}

/**
 * evolvePerson's AdjustmentApplied: the adjustment joins its active settlement — its contributions
 * are added to the settlement's, so a reversal removes both at once — and moves the year's counters.
 * Applied twice, or to a settlement no longer active, it changes nothing.
 */
function applyAdjustment(state: PersonState, a: AdjustmentAppliedData): PersonState {
  const target = findActive(state, a.settlementId);
  if (target === undefined || target.adjustments?.some((x) => x.adjustmentId === a.adjustmentId)) return state;
  const updated: ActiveSettlement = {
    ...target,
    contributions: applyContributions(target.contributions, a.contributions, 1),
    adjustments: [...(target.adjustments ?? []), { adjustmentId: a.adjustmentId, layerId: a.layerId, deltaFen: a.deltaFen }],
  };
  return {
    ...state,
    active: replaceActive(state.active, updated),
    years: { ...state.years, [target.year]: applyContributions(state.years[target.year], a.contributions, 1) },
  };
}

/** The list with one settlement replaced; the part after it is shared, the part before it copied. */
function replaceActive(list: ActiveList | null, updated: ActiveSettlement): ActiveList | null {
  if (list === null) return null;
  if (list.head.settlementId === updated.settlementId) return { head: updated, tail: list.tail };
  return { head: list.head, tail: replaceActive(list.tail, updated) };
}

function applyContributions(year: YearState | undefined, c: YearState, sign: 1 | -1): YearState {
  return { yearBase: added(year?.yearBase, c.yearBase, sign), used: added(year?.used, c.used, sign) };
}

/** A copy of `base` with sign × `delta` added key by key (own keys only; "__proto__" is data). */
function added(base: Readonly<Record<string, Fen>> | undefined, delta: Readonly<Record<string, Fen>>, sign: 1 | -1): Record<string, Fen> {
  const next = dict(base);
  for (const k of Object.keys(delta)) setOwn(next, k, (own(next, k) ?? 0) + sign * delta[k]!); // an own key shadows the prototype's accessor
  return next;
}

function withEntry<V>(map: Record<string, V>, key: string, value: V): Record<string, V> {
  const next = dict(map);
  setOwn(next, key, value);
  return next;
}
