// "What would it have cost?" — every discharge settled in a year, settled again under draft
// policies, in memory, in the log's order, and compared with what was actually paid.
//
// One pass over the event log feeds the actual world (the service's read model, every event as
// recorded) and, per draft, a world of its own: the same read model fed the same events, except
// that each settlement in scope (its year, its region) is replaced by the draft's own result for
// that discharge, decided on that world's state — the person's categories, approvals and death as
// recorded up to then, the year's counters and caps as the draft's earlier settlements left them,
// and the draft world's fund balances for funds that may not be overdrawn. A settlement the
// draft cannot settle (a category it does not define …) is counted and listed, and left out of
// that world together with its reversal and adjustments. Reversals apply in both worlds (a
// reversed settlement counts in neither). Nothing is written anywhere.
import {
  PERSON_STREAM_PREFIX,
  evolvePerson,
  initialPersonState,
  type FundAccount,
  type PersonEvent,
  type PersonState,
  applyPolicyPublished,
  fail,
  inScopeOf,
  initialPolicyRegistry,
  policyKey,
  fundRoomFor,
  NO_CATEGORY,
  POLICY_LIMITS,
  settle,
  toSettledData,
  type Fen,
  type MonitoringThreshold,
  type Policy,
  type Result,
  type SettledData,
  type SettlementRecord,
} from '#domain';
import type { RecordedEvent } from '#event-store';
import { ReadModel } from '../shared/read-model.js';

export interface WhatIfOptions {
  year: number;
  region: string;
  /** Annual self-pay (patientPayFen) thresholds, in fen: persons above each are counted before and after. */
  thresholdsFen: Fen[];
  /** How many of the largest changes per person to list. */
  topChanges: number;
}

/** One side of a comparison: the active settlements of the year in scope, summed. */
export interface Totals {
  /** 人次: active settlements. */
  settlements: number;
  /** 人数: distinct persons. */
  persons: number;
  totalFen: Fen;
  inScopeFen: Fen;
  fundPayFen: Fen;
  patientPayFen: Fen;
  byKind: Record<string, Fen>;
  byLayer: Record<string, Fen>;
  byFund: Record<string, Fen>;
  byCategory: Record<string, { settlements: number; persons: number; fundPayFen: Fen; patientPayFen: Fen }>;
  byVisitType: Record<string, { settlements: number; fundPayFen: Fen; patientPayFen: Fen }>;
  /** The patient's share of the person's year (patientPay / total), in basis points: p10, p20 … p100. */
  shareDecilesBp: number[];
  shareDecilesBpByCategory: Record<string, number[]>;
  /** Persons whose year's patientPayFen is above each threshold. */
  personsAboveThreshold: Record<string, number>;
}

export interface DraftOutcome {
  policyId: string;
  version: number;
  name: string | null;
  totals: Totals;
  /** Settlements (active at the end) the draft cannot settle: counted, and the first 100 listed. */
  unsettled: {
    count: number;
    byCode: Record<string, number>;
    listed: Array<{ settlementId: string; personId: string; code: string; message: string }>;
  };
  /** The persons whose year's patient pay changes most (ids only), largest first. */
  largestChanges: Array<{ personId: string; actualPatientPayFen: Fen; draftPatientPayFen: Fen; deltaFen: Fen }>;
  /** Settlements whose every layer and total equals the actual one. */
  identicalSettlements: number;
  /**
   * The draft's own monitoring thresholds (README, "Monitoring thresholds"): persons above each at
   * the end of the year, actually and under the draft (the rules of HighMedicalCostFlagged applied
   * to the active settlements, in their order).
   */
  monitoring: Array<{ thresholdId: string; per: 'settlement' | 'year'; aboveFen: Fen; actualPersons: number; draftPersons: number }>;
}

export interface WhatIfResult {
  year: number;
  region: string;
  events: number;
  /** Settlements of the year in scope that were ever recorded (reversed ones included). */
  settledInScope: number;
  actual: Totals;
  drafts: DraftOutcome[];
}

const MAX_LISTED = 100;

/** A layer's identity, shared by every line settled under one policy version. */
export interface LayerMeta {
  layerId: string;
  kind: string;
  fund: string;
}

/**
 * What the comparison keeps of a settlement: its figures, and whether a draft's result equals the
 * actual one (every layer's rule and amounts, the category and the totals), decided when it is
 * settled. A year of a million settlements fits in a few hundred MB per world this way; full
 * records would not.
 */
export interface Line {
  settlementId: string;
  personId: string;
  category: string;
  visitType: string;
  totalFen: Fen;
  inScopeFen: Fen;
  fundPayFen: Fen;
  patientPayFen: Fen;
  meta: readonly LayerMeta[];
  pays: Fen[];
  identical: boolean;
}

