// Adjustments with maker–checker: request (the maker), approve (a different admin, the checker),
// reject, and read. The rules are the domain's (libs/domain/src/adjustment.ts).
//
// Approval writes two streams, and the store has no transaction across streams. So the person
// stream's AdjustmentApplied is the authority: it is appended first, with an event id derived from
// the adjustment id (a retry can never apply it twice, and the person state ignores a second
// one), and only then AdjustmentApproved in the adjustment's own stream. Once AdjustmentApplied is
// recorded the adjustment IS approved. If the process dies between the two appends, the adjustment
// stream lags; the next approval attempt, rejection or read of that adjustment appends the missing
// AdjustmentApproved (with the checker named by AdjustmentApplied), and a rejection is refused.
import { Command, CommandHandler, ICommandHandler } from '@nestjs/cqrs';
import {
  AdjustmentRequest,
  Policy,
  Result,
  SettlementRecord,
  assert,
  decideAdjustmentRequest,
  decideApplication,
  decideApproval,
  decideRejection,
  SettledData,
  decideVisitReversal,
  fail,
  fundKey,
  fundRoomFor,
  isAppliedTo,
  ok,
  policyKey,
  adjustmentStream,
  personStream,
} from '#domain';
import { deterministicEventId } from '#event-store';
import { randomUUID } from 'node:crypto';
import { DecisionState } from '../../shared/decision-state.js';
import { VisitEntry, VisitView, readAdjustment, readVisit, settledEvent } from '../../shared/lookups.js';
import { CommandMeta, EventWriter, SYSTEM_ACTOR } from '../../shared/writer.js';
import { AdjustmentInput, SettlementRef } from './adjustment.dto.js';

/** Event ids derived from the adjustment id: a retried append is recognised, never recorded twice. */
const eventId = (type: string, adjustmentId: string) => deterministicEventId(type, adjustmentId);

/** An adjustment stream holds at most three events; reading it is bounded anyway. */
const MAX_ADJUSTMENT_EVENTS = 10;

export class RequestAdjustment extends Command<Result<string>> {
  constructor(
    readonly input: AdjustmentInput,
    readonly meta: CommandMeta,
  ) {
    super();
  }
}
export class ApproveAdjustment extends Command<Result<string>> {
  constructor(
    readonly adjustmentId: string,
    readonly meta: CommandMeta,
  ) {
    super();
  }
}
export class RejectAdjustment extends Command<Result<string>> {
  constructor(
    readonly adjustmentId: string,
    readonly reason: string,
    readonly meta: CommandMeta,
  ) {
    super();
  }
}

const adjustmentNotFound = (id: string) => fail('ADJUSTMENT_NOT_FOUND', `adjustment ${id} not found`);

/** The settlement a request names: by id, or the visit's active one; with the visit it belongs to. */
async function findSettlement(writer: EventWriter, ref: SettlementRef): Promise<Result<{ attempt: VisitEntry; view: VisitView }>> {
  if ('hospitalId' in ref) {
    const view = await readVisit(writer.store, ref.hospitalId, ref.visitId);
    // The same answers as a reversal's: never settled, or its last settlement already reversed.
    const active = decideVisitReversal(view.attempts, ref.hospitalId, ref.visitId);
    return active.ok ? ok({ attempt: view.attempts[view.attempts.length - 1]!, view }) : active;
  }
  const [hospitalId, visitId] = ref.settlementId.split('/') as [string, string];
  const view = await readVisit(writer.store, hospitalId, visitId);
  const attempt = view.attempts.find((a) => a.settlementId === ref.settlementId);
  if (attempt === undefined) return fail('SETTLEMENT_NOT_FOUND', `settlement ${ref.settlementId} was never recorded`);
  if (attempt.status === 'reversed')
    return fail('ALREADY_REVERSED', `settlement ${ref.settlementId} is reversed; only an active settlement can be adjusted`);
  return ok({ attempt, view });
}

function policyOf(model: DecisionState, record: SettlementRecord): Policy {
  const published = model.registry.byKey.get(policyKey(record.policy.policyId, record.policy.version));
  assert(published !== undefined, 'a settlement names a policy version that is in the log');
  return published.policy;
}

