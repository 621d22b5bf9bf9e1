// The event catalogue: every event medaid records, the data it carries and the stream it goes to.
// The deciders (person.ts, adjustment.ts, subsidy.ts, funds.ts, visit.ts) produce these, and the
// readers — the decision state, the audits' fold, the ledger's posting rules, the year report, the audits — read these
// same types: an event's shape is declared once, here. Types and stream names only; pure.
import type { Discharge, YearState } from './calculation.js';
import type { Policy, PolicyRef } from './policy.js';
import type { DomainError, Fen, IsoDate } from './primitives.js';

// ---- streams ------------------------------------------------------------------------------------

/** A person's categories, approvals, death and settlements: the consistency boundary of the annual caps. */
export const personStream = (personId: string) => `person-${personId}`;
export const PERSON_STREAM_PREFIX = 'person-';
/** Every published version of one policy. */
export const policyStream = (policyId: string) => `policy-${policyId}`;
/** The allocations of one fund of one region. */
export const fundStream = (fund: string, region: string) => `fund-${fund}-${region}`;
/** One adjustment's request and decision (maker–checker). */
export const adjustmentStream = (adjustmentId: string) => `adjustment-${adjustmentId}`;
export const ADJUSTMENT_STREAM_PREFIX = 'adjustment-';

// ---- person-{personId} --------------------------------------------------------------------------

export interface CategoryAssignedData {
  personId: string;
  category: string;
  validFrom: IsoDate;
  validTo: IsoDate | null;
}
export interface CategoryRevokedData {
  personId: string;
  category: string;
  from: IsoDate;
}
export interface ApprovalGrantedData {
  personId: string;
  approvalNo: string;
  validFrom: IsoDate;
  validTo: IsoDate;
}
export interface DeathRecordedData {
  personId: string;
  date: IsoDate;
}

/**
 * A layer's result as the DischargeSettled event records it: [ruleId, baseFen, belowThresholdFen,
 * rawFen, payFen, cappedBy], one per layer of the applied policy version, in its order. The layer's
 * id, kind and fund are that policy version's (published once, never edited, itself in the log),
 * and a layer is `external` exactly when the discharge's externalPayments names it; totals follow
 * from the layers (spec §6). Nothing derivable is recorded twice: a settlement event is most of the log.
 */
export type RecordedLayer = [
  ruleId: string | null,
  baseFen: Fen,
  belowThresholdFen: Fen,
  rawFen: Fen,
  payFen: Fen,
  cappedBy: string | null,
];

/** The data of a DischargeSettled event: the input, what applied, and every layer's result. */
export interface SettledData {
  settlementId: string;
  fingerprint: string;
  discharge: Discharge;
  policy: PolicyRef;
  year: number;
  category: string;
  aidBlockedReason: 'APPROVAL_REQUIRED' | null;
  layers: RecordedLayer[];
  /** What the settlement added to the year's state; its reversal removes exactly this. */
  contributions: YearState;
}

export interface SettlementReversedData {
  personId: string;
  settlementId: string;
  hospitalId: string;
  visitId: string;
  reason: string;
}

/** Who asked or decided: the service's actor, as recorded in events (`{kind, id}`). */
export interface ActorRef {
  kind: string;
  id: string;
}

/** The data of AdjustmentApplied, recorded in the PERSON stream: it moves the person's counters. */
export interface AdjustmentAppliedData {
  adjustmentId: string;
  settlementId: string;
  hospitalId: string;
  visitId: string;
  layerId: string;
  fund: string;
  region: string;
  year: number;
  deltaFen: Fen;
  /** What the adjustment adds to the year's state: used[counter] += deltaFen for each annual cap of the layer's rule. */
  contributions: YearState;
  requestedBy: ActorRef;
  approvedBy: ActorRef;
}

