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
  HighMedicalCostClearedData,
  HighMedicalCostFlaggedData,
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
/** An active settlement, as compact as the report allows. */
export interface SettlementFact {
  personId: string;
  region: string;
  category: string;
  visitType: VisitType;
  totalFen: Fen;
  inScopeFen: Fen;
  /** The policy version (policyKey) whose layers these are. */
  policy: string;
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

/**
 * A monitoring flag of a person, year and threshold (HighMedicalCostFlagged): the latest flag's
 * figures, and whether it stands (a HighMedicalCostCleared ended it; a later flag raises it again).
 */
export interface AlertFact {
  personId: string;
  year: number;
  thresholdId: string;
  per: 'settlement' | 'year';
  aboveFen: Fen;
  category: string;
  region: string;
  standing: boolean;
}

/** Events the fold could not place: each one is a log the auditor should look at. */
export interface ReportAnomalies {
  settlementsWithoutPolicy: number;
  repeatedSettlementIds: number;
  reversalsOfInactiveSettlements: number;
  adjustmentsOfInactiveSettlements: number;
  adjustmentsOfUnknownLayers: number;
  repeatedSubsidies: number;
  /** HighMedicalCostCleared of a person, year and threshold with no standing flag. */
  clearingsWithoutFlag: number;
}

/**
 * What grows with history — the active settlements, the subsidies, the allocations — kept behind
 * this interface, so that one fold has two backings: maps in memory (an audit's pass over the whole
 * log, `MemoryReportFacts`) and tables on disk next to the journal (the service's projection,
 * libs/ledger/src/report-tables.ts). Calls are synchronous: the disk backing is SQLite in the
 * writer's transaction.
 */
export interface ReportFacts {
  /** Records an active settlement; false (and nothing changes) when one with that id is active already. */
  addSettlement(settlementId: string, year: number, fact: SettlementFact): boolean;
  /** Removes an active settlement; false when none with that id is active. */
  removeSettlement(settlementId: string): boolean;
  /** An active settlement (its layers resolved against `policies`), or undefined. */
  settlement(settlementId: string, policies: ReadonlyMap<string, Policy>): SettlementFact | undefined;
  /** Stores a settlement's adjustments after the fold appended one. */
  setAdjustments(settlementId: string, adjustments: readonly AdjustmentFact[]): void;
  /** Records a subsidy; false (and nothing changes) when the person has one for that year already. */
  addSubsidy(subsidy: Subsidy): boolean;
  allocation(fund: string, region: string, year: number): Allocation | undefined;
  putAllocation(allocation: Allocation): void;
  /** The year's active settlements (any order), subsidies and allocations. */
  settlementsOf(year: number, policies: ReadonlyMap<string, Policy>): Iterable<SettlementFact>;
  subsidiesOf(year: number): Iterable<Subsidy>;
  allocationsOf(year: number): Iterable<Allocation>;
  /** A person's flag for a year and threshold, or undefined; put records it (new or changed). */
  alert(personId: string, year: number, thresholdId: string): AlertFact | undefined;
  putAlert(alert: AlertFact): void;
  /** The year's flags, standing or cleared (any order). */
  alertsOf(year: number): Iterable<AlertFact>;
}

/** The backing in memory: an audit's fold of the whole log. */
export class MemoryReportFacts implements ReportFacts {
  /** Active settlements by settlement year, then id; a reversal deletes. */
  private readonly byYear = new Map<number, Map<string, SettlementFact>>();
  private readonly yearOf = new Map<string, number>();
  /** One per person and year (the grant's event id makes it idempotent). */
  private readonly subsidies = new Map<string, Subsidy>();
  private readonly allocations = new Map<string, Allocation>();
  private readonly alerts = new Map<string, AlertFact>();

