// Adjustments (调整) with maker–checker: an admin (the maker) asks to move one layer's pay of one
// settlement by +/− deltaFen with a reason; nothing changes until a DIFFERENT admin (the checker)
// approves. Approval records AdjustmentApplied in the person stream — the consistency boundary of
// the annual caps — so it moves the person's counters exactly like a payout of that layer would,
// and a later reversal of the settlement takes it back with the settlement. The adjustment's own
// stream (`adjustment-{id}`) holds the request and the decision. Pure: no clock, no I/O.
import type { YearState } from './calculation.js';
import type { ActorRef, AdjustmentAppliedData, AdjustmentEvent, AdjustmentRequest } from './events.js';
import { findActive } from './person.js';
import type { ActiveSettlement, AppliedAdjustment, PersonState, SettlementRecord } from './person.js';
import type { Policy } from './policy.js';
import { Fen, MAX_FEN, Result, assert, dict, fail, ok, own, setOwn } from './primitives.js';

/** The longest reason of a request or a rejection, as for a reversal (spec §7). */
export const MAX_ADJUSTMENT_REASON_CHARS = 500;

export type AdjustmentStatus = 'requested' | 'approved' | 'rejected';

export interface AdjustmentState {
  request: AdjustmentRequest;
  requestedBy: ActorRef;
  status: AdjustmentStatus;
  approvedBy: ActorRef | null;
  rejectedBy: ActorRef | null;
  rejectionReason: string | null;
}

export function evolveAdjustment(state: AdjustmentState | null, event: AdjustmentEvent): AdjustmentState | null {
  switch (event.type) {
    case 'AdjustmentRequested': {
      const { requestedBy, ...request } = event.data;
      return { request, requestedBy, status: 'requested', approvedBy: null, rejectedBy: null, rejectionReason: null };
    }
    case 'AdjustmentApproved':
      return state === null ? null : { ...state, status: 'approved', approvedBy: event.data.approvedBy };
    case 'AdjustmentRejected':
      return state === null
        ? null
        : { ...state, status: 'rejected', rejectedBy: event.data.rejectedBy, rejectionReason: event.data.reason };
  }
}

const sameActor = (a: ActorRef, b: ActorRef) => a.kind === b.kind && a.id === b.id;

/**
 * Whether a request fits the settlement as it stands now. Checked when it is requested (so the
 * maker learns at once) and again, authoritatively, at approval (other adjustments may have been
 * applied in between): the settlement is active; the layer's pay after every applied adjustment
 * stays within 0 … its baseFen; the funds never pay more than the in-scope amount (so the patient's
 * share never goes below what lies outside the policy's scope); no annual-cap counter of the
 * layer's rule goes below zero, and a raise takes none over its cap (a cut may leave a counter above
 * this rule's cap when another rule sharing the counter put it there: a cut never makes it worse).
 */
export function checkAdjustment(
  settlement: SettlementRecord,
  active: ActiveSettlement | undefined,
  person: PersonState,
  policy: Policy,
  layerId: string,
  deltaFen: Fen,
): Result<{ fund: string; contributions: YearState }> {
  assert(
    policy.policyId === settlement.policy.policyId && policy.version === settlement.policy.version,
    'a settlement is adjusted under the policy version it names',
  );
  assert(Number.isInteger(deltaFen) && deltaFen !== 0 && Math.abs(deltaFen) <= MAX_FEN, 'deltaFen was validated at the edge');
  if (active === undefined || active.settlementId !== settlement.settlementId) {
    return fail('ALREADY_REVERSED', `settlement ${settlement.settlementId} is reversed; only an active settlement can be adjusted`);
  }
  const layer = settlement.layers.find((l) => l.layerId === layerId);
  if (layer === undefined) {
    return fail('VALIDATION_FAILED', `"${layerId}" is not a layer of settlement ${settlement.settlementId}`, [
      { field: 'layerId', problem: `is not a layer of policy ${policy.policyId} v${policy.version}` },
    ]);
  }
  const applied = active.adjustments ?? [];
  const layerPayFen = layer.payFen + sum(applied.filter((a) => a.layerId === layerId)) + deltaFen;
  if (layerPayFen < 0 || layerPayFen > layer.baseFen) {
    return outOfRange(`layer ${layerId} would pay ${layerPayFen} fen; it must stay within 0 … its base of ${layer.baseFen} fen`);
  }
  const fundPayFen = settlement.totals.fundPayFen + sum(applied) + deltaFen;
  if (fundPayFen > settlement.inScopeFen) {
    return outOfRange(`the funds would pay ${fundPayFen} fen in all, more than the in-scope amount of ${settlement.inScopeFen} fen`);
  }
  const rule = layer.ruleId === null ? undefined : policy.layers.find((l) => l.id === layerId)?.rules.find((r) => r.id === layer.ruleId);
  const contributions: YearState = { yearBase: dict(), used: dict() };
  const year = person.years[settlement.year];
  for (const cap of rule?.annualCaps ?? []) {
    const usedFen = (own(year?.used, cap.counter) ?? 0) + deltaFen;
    // A cut never makes a counter worse: it only has to stay ≥ 0, even where the counter already
    // stands above this rule's cap (another rule counting the same counter may have a larger one).
    // A raise must keep the counter within the cap.
    if (usedFen < 0) return outOfRange(`counter ${cap.counter} would stand at ${usedFen} fen; a cut must leave it at 0 or more`);
    if (deltaFen > 0 && usedFen > cap.capFen) {
      return outOfRange(`counter ${cap.counter} would stand at ${usedFen} fen; a raise must keep it within its cap of ${cap.capFen} fen`);
    }
    setOwn(contributions.used, cap.counter, deltaFen);
  }
  return ok({ fund: layer.fund, contributions });
}

