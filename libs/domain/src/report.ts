// The report projection: what the year report (report-year.ts) is built from, folded from the
// event log in global order and nothing else — the active settlements (a reversal removes one, with
// the adjustments applied to it), fund allocations, enrolment subsidies, and the published policies
// that give each settlement's layers their kind and fund. Pure, no I/O.
import {
  ALLOCATION_SOURCES,
  AdjustmentAppliedData,
  AllocationSource,
  EnrolmentSubsidyGrantedData,
  FundAllocatedData,
  SettledData,
} from './events.js';
import { fundKey } from './funds.js';
import { fromSettledData } from './person.js';
import { LayerKind, Policy } from './policy.js';
import { assert, Fen, VisitType } from './primitives.js';
import { policyKey } from './visit.js';

/** What the fold reads of an event: its type, data and global position. */
export interface ReportEvent {
  type: string;
  data: unknown;
  position: number;
}

export interface LayerRef {
  id: string;
  kind: LayerKind;
  fund: string;
}
export interface AdjustmentFact {
  layer: number;
  fund: string;
  region: string;
  deltaFen: number;
}
/** An active settlement, as compact as the report allows: 100,000 of them stay in memory. */
export interface SettlementFact {
  person: number; // the person's number in ReportState.persons: sets of small integers count distinct persons fastest
  region: string;
  category: string;
  visitType: VisitType;
  totalFen: Fen;
  inScopeFen: Fen;
  layers: readonly LayerRef[]; // the policy version's layers, shared by all its settlements
  pays: Fen[]; // payFen per layer, as settled
  adjustments: AdjustmentFact[]; // applied adjustments: they go with the settlement, and leave with its reversal
}
export interface Allocation {
  year: number;
  fund: string;
  region: string;
  fen: Record<AllocationSource, Fen>;
}
/** What the report keeps of a subsidy. */
export type Subsidy = Omit<EnrolmentSubsidyGrantedData, 'policy' | 'asOf'>;

/** Events the fold could not place: each one is a log the auditor should look at. */
export interface ReportAnomalies {
  settlementsWithoutPolicy: number;
  repeatedSettlementIds: number;
  reversalsOfInactiveSettlements: number;
  adjustmentsOfInactiveSettlements: number;
  adjustmentsOfUnknownLayers: number;
  repeatedSubsidies: number;
}

export interface ReportState {
  /** Global position of the last event folded, and how many events were folded. */
  position: number;
  events: number;
  policies: Map<string, Policy>;
  /** Every person settled, numbered in order of first settlement. */
  persons: Map<string, number>;
  /** Display order: first appearance in the published policies, each policy's list in its order. */
  categoryOrder: Map<string, { rank: number; name: string }>;
  layerOrder: Map<string, number>;
  fundNames: Map<string, string>;
  /** Active settlements by settlement year, then id; a reversal deletes. */
  settlements: Map<number, Map<string, SettlementFact>>;
  yearOfSettlement: Map<string, number>;
  allocations: Map<string, Allocation>;
  /** One per person and year (the grant's event id makes it idempotent). */
  subsidies: Map<string, Subsidy>;
  anomalies: ReportAnomalies;
}

export const initialReportState = (): ReportState => ({
  position: 0,
  events: 0,
  policies: new Map(),
  persons: new Map(),
  categoryOrder: new Map(),
  layerOrder: new Map(),
  fundNames: new Map(),
  settlements: new Map(),
  yearOfSettlement: new Map(),
  allocations: new Map(),
  subsidies: new Map(),
  anomalies: {
    settlementsWithoutPolicy: 0,
    repeatedSettlementIds: 0,
    reversalsOfInactiveSettlements: 0,
    adjustmentsOfInactiveSettlements: 0,
    adjustmentsOfUnknownLayers: 0,
    repeatedSubsidies: 0,
  },
});

/**
 * Folds one event into the state, in place: the state is a projection owned by one reader and
 * rebuilt from the log, and copying maps of 100,000 settlements per event would make the fold
 * quadratic. Events must come in global order (a settlement's policy is always before it).
 */
export function applyReportEvent(state: ReportState, event: ReportEvent): void {
  assert(event.position > state.position, 'events are folded in global order, each once');
  state.position = event.position;
  state.events += 1;
  switch (event.type) {
    case 'PolicyPublished':
      return onPolicy(state, (event.data as { policy: Policy }).policy);
    case 'DischargeSettled':
      return onSettled(state, event.data as SettledData);
    case 'SettlementReversed':
      return onReversed(state, (event.data as { settlementId: string }).settlementId);
    case 'AdjustmentApplied':
      return onAdjustment(state, event.data as AdjustmentAppliedData);
    case 'EnrolmentSubsidyGranted':
      return onSubsidy(state, event.data as EnrolmentSubsidyGrantedData);
    case 'FundAllocated':
      return onAllocation(state, event.data as FundAllocatedData);
    default:
      return; // events that change no figure of the report
  }
}