/** The settlement an adjustment names, in full, with its policy version. */
async function settlementOf(
  writer: EventWriter,
  request: AdjustmentRequest,
): Promise<{ record: SettlementRecord; policy: Policy; attempt: VisitEntry }> {
  const view = await readVisit(writer.store, request.hospitalId, request.visitId);
  const attempt = view.attempts.find((a) => a.settlementId === request.settlementId);
  const settled = settledEvent(view, request.settlementId);
  assert(attempt !== undefined && settled !== undefined, 'an adjustment names a recorded settlement');
  const record = writer.state.settlementRecord(settled.data as SettledData);
  return { record, policy: policyOf(writer.state, record), attempt };
}

/**
 * Appends the AdjustmentApproved that an applied adjustment's own stream still lacks (see the top
 * of this file). Runs under the adjustment's lock; does nothing when there is nothing to repair.
 */
async function completeApproval(writer: EventWriter, adjustmentId: string, meta: CommandMeta): Promise<void> {
  const entry = await readAdjustment(writer.store, adjustmentId);
  if (entry === undefined || entry.applied === null || entry.state.status !== 'requested') return;
  const data = { adjustmentId, approvedBy: entry.applied.approvedBy };
  await writer.append(
    adjustmentStream(adjustmentId),
    entry.revision,
    [{ id: eventId('AdjustmentApproved', adjustmentId), type: 'AdjustmentApproved', data }],
    meta,
  );
}

const repairMeta = (correlationId: string): CommandMeta => ({ actor: SYSTEM_ACTOR, correlationId });

@CommandHandler(RequestAdjustment)
export class RequestAdjustmentHandler implements ICommandHandler<RequestAdjustment> {
  constructor(private readonly writer: EventWriter) {}

  async execute({ input, meta }: RequestAdjustment): Promise<Result<string>> {
    const { state: model, store } = this.writer;
    const found = await findSettlement(this.writer, input.settlement);
    if (!found.ok) return found;
    const { personId, settlementId } = found.value.attempt;
    const record = model.settlementRecord(settledEvent(found.value.view, settlementId)!.data as SettledData);
    const adjustmentId = randomUUID();
    const { hospitalId, visitId } = record.discharge;
    const request: AdjustmentRequest = {
      adjustmentId,
      settlementId: record.settlementId,
      hospitalId,
      visitId,
      personId,
      layerId: input.layerId,
      deltaFen: input.deltaFen,
      reason: input.reason,
    };
    // Checked against the person as they stand now, so the maker learns at once; the approval checks again.
    const decided = decideAdjustmentRequest(
      request,
      meta.actor,
      record,
      (await model.person(store, personId)).state,
      policyOf(model, record),
    );
    if (!decided.ok) return decided;
    const events = decided.value.map((e) => ({ id: eventId(e.type, adjustmentId), type: e.type, data: e.data }));
    await this.writer.append(adjustmentStream(adjustmentId), -1, events, meta);
    return ok(adjustmentId);
  }
}

@CommandHandler(ApproveAdjustment)
export class ApproveAdjustmentHandler implements ICommandHandler<ApproveAdjustment> {
  constructor(private readonly writer: EventWriter) {}