/** Drafts get versions no published policy can have, so a draft never collides with one in the log. */
const DRAFT_VERSION_BASE = POLICY_LIMITS.maxVersion + 1;

const metaOf = new WeakMap<Policy, LayerMeta[]>();

/** The layers of a policy as lines name them (one array per policy, shared). */
function layerMeta(policy: Policy): LayerMeta[] {
  let meta = metaOf.get(policy);
  if (meta === undefined) {
    meta = policy.layers.map((l) => ({ layerId: l.id, kind: l.kind, fund: l.fund }));
    metaOf.set(policy, meta);
  }
  return meta;
}

/** A settlement as recorded (SettledData) under `policy`: its totals follow from its layers (spec §6). */
export function lineOf(s: SettledData, policy: Policy, identical: boolean): Line {
  const pays = s.layers.map((l) => l[4]);
  let fundPayFen = 0;
  for (const pay of pays) fundPayFen += pay;
  const d = s.discharge;
  return {
    settlementId: s.settlementId,
    personId: d.personId,
    category: s.category,
    visitType: d.visitType,
    totalFen: d.totalFen,
    inScopeFen: inScopeOf(d),
    fundPayFen,
    patientPayFen: d.totalFen - fundPayFen,
    meta: layerMeta(policy),
    pays,
    identical,
  };
}

/**
 * Whether two results of one discharge are the same: the category, the aid block and every layer's
 * rule and amounts (the totals follow from them), with the layers of the same ids in the same order.
 */
export function sameResult(a: SettledData, aPolicy: Policy, b: SettledData, bPolicy: Policy): boolean {
  if (a.category !== b.category || a.aidBlockedReason !== b.aidBlockedReason || a.layers.length !== b.layers.length) return false;
  const ma = layerMeta(aPolicy);
  const mb = layerMeta(bPolicy);
  for (let i = 0; i < a.layers.length; i++) {
    const x = a.layers[i]!;
    const y = b.layers[i]!;
    if (ma[i]!.layerId !== mb[i]!.layerId) return false;
    for (let k = 0; k < 6; k++) if (x[k] !== y[k]) return false;
  }
  return true;
}

/**
 * The state a world settles from. A draft whose funds may all be overdrawn needs only the persons'
 * states (PersonWorld); one with a fund that may not be overdrawn needs the fund balances too, so
 * its world is the service's whole read model.
 */
interface WorldState {
  person(personId: string): { state: PersonState };
  readonly funds: ReadonlyMap<string, FundAccount>;
  apply(streamId: string, revision: number, position: number, type: string, data: unknown): void;
}

class PersonWorld implements WorldState {
  private readonly persons = new Map<string, PersonState>();
  readonly funds = new Map<string, FundAccount>();

  person(personId: string): { state: PersonState } {
    return { state: this.persons.get(personId) ?? initialPersonState() };
  }

  apply(streamId: string, _revision: number, _position: number, type: string, data: unknown): void {
    if (!streamId.startsWith(PERSON_STREAM_PREFIX)) return;
    const personId = streamId.slice(PERSON_STREAM_PREFIX.length);
    this.persons.set(personId, evolvePerson(this.person(personId).state, { type, data } as PersonEvent));
  }
}

interface World {
  policy: Policy;
  model: WorldState;
  /** Active settlements in scope, as this world settled them. */
  active: Map<string, Line>;
  /** In-scope settlements this world could not settle (and not reversed since): their reversal and adjustments are skipped too. */
  skipped: Map<string, { settlementId: string; personId: string; code: string; message: string }>;
}

export class WhatIf {
  /** The actual world needs no state: the recorded results, read with the policies they name. */
  private readonly policies = initialPolicyRegistry();
  private readonly actualActive = new Map<string, Line>();
  private readonly worlds: World[];
  events = 0;
  settledInScope = 0;

  constructor(
    drafts: readonly Policy[],
    private readonly options: WhatIfOptions,
  ) {
    this.worlds = drafts.map((draft, i) => {
      const policy = { ...draft, version: DRAFT_VERSION_BASE + i };
      const limited = (policy.funds ?? []).some((f) => !f.mayOverdraw);
      const model = limited ? new ReadModel() : new PersonWorld();
      // the draft is known to its world (the funds of its layers), under a version of its own
      model.apply(`policy-${policy.policyId}`, 0, 0, 'PolicyPublished', { policy });
      return { policy, model, active: new Map(), skipped: new Map() };
    });
  }