/** Data of an EnrolmentSubsidyGranted event (资助参保): money moves from `fromFund` into `toFund`. */
export interface EnrolmentSubsidyGrantedData {
  personId: string;
  year: number;
  region: string;
  category: string;
  amountFen: Fen;
  fromFund: string;
  toFund: string;
  policy: PolicyRef;
  /** The day the category was read on. */
  asOf: IsoDate;
}

export type PersonEvent =
  | { type: 'CategoryAssigned'; data: CategoryAssignedData }
  | { type: 'CategoryRevoked'; data: CategoryRevokedData }
  | { type: 'ApprovalGranted'; data: ApprovalGrantedData }
  | { type: 'DeathRecorded'; data: DeathRecordedData }
  | { type: 'DischargeSettled'; data: SettledData }
  | { type: 'SettlementReversed'; data: SettlementReversedData }
  | { type: 'AdjustmentApplied'; data: AdjustmentAppliedData }
  | { type: 'EnrolmentSubsidyGranted'; data: EnrolmentSubsidyGrantedData }
  | { type: 'HighMedicalCostFlagged'; data: HighMedicalCostFlaggedData }
  | { type: 'HighMedicalCostCleared'; data: HighMedicalCostClearedData };

/**
 * A person's self-pay went above a monitoring threshold of the policy (README, "Monitoring
 * thresholds"), recorded with the settlement that took it there, once per year and threshold.
 */
export interface HighMedicalCostFlaggedData {
  personId: string;
  year: number;
  thresholdId: string;
  per: 'settlement' | 'year';
  aboveFen: Fen;
  /** The self-pay that crossed it: the settlement's (per settlement) or the year's so far (per year). */
  amountFen: Fen;
  settlementId: string;
  category: string;
  region: string;
  dischargeDate: string;
}

/** A reversal took the person back under a threshold they were flagged for (the flag may come again). */
export interface HighMedicalCostClearedData {
  personId: string;
  year: number;
  thresholdId: string;
  /** The self-pay left after the reversal (the year's, or the largest single settlement's). */
  amountFen: Fen;
  /** The settlement whose reversal cleared it. */
  settlementId: string;
}

// ---- adjustment-{adjustmentId} ------------------------------------------------------------------

export interface AdjustmentRequest {
  adjustmentId: string;
  settlementId: string;
  hospitalId: string;
  visitId: string;
  personId: string;
  layerId: string;
  /** Non-zero; positive pays more, negative pays less. */
  deltaFen: Fen;
  reason: string;
}

export type AdjustmentEvent =
  | { type: 'AdjustmentRequested'; data: AdjustmentRequest & { requestedBy: ActorRef } }
  | { type: 'AdjustmentApproved'; data: { adjustmentId: string; approvedBy: ActorRef } }
  | { type: 'AdjustmentRejected'; data: { adjustmentId: string; rejectedBy: ActorRef; reason: string } };

// ---- policy-{policyId}, fund-{fund}-{region} ----------------------------------------------------

export interface PolicyPublishedEvent {
  type: 'PolicyPublished';
  data: { policy: Policy };
}

export const ALLOCATION_SOURCES = ['superior', 'local', 'carryover'] as const;
export type AllocationSource = (typeof ALLOCATION_SOURCES)[number];

/** Data of a FundAllocated event: 上级下拨 (superior), 本级配套 (local) or 结转 (carryover). */
export interface FundAllocatedData {
  fund: string;
  region: string;
  year: number;
  source: AllocationSource;
  amountFen: Fen;
  reference: string; // 文号 / 凭证号: which decision or voucher the money came with
}

export type FundEvent = { type: 'FundAllocated'; data: FundAllocatedData };

// ---- command-{sha-256 of an idempotency key} ----------------------------------------------------

/** The answers of commands that came with an idempotency key, one stream per key. */
export const commandStream = (keyHash: string) => `command-${keyHash}`;
export const COMMAND_STREAM_PREFIX = 'command-';

