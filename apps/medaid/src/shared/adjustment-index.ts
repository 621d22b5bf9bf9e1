// The audits' whole-log fold (read-model.ts) keeps this index of adjustments: each adjustment's
// state from its own stream (`adjustment-{id}`), and whether the person stream holds its
// AdjustmentApplied — the authority on "approved" (see commands/adjustments). The service reads
// an adjustment from the store when it needs it (shared/lookups.ts).
import { ActorRef, AdjustmentAppliedData, AdjustmentEvent, AdjustmentState, AdjustmentStatus, evolveAdjustment } from '#domain';

export interface AdjustmentEntry {
  state: AdjustmentState;
  /** Revision of the adjustment's own stream. */
  revision: number;
  /** Set once the person stream holds AdjustmentApplied: where, and who approved it. */
  applied: { personRevision: number; approvedBy: ActorRef } | null;
}

export class AdjustmentIndex {
  private readonly byId = new Map<string, AdjustmentEntry>();
  private readonly bySettlement = new Map<string, string[]>();

  get(adjustmentId: string): AdjustmentEntry | undefined {
    return this.byId.get(adjustmentId);
  }

  /** Adjustments of a settlement, in the order they were requested. */
  ofSettlement(settlementId: string): AdjustmentEntry[] {
    return (this.bySettlement.get(settlementId) ?? []).map((id) => this.byId.get(id)!);
  }

  /**
   * The adjustments of a settlement as GET /v1/settlements/{h}/{v} lists them: status only; the
   * reasons and actors are behind GET /v1/adjustments/{id}, which needs a token.
   */
  summariesOf(settlementId: string): Array<{ adjustmentId: string; layerId: string; deltaFen: number; status: AdjustmentStatus }> {
    return this.ofSettlement(settlementId).map((e) => ({
      adjustmentId: e.state.request.adjustmentId,
      layerId: e.state.request.layerId,
      deltaFen: e.state.request.deltaFen,
      status: e.applied !== null ? 'approved' : e.state.status,
    }));
  }

  /** An event of an adjustment's own stream. */
  applyOwn(revision: number, type: string, data: unknown): void {
    const event = { type, data } as AdjustmentEvent;
    const id = event.data.adjustmentId;
    const before = this.byId.get(id);
    const state = evolveAdjustment(before?.state ?? null, event);
    if (state === null) return;
    this.byId.set(id, { state, revision, applied: before?.applied ?? null });
    if (before === undefined) {
      const ids = this.bySettlement.get(state.request.settlementId) ?? [];
      ids.push(id);
      this.bySettlement.set(state.request.settlementId, ids);
    }
  }

  /** AdjustmentApplied, from the person stream. */
  applyApplied(personRevision: number, data: AdjustmentAppliedData): void {
    const entry = this.byId.get(data.adjustmentId);
    // The request is always recorded before its approval, so the entry exists.
    if (entry === undefined || entry.applied !== null) return;
    entry.applied = { personRevision, approvedBy: data.approvedBy };
  }
}