  /** The next event of the log, in order. */
  event(e: RecordedEvent): void {
    this.events += 1;
    const inScope = e.type === 'DischargeSettled' && this.inScope(e.data as SettledData);
    if (inScope) this.settledInScope += 1;
    if (inScope) {
      const s = e.data as SettledData;
      const published = this.policies.byKey.get(policyKey(s.policy.policyId, s.policy.version));
      if (published === undefined) throw new Error(`settlement ${s.settlementId} names a policy that is not in the log before it`);
      this.actualActive.set(s.settlementId, lineOf(s, published.policy, true));
      for (const world of this.worlds) this.applyTo(world, e, published.policy);
      return;
    }
    for (const world of this.worlds) this.applyTo(world, e, null);
    if (e.type === 'SettlementReversed') this.actualActive.delete((e.data as { settlementId: string }).settlementId);
    else if (e.type === 'PolicyPublished')
      applyPolicyPublished(this.policies, { type: 'PolicyPublished', data: e.data as { policy: Policy } });
  }

  result(): WhatIfResult {
    const actual = summarise([...this.actualActive.values()], this.options);
    return {
      year: this.options.year,
      region: this.options.region,
      events: this.events,
      settledInScope: this.settledInScope,
      actual,
      drafts: this.worlds.map((w) => this.outcome(w)),
    };
  }

  private inScope(s: SettledData): boolean {
    return s.year === this.options.year && s.discharge.region === this.options.region;
  }

  /** `actualPolicy`: for an in-scope settlement, the policy it was settled under (null for any other event). */
  private applyTo(world: World, e: RecordedEvent, actualPolicy: Policy | null): void {
    if (actualPolicy !== null) {
      const s = e.data as SettledData;
      const d = s.discharge;
      const state = world.model.person(d.personId).state;
      const room =
        world.policy.funds === undefined
          ? undefined
          : fundRoomFor(
              world.policy,
              d.region,
              s.year,
              (key) => world.model.funds.get(key),
              () => 0,
            );
      // A category the person held that the draft does not define: the service would settle it
      // as no category (no aid); a draft is asked about it instead of hiding it (README, whatif).
      const settled: Result<SettlementRecord> =
        s.category !== NO_CATEGORY && !world.policy.categories.some((c) => c.code === s.category)
          ? fail('UNKNOWN_CATEGORY', `the person held category ${s.category} on ${d.dischargeDate}, which the draft does not define`)
          : settle(d, world.policy, s.settlementId, state, s.fingerprint, room);
      if (!settled.ok) {
        const { code, message } = settled.error;
        world.skipped.set(s.settlementId, { settlementId: s.settlementId, personId: d.personId, code, message });
        return;
      }
      const data = toSettledData(settled.value);
      world.model.apply(e.streamId, e.revision, e.position, e.type, data);
      world.active.set(s.settlementId, lineOf(data, world.policy, sameResult(s, actualPolicy, data, world.policy)));
      return;
    }
    if (e.type === 'SettlementReversed' || e.type === 'AdjustmentApplied') {
      const settlementId = (e.data as { settlementId: string }).settlementId;
      if (world.skipped.has(settlementId)) {
        if (e.type === 'SettlementReversed') world.skipped.delete(settlementId); // reversed: in neither world
        return;
      }
      if (e.type === 'SettlementReversed') world.active.delete(settlementId);
    }
    world.model.apply(e.streamId, e.revision, e.position, e.type, e.data);
  }

  private outcome(world: World): DraftOutcome {
    const records = [...world.active.values()];
    const identical = records.filter((r) => r.identical).length;
    const before = patientPayByPerson([...this.actualActive.values()]);
    const after = patientPayByPerson(records);
    const changes = [...new Set([...before.keys(), ...after.keys()])]
      .map((personId) => {
        const actualPatientPayFen = before.get(personId)?.patientPayFen ?? 0;
        const draftPatientPayFen = after.get(personId)?.patientPayFen ?? 0;
        return { personId, actualPatientPayFen, draftPatientPayFen, deltaFen: draftPatientPayFen - actualPatientPayFen };
      })
      .filter((c) => c.deltaFen !== 0)
      .sort((a, b) => Math.abs(b.deltaFen) - Math.abs(a.deltaFen) || (a.personId < b.personId ? -1 : 1))
      .slice(0, this.options.topChanges);
    return {
      policyId: world.policy.policyId,
      version: world.policy.version - DRAFT_VERSION_BASE + 1,
      name: world.policy.name ?? null,
      totals: summarise(records, this.options),
      unsettled: unsettledOf(world),
      largestChanges: changes,
      identicalSettlements: identical,
      monitoring: (world.policy.monitoring?.thresholds ?? []).map((t) => ({
        thresholdId: t.id,
        per: t.per,
        aboveFen: t.aboveFen,
        actualPersons: personsOver(this.actualActive.values(), t),
        draftPersons: personsOver(records, t),
      })),
    };
  }
}

/**
 * Persons a monitoring threshold flags over these lines (in settlement order): per settlement, a
 * settlement of a listed category whose patient pay is above the line; per year, a settlement of
 * a listed category that takes the year's patient pay so far above it.
 */