/** What a settlement command answered: the settlement as it stood then (rebuilt from its event), or the rejection. */
export type AnsweredOutcome =
  | {
      ok: true;
      hospitalId: string;
      visitId: string;
      settlementId: string;
      status: 'settled' | 'reversed';
      duplicate: boolean;
      created: boolean;
    }
  | { ok: false; error: DomainError };

/**
 * Data of a CommandAnswered event: the answer given to the first command with this key. A command
 * retried or replayed with the key (a Kafka message's coordinates or request id, an HTTP
 * Idempotency-Key, gRPC idempotency-key metadata) is answered from it and never decided again.
 */
export interface CommandAnsweredData {
  key: string;
  commandType: 'SettleDischarge' | 'ReverseSettlement';
  /** SHA-256 of the command as validated: the same key with another command is refused. */
  fingerprint: string;
  outcome: AnsweredOutcome;
}

export type CommandEvent = { type: 'CommandAnswered'; data: CommandAnsweredData };

/** Every event medaid records. */
export type MedaidEvent = PersonEvent | AdjustmentEvent | PolicyPublishedEvent | FundEvent | CommandEvent;

// ---- tags: how the store finds events across streams --------------------------------------------

/**
 * The tags the event store keeps for medaid's events (the port's TagRule, declared here with the
 * events they read from; the store indexes them in the transaction that records the events):
 * - `visit` [hospitalId, visitId]: every settlement, reversal, adjustment request and applied
 *   adjustment of one visit. A settlement is appended on condition that no `visit` event of its
 *   visit was recorded since the decision read them: one active settlement per visit, enforced by
 *   the store even across processes.
 * - `category` [code]: every assignment of a category — the persons who ever held it.
 * - `policies` [] and `allocations` []: every published policy version and every fund allocation
 *   (few, read whole at start-up).
 */
export const VISIT_TAG = 'visit';
export const CATEGORY_TAG = 'category';
export const POLICIES_TAG = 'policies';
export const ALLOCATIONS_TAG = 'allocations';

export const MEDAID_TAG_RULES: ReadonlyArray<{ tag: string; eventType: MedaidEvent['type']; fields: readonly string[] }> = [
  { tag: VISIT_TAG, eventType: 'DischargeSettled', fields: ['$.discharge.hospitalId', '$.discharge.visitId'] },
  { tag: VISIT_TAG, eventType: 'SettlementReversed', fields: ['$.hospitalId', '$.visitId'] },
  { tag: VISIT_TAG, eventType: 'AdjustmentRequested', fields: ['$.hospitalId', '$.visitId'] },
  { tag: VISIT_TAG, eventType: 'AdjustmentApplied', fields: ['$.hospitalId', '$.visitId'] },
  { tag: CATEGORY_TAG, eventType: 'CategoryAssigned', fields: ['$.category'] },
  { tag: POLICIES_TAG, eventType: 'PolicyPublished', fields: [] },
  { tag: ALLOCATIONS_TAG, eventType: 'FundAllocated', fields: [] },
];

/**
 * `fund-scope` [region, year]: every event that may take from a fund of the region and year
 * (settlements, adjustments applied, 资助参保). Instances sharing a store decide a payment from a
 * fund that may not be overdrawn on what they know up to a position, and append it on condition
 * that no such event was recorded after it: the fund's limit is the store's to enforce. Given to
 * the stores that take several conditions per append and serve several instances (PostgreSQL).
 */
export const FUND_SCOPE_TAG = 'fund-scope';

export const FUND_SCOPE_TAG_RULES: ReadonlyArray<{ tag: string; eventType: MedaidEvent['type']; fields: readonly string[] }> = [
  { tag: FUND_SCOPE_TAG, eventType: 'DischargeSettled', fields: ['$.discharge.region', '$.year'] },
  { tag: FUND_SCOPE_TAG, eventType: 'AdjustmentApplied', fields: ['$.region', '$.year'] },
  { tag: FUND_SCOPE_TAG, eventType: 'EnrolmentSubsidyGranted', fields: ['$.region', '$.year'] },
];
