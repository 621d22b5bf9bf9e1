// Visits (spec §7) and the shape of a settlement result (spec §8). A hospital's visit
// (hospitalId, visitId) is the idempotency key: the same discharge posted again returns the
// recorded result, a different one is a conflict, and after a reversal the visit may be settled
// anew. Also the policy registry: publishing is idempotent per (policyId, version).
import type { PolicyPublishedEvent } from './events.js';
import { SettlementRecord } from './person.js';
import { Policy, PublishedPolicy, validatePolicy } from './policy.js';
import { Result, canonicalJson, fail, ok } from './primitives.js';

export interface VisitAttempt {
  settlementId: string;
  personId: string;
  /** Revision of the DischargeSettled event in the person's stream. */
  revision: number;
  fingerprint: string;
  status: 'settled' | 'reversed';
}

/** Every settlement ever made for one visit, oldest first; at most the last is active. */
export type VisitState = VisitAttempt[];

export type VisitDecision = { kind: 'new'; attempt: number } | { kind: 'duplicate'; active: VisitAttempt };

export function decideVisitSettlement(visit: VisitState | undefined, fingerprint: string): Result<VisitDecision> {
  const active = activeAttempt(visit);
  if (active === undefined) return ok({ kind: 'new', attempt: (visit?.length ?? 0) + 1 });
  if (active.fingerprint === fingerprint) return ok({ kind: 'duplicate', active });
  return fail('VISIT_CONFLICT', 'this visit already has an active settlement with different input; reverse it first to settle it again', [
    { field: 'visitId', problem: 'has an active settlement with different input' },
  ]);
}

export function decideVisitReversal(visit: VisitState | undefined, hospitalId: string, visitId: string): Result<VisitAttempt> {
  const last = visit?.[visit.length - 1];
  if (last === undefined) return fail('SETTLEMENT_NOT_FOUND', `visit ${hospitalId}/${visitId} has never been settled`);
  if (last.status === 'reversed') return fail('ALREADY_REVERSED', `the settlement of visit ${hospitalId}/${visitId} is already reversed`);
  return ok(last);
}

export function activeAttempt(visit: VisitState | undefined): VisitAttempt | undefined {
  const last = visit?.[visit.length - 1];
  return last?.status === 'settled' ? last : undefined;
}

/** A stable, opaque settlement id: the same visit's n-th settlement always gets the same id. */
export function settlementIdFor(hospitalId: string, visitId: string, attempt: number): string {
  return `${hospitalId}/${visitId}/${attempt}`;
}

export type SettlementStatus = 'settled' | 'preview' | 'reversed';

/** The result of spec §8, with its keys in the contract's order. */
export function settlementResult(r: SettlementRecord, status: SettlementStatus, duplicate: boolean) {
  const d = r.discharge;
  return {
    settlementId: r.settlementId,
    status,
    duplicate,
    hospitalId: d.hospitalId,
    visitId: d.visitId,
    personId: d.personId,
    region: d.region,
    policy: { policyId: r.policy.policyId, version: r.policy.version },
    year: r.year,
    category: r.category,
    aidBlockedReason: r.aidBlockedReason,
    totalFen: d.totalFen,
    fullOwnPayFen: d.fullOwnPayFen,
    overLimitFen: d.overLimitFen,
    preSelfPayFen: d.preSelfPayFen,
    inScopeFen: r.inScopeFen,
    layers: r.layers.map((l) => ({
      layerId: l.layerId,
      kind: l.kind,
      fund: l.fund,
      ruleId: l.ruleId,
      external: l.external,
      baseFen: l.baseFen,
      belowThresholdFen: l.belowThresholdFen,
      rawFen: l.rawFen,
      payFen: l.payFen,
      cappedBy: l.cappedBy,
    })),
    deductibleFen: r.totals.deductibleFen,
    insurancePayFen: r.totals.insurancePayFen,
    criticalIllnessPayFen: r.totals.criticalIllnessPayFen,
    aidPayFen: r.totals.aidPayFen,
    fundPayFen: r.totals.fundPayFen,
    inScopeSelfPayFen: r.totals.inScopeSelfPayFen,
    patientPayFen: r.totals.patientPayFen,
  };
}
export type SettlementResult = ReturnType<typeof settlementResult>;

// ---- policy registry -------------------------------------------------------------------------

/** All published policies, in publication order. */
export interface PolicyRegistry {
  byKey: Map<string, PublishedPolicy & { canonical: string }>;
  categoryCodes: Set<string>;
  seq: number;
}

export const initialPolicyRegistry = (): PolicyRegistry => ({ byKey: new Map(), categoryCodes: new Set(), seq: 0 });
export const policyKey = (policyId: string, version: number) => `${policyId}@${version}`;

/** Publishing the same (policyId, version) with identical content is a no-op; different content conflicts. */
export function decidePublish(raw: unknown, registry: PolicyRegistry): Result<{ policy: Policy; events: PolicyPublishedEvent[] }> {
  const valid = validatePolicy(raw);
  if (!valid.ok) return valid;
  const policy = valid.value;
  const existing = registry.byKey.get(policyKey(policy.policyId, policy.version));
  if (existing === undefined) return ok({ policy, events: [{ type: 'PolicyPublished', data: { policy } }] });
  if (existing.canonical === canonicalJson(policy)) return ok({ policy, events: [] });
  return fail(
    'POLICY_VERSION_CONFLICT',
    `policy ${policy.policyId} version ${policy.version} is already published with different content; publish a new version`,
    [{ field: 'version', problem: 'already published with different content' }],
  );
}

/** Mutates the registry in place: it is a projection owned by one reader, rebuilt from the log. */
export function applyPolicyPublished(registry: PolicyRegistry, event: PolicyPublishedEvent): void {
  const { policy } = event.data;
  const key = policyKey(policy.policyId, policy.version);
  if (registry.byKey.has(key)) return;
  registry.seq += 1;
  registry.byKey.set(key, { policy, publishedSeq: registry.seq, canonical: canonicalJson(policy) });
  for (const c of policy.categories) registry.categoryCodes.add(c.code);
}