export function personsOver(lines: Iterable<Line>, t: MonitoringThreshold): number {
  const flagged = new Set<string>();
  const yearSoFar = new Map<string, Fen>();
  for (const l of lines) {
    const sum = (yearSoFar.get(l.personId) ?? 0) + l.patientPayFen;
    yearSoFar.set(l.personId, sum);
    if (t.categories !== undefined && !t.categories.includes(l.category)) continue;
    if ((t.per === 'settlement' ? l.patientPayFen : sum) > t.aboveFen) flagged.add(l.personId);
  }
  return flagged.size;
}

function unsettledOf(world: World): DraftOutcome['unsettled'] {
  const byCode: Record<string, number> = {};
  for (const u of world.skipped.values()) byCode[u.code] = (byCode[u.code] ?? 0) + 1;
  return { count: world.skipped.size, byCode, listed: [...world.skipped.values()].slice(0, MAX_LISTED) };
}

interface PersonYear {
  category: string;
  totalFen: Fen;
  patientPayFen: Fen;
}

function patientPayByPerson(records: readonly Line[]): Map<string, PersonYear> {
  const byPerson = new Map<string, PersonYear>();
  for (const r of records) {
    const p = byPerson.get(r.personId) ?? { category: r.category, totalFen: 0, patientPayFen: 0 };
    p.totalFen += r.totalFen;
    p.patientPayFen += r.patientPayFen;
    p.category = r.category; // the category of the person's last settlement of the year
    byPerson.set(r.personId, p);
  }
  return byPerson;
}

const add = (into: Record<string, Fen>, key: string, fen: Fen) => {
  into[key] = (into[key] ?? 0) + fen;
};

export function summarise(records: readonly Line[], options: Pick<WhatIfOptions, 'thresholdsFen'>): Totals {
  const t: Totals = {
    settlements: records.length,
    persons: 0,
    totalFen: 0,
    inScopeFen: 0,
    fundPayFen: 0,
    patientPayFen: 0,
    byKind: {},
    byLayer: {},
    byFund: {},
    byCategory: {},
    byVisitType: {},
    shareDecilesBp: [],
    shareDecilesBpByCategory: {},
    personsAboveThreshold: {},
  };
  const personsByCategory = new Map<string, Set<string>>();
  for (const r of records) {
    t.totalFen += r.totalFen;
    t.inScopeFen += r.inScopeFen;
    t.fundPayFen += r.fundPayFen;
    t.patientPayFen += r.patientPayFen;
    r.meta.forEach((l, i) => {
      add(t.byKind, l.kind, r.pays[i]!);
      add(t.byLayer, l.layerId, r.pays[i]!);
      add(t.byFund, l.fund, r.pays[i]!);
    });
    const c = (t.byCategory[r.category] ??= { settlements: 0, persons: 0, fundPayFen: 0, patientPayFen: 0 });
    c.settlements += 1;
    c.fundPayFen += r.fundPayFen;
    c.patientPayFen += r.patientPayFen;
    const people = personsByCategory.get(r.category) ?? new Set<string>();
    people.add(r.personId);
    personsByCategory.set(r.category, people);
    const v = (t.byVisitType[r.visitType] ??= { settlements: 0, fundPayFen: 0, patientPayFen: 0 });
    v.settlements += 1;
    v.fundPayFen += r.fundPayFen;
    v.patientPayFen += r.patientPayFen;
  }
  for (const [category, people] of personsByCategory) t.byCategory[category]!.persons = people.size;
  const years = [...patientPayByPerson(records).values()];
  t.persons = years.length;
  t.shareDecilesBp = deciles(years.map(shareBp));
  const byCategory = new Map<string, number[]>();
  for (const y of years) {
    const shares = byCategory.get(y.category);
    if (shares === undefined) byCategory.set(y.category, [shareBp(y)]);
    else shares.push(shareBp(y));
  }
  for (const [category, shares] of [...byCategory].sort(([a], [b]) => (a < b ? -1 : 1)))
    t.shareDecilesBpByCategory[category] = deciles(shares);
  for (const threshold of options.thresholdsFen)
    t.personsAboveThreshold[String(threshold)] = years.filter((y) => y.patientPayFen > threshold).length;
  return t;
}

/** patientPay / total of a person's year, in basis points, rounded down (0 for a year of nothing). */
const shareBp = (y: PersonYear) => (y.totalFen === 0 ? 0 : Math.floor((y.patientPayFen * 10_000) / y.totalFen));

/** The 10th, 20th … 100th percentiles (nearest rank) of the values; [] for none. */
export function deciles(values: number[]): number[] {
  if (values.length === 0) return [];
  const sorted = [...values].sort((a, b) => a - b);
  return Array.from({ length: 10 }, (_, i) => sorted[Math.max(0, Math.ceil(((i + 1) / 10) * sorted.length) - 1)]!);
}