const sum = (adjustments: readonly AppliedAdjustment[]) => adjustments.reduce((total, a) => total + a.deltaFen, 0);
const outOfRange = (message: string) => fail('ADJUSTMENT_OUT_OF_RANGE', message, [{ field: 'deltaFen', problem: message }]);

/** A maker's request: only checks that it fits now; records AdjustmentRequested and changes nothing else. */
export function decideAdjustmentRequest(
  request: AdjustmentRequest,
  requestedBy: ActorRef,
  settlement: SettlementRecord,
  person: PersonState,
  policy: Policy,
): Result<AdjustmentEvent[]> {
  assert(request.settlementId === settlement.settlementId, 'a request names the settlement it is checked against');
  const active = findActive(person, request.settlementId);
  const fits = checkAdjustment(settlement, active, person, policy, request.layerId, request.deltaFen);
  if (!fits.ok) return fits;
  return ok([{ type: 'AdjustmentRequested', data: { ...request, requestedBy } }]);
}

/**
 * What an approval has to do. The person stream's AdjustmentApplied is the authority: once it is
 * recorded (`appliedBy` names its checker) the adjustment is approved, whatever its own stream says
 * yet. So an approval is: forbidden to the maker; a conflict once decided (approving twice too);
 * otherwise "apply" (record AdjustmentApplied, then AdjustmentApproved), or "complete" when the
 * same checker's earlier attempt recorded AdjustmentApplied but not AdjustmentApproved (it crashed
 * in between, and this is its retry); another admin is then too late.
 */
export function decideApproval(state: AdjustmentState, approver: ActorRef, appliedBy: ActorRef | null): Result<'apply' | 'complete'> {
  if (sameActor(state.requestedBy, approver)) {
    return fail(
      'FORBIDDEN',
      `adjustment ${state.request.adjustmentId} was requested by ${approver.id}; it must be approved by a different admin (maker–checker)`,
    );
  }
  if (state.status !== 'requested') return alreadyDecided(state, state.status);
  if (appliedBy !== null) return sameActor(appliedBy, approver) ? ok('complete') : alreadyDecided(state, 'approved');
  return ok('apply');
}

export function decideRejection(
  state: AdjustmentState,
  rejectedBy: ActorRef,
  reason: string,
  appliedBy: ActorRef | null,
): Result<AdjustmentEvent[]> {
  if (appliedBy !== null) return alreadyDecided(state, 'approved');
  if (state.status !== 'requested') return alreadyDecided(state, state.status);
  return ok([{ type: 'AdjustmentRejected', data: { adjustmentId: state.request.adjustmentId, rejectedBy, reason } }]);
}

const alreadyDecided = (state: AdjustmentState, status: AdjustmentStatus) =>
  fail(
    'ADJUSTMENT_ALREADY_DECIDED',
    `adjustment ${state.request.adjustmentId} is already ${status}; an adjustment is approved or rejected once`,
  );

/** The checker's approval, decided against the person's state at the revision it will be appended to. */
export function decideApplication(
  state: AdjustmentState,
  approvedBy: ActorRef,
  settlement: SettlementRecord,
  person: PersonState,
  policy: Policy,
): Result<AdjustmentAppliedData> {
  const { request } = state;
  assert(request.settlementId === settlement.settlementId, 'an adjustment is applied to the settlement it names');
  const active = findActive(person, request.settlementId);
  const fits = checkAdjustment(settlement, active, person, policy, request.layerId, request.deltaFen);
  if (!fits.ok) return fits;
  const { adjustmentId, settlementId, hospitalId, visitId, layerId, deltaFen } = request;
  return ok({
    adjustmentId,
    settlementId,
    hospitalId,
    visitId,
    layerId,
    fund: fits.value.fund,
    region: settlement.discharge.region,
    year: settlement.year,
    deltaFen,
    contributions: fits.value.contributions,
    requestedBy: state.requestedBy,
    approvedBy,
  });
}

/** Whether the person state holds this adjustment as applied to an active settlement. */
export function isAppliedTo(person: PersonState, settlementId: string, adjustmentId: string): boolean {
  return findActive(person, settlementId)?.adjustments?.some((a) => a.adjustmentId === adjustmentId) ?? false;
}