function onPolicy(state: ReportState, policy: Policy): void {
  const key = policyKey(policy.policyId, policy.version);
  if (state.policies.has(key)) return;
  state.policies.set(key, policy);
  // Names follow the latest publication; the order stays that of first appearance.
  for (const c of policy.categories)
    state.categoryOrder.set(c.code, { rank: state.categoryOrder.get(c.code)?.rank ?? state.categoryOrder.size, name: c.name });
  for (const l of policy.layers) if (!state.layerOrder.has(l.id)) state.layerOrder.set(l.id, state.layerOrder.size);
  for (const f of policy.funds ?? []) if (f.name !== undefined) state.fundNames.set(f.code, f.name);
}

function onSettled(state: ReportState, data: SettledData): void {
  const policy = state.policies.get(policyKey(data.policy.policyId, data.policy.version));
  if (policy === undefined) {
    state.anomalies.settlementsWithoutPolicy += 1;
    return;
  }
  const r = fromSettledData(data, policy);
  if (state.yearOfSettlement.has(r.settlementId)) {
    state.anomalies.repeatedSettlementIds += 1;
    onReversed(state, r.settlementId);
  }
  const d = r.discharge;
  const fact: SettlementFact = {
    person: personNumber(state, d.personId),
    region: d.region,
    category: r.category,
    visitType: d.visitType,
    totalFen: d.totalFen,
    inScopeFen: r.inScopeFen,
    layers: policy.layers,
    pays: r.layers.map((l) => l.payFen),
    adjustments: [],
  };
  let year = state.settlements.get(r.year);
  if (year === undefined) state.settlements.set(r.year, (year = new Map()));
  year.set(r.settlementId, fact);
  state.yearOfSettlement.set(r.settlementId, r.year);
}

function personNumber(state: ReportState, personId: string): number {
  let n = state.persons.get(personId);
  if (n === undefined) state.persons.set(personId, (n = state.persons.size));
  return n;
}

function activeFact(state: ReportState, settlementId: string): SettlementFact | undefined {
  const year = state.yearOfSettlement.get(settlementId);
  return year === undefined ? undefined : state.settlements.get(year)?.get(settlementId);
}

function onReversed(state: ReportState, settlementId: string): void {
  const year = state.yearOfSettlement.get(settlementId);
  if (year === undefined) {
    state.anomalies.reversalsOfInactiveSettlements += 1;
    return;
  }
  state.settlements.get(year)?.delete(settlementId);
  state.yearOfSettlement.delete(settlementId);
}

function onAdjustment(state: ReportState, a: AdjustmentAppliedData): void {
  const fact = activeFact(state, a.settlementId);
  if (fact === undefined) {
    state.anomalies.adjustmentsOfInactiveSettlements += 1;
    return;
  }
  const layer = fact.layers.findIndex((l) => l.id === a.layerId);
  if (layer < 0) {
    state.anomalies.adjustmentsOfUnknownLayers += 1;
    return;
  }
  assert(Number.isSafeInteger(a.deltaFen), 'an adjustment moves an integer number of fen');
  fact.adjustments.push({ layer, fund: a.fund, region: a.region, deltaFen: a.deltaFen });
}

function onSubsidy(state: ReportState, s: EnrolmentSubsidyGrantedData): void {
  const key = `${s.personId}\u0000${s.year}`;
  if (state.subsidies.has(key)) {
    state.anomalies.repeatedSubsidies += 1;
    return;
  }
  assert(Number.isSafeInteger(s.amountFen) && s.amountFen >= 0, 'a subsidy is a non-negative integer number of fen');
  state.subsidies.set(key, {
    personId: s.personId,
    year: s.year,
    region: s.region,
    category: s.category,
    amountFen: s.amountFen,
    fromFund: s.fromFund,
    toFund: s.toFund,
  });
}

function onAllocation(state: ReportState, a: FundAllocatedData): void {
  assert(ALLOCATION_SOURCES.includes(a.source), `an allocation's source is one of ${ALLOCATION_SOURCES.join(', ')}`);
  assert(Number.isSafeInteger(a.amountFen) && a.amountFen > 0, 'an allocation is a positive integer number of fen');
  const key = fundKey(a.fund, a.region, a.year);
  const found = state.allocations.get(key) ?? {
    year: a.year,
    fund: a.fund,
    region: a.region,
    fen: { superior: 0, local: 0, carryover: 0 },
  };
  found.fen[a.source] += a.amountFen;
  state.allocations.set(key, found);
}