  addSettlement(settlementId: string, year: number, fact: SettlementFact): boolean {
    if (this.yearOf.has(settlementId)) return false;
    let facts = this.byYear.get(year);
    if (facts === undefined) this.byYear.set(year, (facts = new Map()));
    facts.set(settlementId, fact);
    this.yearOf.set(settlementId, year);
    return true;
  }
  removeSettlement(settlementId: string): boolean {
    const year = this.yearOf.get(settlementId);
    if (year === undefined) return false;
    this.byYear.get(year)!.delete(settlementId);
    this.yearOf.delete(settlementId);
    return true;
  }
  settlement(settlementId: string): SettlementFact | undefined {
    const year = this.yearOf.get(settlementId);
    return year === undefined ? undefined : this.byYear.get(year)!.get(settlementId);
  }
  setAdjustments(): void {
    // the fact in memory is the one the fold appended to
  }
  addSubsidy(subsidy: Subsidy): boolean {
    const key = `${subsidy.personId}\u0000${subsidy.year}`;
    if (this.subsidies.has(key)) return false;
    this.subsidies.set(key, subsidy);
    return true;
  }
  allocation(fund: string, region: string, year: number): Allocation | undefined {
    return this.allocations.get(fundKey(fund, region, year));
  }
  putAllocation(a: Allocation): void {
    this.allocations.set(fundKey(a.fund, a.region, a.year), a);
  }
  settlementsOf(year: number): Iterable<SettlementFact> {
    return this.byYear.get(year)?.values() ?? [];
  }
  *subsidiesOf(year: number): Iterable<Subsidy> {
    for (const s of this.subsidies.values()) if (s.year === year) yield s;
  }
  *allocationsOf(year: number): Iterable<Allocation> {
    for (const a of this.allocations.values()) if (a.year === year) yield a;
  }
  alert(personId: string, year: number, thresholdId: string): AlertFact | undefined {
    return this.alerts.get(alertFactKey(personId, year, thresholdId));
  }
  putAlert(a: AlertFact): void {
    this.alerts.set(alertFactKey(a.personId, a.year, a.thresholdId), a);
  }
  *alertsOf(year: number): Iterable<AlertFact> {
    for (const a of this.alerts.values()) if (a.year === year) yield a;
  }
}

const alertFactKey = (personId: string, year: number, thresholdId: string) => `${personId}\u0000${year}\u0000${thresholdId}`;

/** The small part of the state (policies and their names and orders, counters), kept whole wherever the facts are. */
export interface ReportState {
  /** Global position of the last event folded, and how many events were folded. */
  position: number;
  events: number;
  policies: Map<string, Policy>;
  /** Display order: first appearance in the published policies, each policy's list in its order. */
  categoryOrder: Map<string, { rank: number; name: string }>;
  layerOrder: Map<string, number>;
  fundNames: Map<string, string>;
  anomalies: ReportAnomalies;
  facts: ReportFacts;
}

export const noReportAnomalies = (): ReportAnomalies => ({
  settlementsWithoutPolicy: 0,
  repeatedSettlementIds: 0,
  reversalsOfInactiveSettlements: 0,
  adjustmentsOfInactiveSettlements: 0,
  adjustmentsOfUnknownLayers: 0,
  repeatedSubsidies: 0,
  clearingsWithoutFlag: 0,
});

export const initialReportState = (facts: ReportFacts = new MemoryReportFacts()): ReportState => ({
  position: 0,
  events: 0,
  policies: new Map(),
  categoryOrder: new Map(),
  layerOrder: new Map(),
  fundNames: new Map(),
  anomalies: noReportAnomalies(),
  facts,
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
    case 'HighMedicalCostFlagged':
      return onFlagged(state, event.data as HighMedicalCostFlaggedData);
    case 'HighMedicalCostCleared':
      return onCleared(state, event.data as HighMedicalCostClearedData);
    default:
      return; // events that change no figure of the report
  }
}

/** Publishes a policy into the state (also how a disk backing rebuilds names and orders from its stored policies). */
export function onPolicy(state: ReportState, policy: Policy): void {
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
  const key = policyKey(data.policy.policyId, data.policy.version);
  const policy = state.policies.get(key);
  if (policy === undefined) {
    state.anomalies.settlementsWithoutPolicy += 1;
    return;
  }
  const r = fromSettledData(data, policy);
  const d = r.discharge;
  const fact: SettlementFact = {
    personId: d.personId,
    region: d.region,
    category: r.category,
    visitType: d.visitType,
    totalFen: d.totalFen,
    inScopeFen: r.inScopeFen,
    policy: key,
    layers: policy.layers,
    pays: r.layers.map((l) => l.payFen),
    adjustments: [],
  };
  if (state.facts.addSettlement(r.settlementId, r.year, fact)) return;
  // The same id again: the later one replaces the earlier (as a reversal would), and the auditor is told.
  state.anomalies.repeatedSettlementIds += 1;
  state.facts.removeSettlement(r.settlementId);
  state.facts.addSettlement(r.settlementId, r.year, fact);
}

function onReversed(state: ReportState, settlementId: string): void {
  if (!state.facts.removeSettlement(settlementId)) state.anomalies.reversalsOfInactiveSettlements += 1;
}

function onAdjustment(state: ReportState, a: AdjustmentAppliedData): void {
  const fact = state.facts.settlement(a.settlementId, state.policies);
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
  state.facts.setAdjustments(a.settlementId, fact.adjustments);
}

function onSubsidy(state: ReportState, s: EnrolmentSubsidyGrantedData): void {
  assert(Number.isSafeInteger(s.amountFen) && s.amountFen >= 0, 'a subsidy is a non-negative integer number of fen');
  const subsidy: Subsidy = {
    personId: s.personId,
    year: s.year,
    region: s.region,
    category: s.category,
    amountFen: s.amountFen,
    fromFund: s.fromFund,
    toFund: s.toFund,
  };
  if (!state.facts.addSubsidy(subsidy)) state.anomalies.repeatedSubsidies += 1;
}

function onAllocation(state: ReportState, a: FundAllocatedData): void {
  assert(ALLOCATION_SOURCES.includes(a.source), `an allocation's source is one of ${ALLOCATION_SOURCES.join(', ')}`);
  assert(Number.isSafeInteger(a.amountFen) && a.amountFen > 0, 'an allocation is a positive integer number of fen');
  const found = state.facts.allocation(a.fund, a.region, a.year) ?? {
    year: a.year,
    fund: a.fund,
    region: a.region,
    fen: { superior: 0, local: 0, carryover: 0 },
  };
  found.fen[a.source] += a.amountFen;
  state.facts.putAllocation(found);
}

function onFlagged(state: ReportState, f: HighMedicalCostFlaggedData): void {
  const { personId, year, thresholdId, per, aboveFen, category, region } = f;
  state.facts.putAlert({ personId, year, thresholdId, per, aboveFen, category, region, standing: true });
}

function onCleared(state: ReportState, c: HighMedicalCostClearedData): void {
  const found = state.facts.alert(c.personId, c.year, c.thresholdId);
  if (found === undefined || !found.standing) {
    state.anomalies.clearingsWithoutFlag += 1;
    return;
  }
  state.facts.putAlert({ ...found, standing: false });
}
