// Reads of what a command or a query needs beyond the person's state, from the store itself (its
// tags), so that nothing about visits or adjustments is held in memory: a visit's settlements
// (the idempotency key, spec §7) and an adjustment's state.
import { hash } from 'node:crypto';
import {
  ActorRef,
  AdjustmentAppliedData,
  AdjustmentEvent,
  AdjustmentState,
  AdjustmentStatus,
  Discharge,
  PERSON_STREAM_PREFIX,
  SettledData,
  SettlementReversedData,
  VISIT_TAG,
  VisitAttempt,
  adjustmentStream,
  dischargeFingerprint,
  evolveAdjustment,
} from '#domain';
import type { EventStore, RecordedEvent } from '#event-store';

/** SHA-256 of the canonical discharge: what a visit's settlement is compared with (64 characters, not the input). */
export function fingerprintOf(discharge: Discharge): string {
  return hash('sha256', dischargeFingerprint(discharge), 'hex');
}

export interface VisitEntry extends VisitAttempt {
  /** Revision of the SettlementReversed event in the person's stream, once reversed. */
  reversalRevision: number | null;
}

/** Every event of one visit, and its settlements folded from them. */
export interface VisitView {
  attempts: VisitEntry[];
  events: RecordedEvent[];
  /** Position of the last event of the visit (0 when none): a settlement is appended on condition nothing came after it. */
  position: number;
}

/** At most this many events are read for one visit (settlements, reversals, adjustments). */
const MAX_VISIT_EVENTS = 10_000;

export async function readVisit(store: Pick<EventStore, 'readByTag'>, hospitalId: string, visitId: string): Promise<VisitView> {
  const events = await store.readByTag(VISIT_TAG, [hospitalId, visitId], { maxCount: MAX_VISIT_EVENTS });
  const attempts: VisitEntry[] = [];
  let position = 0;
  for (const e of events) {
    position = Math.max(position, e.position);
    if (e.type === 'DischargeSettled') {
      const s = e.data as SettledData;
      attempts.push({
        settlementId: s.settlementId,
        personId: e.streamId.slice(PERSON_STREAM_PREFIX.length),
        revision: e.revision,
        fingerprint: s.fingerprint,
        status: 'settled',
        reversalRevision: null,
      });
    } else if (e.type === 'SettlementReversed') {
      const attempt = attempts.find((a) => a.settlementId === (e.data as SettlementReversedData).settlementId);
      if (attempt !== undefined) {
        attempt.status = 'reversed';
        attempt.reversalRevision = e.revision;
      }
    }
  }
  return { attempts, events, position };
}

/** The append condition of a command decided on this view of the visit. */
export const visitCondition = (hospitalId: string, visitId: string, view: VisitView) => ({
  tag: VISIT_TAG,
  key: [hospitalId, visitId],
  afterPosition: view.position,
});

/** The settlement's DischargeSettled event in a visit's events. */
export function settledEvent(view: VisitView, settlementId: string): RecordedEvent | undefined {
  return view.events.find((e) => e.type === 'DischargeSettled' && (e.data as SettledData).settlementId === settlementId);
}

/** The SettlementReversed event of a settlement in a visit's events. */
export function reversalEvent(view: VisitView, settlementId: string): RecordedEvent | undefined {
  return view.events.find((e) => e.type === 'SettlementReversed' && (e.data as SettlementReversedData).settlementId === settlementId);
}

export interface AdjustmentEntry {
  state: AdjustmentState;
  /** Revision of the adjustment's own stream. */
  revision: number;
  /** Set once the person stream holds AdjustmentApplied: where, and who approved it. */
  applied: { personRevision: number; approvedBy: ActorRef } | null;
}

/** An adjustment stream holds at most three events; reading it is bounded anyway. */
const MAX_ADJUSTMENT_EVENTS = 10;

/** An adjustment's state from its own stream, and whether the person stream holds its AdjustmentApplied (found through its visit). */
export async function readAdjustment(
  store: Pick<EventStore, 'readStream' | 'readByTag'>,
  adjustmentId: string,
  visit?: VisitView,
): Promise<AdjustmentEntry | undefined> {
  let state: AdjustmentState | null = null;
  let revision = -1;
  for (const e of await store.readStream(adjustmentStream(adjustmentId), { maxCount: MAX_ADJUSTMENT_EVENTS })) {
    state = evolveAdjustment(state, { type: e.type, data: e.data } as AdjustmentEvent);
    revision = e.revision;
  }
  if (state === null) return undefined;
  const { hospitalId, visitId } = state.request;
  const events = (visit ?? (await readVisit(store, hospitalId, visitId))).events;
  const applied = events.find((e) => e.type === 'AdjustmentApplied' && (e.data as AdjustmentAppliedData).adjustmentId === adjustmentId);
  return {
    state,
    revision,
    applied:
      applied === undefined ? null : { personRevision: applied.revision, approvedBy: (applied.data as AdjustmentAppliedData).approvedBy },
  };
}

/**
 * The adjustments of a settlement as GET /v1/settlements/{h}/{v} lists them, in the order they
 * were requested: status only; the reasons and actors are behind GET /v1/adjustments/{id}.
 */
export async function adjustmentSummaries(store: Pick<EventStore, 'readStream' | 'readByTag'>, visit: VisitView, settlementId: string) {
  const out: Array<{ adjustmentId: string; layerId: string; deltaFen: number; status: AdjustmentStatus }> = [];
  for (const e of visit.events) {
    if (e.type !== 'AdjustmentRequested' || (e.data as { settlementId: string }).settlementId !== settlementId) continue;
    const entry = await readAdjustment(store, (e.data as { adjustmentId: string }).adjustmentId, visit);
    if (entry === undefined) continue;
    const { request } = entry.state;
    out.push({
      adjustmentId: request.adjustmentId,
      layerId: request.layerId,
      deltaFen: request.deltaFen,
      status: entry.applied !== null ? 'approved' : entry.state.status,
    });
  }
  return out;
}