  async execute({ adjustmentId, meta }: ApproveAdjustment): Promise<Result<string>> {
    const { state: model, store } = this.writer;
    return this.writer.locks.run(`adjustment:${adjustmentId}`, async () => {
      const entry = await readAdjustment(store, adjustmentId);
      if (entry === undefined) return adjustmentNotFound(adjustmentId);
      // Decided on the adjustment's stream as it stands: a lagging one is completed either way,
      // in the checker's own name when this is their retry.
      const decided = decideApproval(entry.state, meta.actor, entry.applied?.approvedBy ?? null);
      await completeApproval(this.writer, adjustmentId, decided.ok ? meta : repairMeta(meta.correlationId));
      if (!decided.ok) return decided;
      if (decided.value === 'apply') {
        const { request } = entry.state;
        const { record, policy } = await settlementOf(this.writer, request);
        let release = () => {};
        try {
          const { value } = await this.writer.decideForPerson<Result<null>>(request.personId, meta, (person) => {
            release();
            if (isAppliedTo(person.state, request.settlementId, adjustmentId)) return { events: [], eventIds: [], value: ok(null) };
            const applied = decideApplication(entry.state, meta.actor, record, person.state, policy);
            if (!applied.ok) return { error: applied };
            // A raise paid from a fund that may not be overdrawn must fit in what the fund has left,
            // and holds that room until it is recorded (as a settlement does).
            const a = applied.value;
            const room =
              a.deltaFen > 0
                ? fundRoomFor(
                    policy,
                    a.region,
                    a.year,
                    (k) => model.funds.get(k),
                    (k) => model.fundReserved.get(k) ?? 0,
                  )[a.fund]
                : undefined;
            if (room !== undefined && a.deltaFen > room) {
              const message = `fund ${a.fund} has ${room} fen left for ${a.region} ${a.year}; a raise of ${a.deltaFen} fen would overdraw it`;
              return { error: fail('ADJUSTMENT_OUT_OF_RANGE', message, [{ field: 'deltaFen', problem: message }]) };
            }
            if (room !== undefined) release = model.reserveFunds([[fundKey(a.fund, a.region, a.year), a.deltaFen]]);
            return {
              events: [{ type: 'AdjustmentApplied', data: a }],
              eventIds: [eventId('AdjustmentApplied', adjustmentId)],
              value: ok(null),
              // a raise from a fund that may not be overdrawn: decided on the funds as of now (writer.ts)
              ...(room !== undefined ? { fundScope: { region: a.region, year: a.year } } : {}),
            };
          });
          if (!value.ok) return value;
        } finally {
          release();
        }
      }
      await completeApproval(this.writer, adjustmentId, meta);
      return ok(adjustmentId);
    });
  }
}

@CommandHandler(RejectAdjustment)
export class RejectAdjustmentHandler implements ICommandHandler<RejectAdjustment> {
  constructor(private readonly writer: EventWriter) {}

  async execute({ adjustmentId, reason, meta }: RejectAdjustment): Promise<Result<string>> {
    return this.writer.locks.run(`adjustment:${adjustmentId}`, async () => {
      await completeApproval(this.writer, adjustmentId, repairMeta(meta.correlationId));
      const entry = await readAdjustment(this.writer.store, adjustmentId);
      if (entry === undefined) return adjustmentNotFound(adjustmentId);
      const decided = decideRejection(entry.state, meta.actor, reason, entry.applied?.approvedBy ?? null);
      if (!decided.ok) return decided;
      const events = decided.value.map((e) => ({ id: eventId(e.type, adjustmentId), type: e.type, data: e.data }));
      await this.writer.append(adjustmentStream(adjustmentId), entry.revision, events, meta);
      return ok(adjustmentId);
    });
  }
}

interface Recorded {
  type: string;
  streamId: string;
  revision: number;
  position: number;
  createdMs: number;
  metadata: unknown;
}

const historyEntry = (e: Recorded) => {
  const meta = (e.metadata ?? {}) as Partial<CommandMeta>;
  return {
    type: e.type,
    actor: meta.actor ?? null,
    requestId: meta.correlationId ?? null,
    atMs: e.createdMs,
    streamId: e.streamId,
    revision: e.revision,
  };
};

/**
 * GET /v1/adjustments/{id}: its state and every event about it with the actor that caused it.
 * A read also repairs an approval whose second append was lost (see the top of this file).
 */
export async function adjustmentView(writer: EventWriter, adjustmentId: string, correlationId: string) {
  return writer.locks.run(`adjustment:${adjustmentId}`, async () => {
    await completeApproval(writer, adjustmentId, repairMeta(correlationId));
    const entry = await readAdjustment(writer.store, adjustmentId);
    if (entry === undefined) return null;
    const { request, requestedBy, rejectedBy, rejectionReason } = entry.state;
    const recorded: Recorded[] = await writer.store.readStream(adjustmentStream(adjustmentId), { maxCount: MAX_ADJUSTMENT_EVENTS });
    if (entry.applied !== null) {
      const applied = await writer.readEvent(personStream(request.personId), entry.applied.personRevision);
      if (applied !== undefined) recorded.push(applied);
    }
    recorded.sort((a, b) => a.position - b.position);
    const attempt = (await readVisit(writer.store, request.hospitalId, request.visitId)).attempts.find(
      (a) => a.settlementId === request.settlementId,
    );
    return {
      ...request,
      status: entry.applied !== null ? 'approved' : entry.state.status,
      requestedBy,
      approvedBy: entry.applied?.approvedBy ?? null,
      rejectedBy,
      rejectionReason,
      settlementStatus: attempt?.status ?? null,
      history: recorded.map(historyEntry),
    };
  });
}
