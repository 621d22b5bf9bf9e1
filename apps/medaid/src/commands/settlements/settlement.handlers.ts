// Settle (同步结算), preview (预结算) and reverse (结算撤销) a discharge. The order of checks is the
// contract's (spec §8): malformed input was rejected at the edge; then the visit's idempotency
// (duplicate / VISIT_CONFLICT), the policy in force, and the person's own checks in the domain.
import { Command, CommandHandler, ICommandHandler } from '@nestjs/cqrs';
import {
  Discharge, Fen, Policy, Result, SettledData, SettlementResult, decidePerson, fromSettledData, fundKey, fundRoomFor, personStream, yearOf, decideVisitReversal, decideVisitSettlement, fail, ok, selectPolicy,
  settle, settlementIdFor, settlementResult,
} from '#domain';
import { ReadModel, fingerprintOf, visitKey } from '../../shared/read-model.js';
import { CommandMeta, EventWriter, reversalEventId, settlementEventId } from '../../shared/writer.js';

export interface SettleOutcome { result: SettlementResult; created: boolean }

export class SettleDischarge extends Command<Result<SettleOutcome>> {
  constructor(readonly discharge: Discharge, readonly meta: CommandMeta) { super(); }
}
export class PreviewDischarge extends Command<Result<SettlementResult>> {
  constructor(readonly discharge: Discharge) { super(); }
}
export class ReverseSettlement extends Command<Result<SettlementResult>> {
  constructor(readonly hospitalId: string, readonly visitId: string, readonly reason: string, readonly meta: CommandMeta) { super(); }
}

function policyInForce(model: ReadModel, d: Discharge) {
  const selected = selectPolicy(model.registry.byKey.values(), d.region, d.dischargeDate);
  return selected?.policy ?? null;
}

/** What the funds that may not be overdrawn still have for the discharge's region and year. */
function fundRoom(model: ReadModel, policy: Policy, d: Discharge): Record<string, Fen> | undefined {
  if (policy.funds === undefined) return undefined;
  return fundRoomFor(policy, d.region, yearOf(d.dischargeDate), (key) => model.funds.get(key), (key) => model.fundReserved.get(key) ?? 0);
}

/** Holds what the settlement takes from limited funds until it is recorded, so no other settlement can use it. */
function reserve(model: ReadModel, policy: Policy, s: SettledData, room: Record<string, Fen> | undefined): () => void {
  if (room === undefined) return () => {};
  const taken: Array<[string, Fen]> = [];
  s.layers.forEach((l, i) => {
    const fund = policy.layers[i]!.fund;
    if (l[4] > 0 && Object.hasOwn(room, fund)) taken.push([fundKey(fund, s.discharge.region, s.year), l[4]]);
  });
  return taken.length === 0 ? () => {} : model.reserveFunds(taken);
}
const noPolicy = (d: Discharge) => fail('NO_POLICY_IN_FORCE', `no published policy of region ${d.region} is in force on ${d.dischargeDate}`, [
  { field: 'dischargeDate', problem: `no policy of region ${d.region} in force on this date` },
]);

@CommandHandler(SettleDischarge)
export class SettleDischargeHandler implements ICommandHandler<SettleDischarge> {
  constructor(private readonly writer: EventWriter) {}

  async execute({ discharge: d, meta }: SettleDischarge): Promise<Result<SettleOutcome>> {
    const { model } = this.writer;
    // The visit lock makes "same discharge posted concurrently" settle once: the second post
    // waits, then finds the first one's settlement and returns it as a duplicate.
    return this.writer.locks.run(`visit:${visitKey(d.hospitalId, d.visitId)}`, async () => {
      const fingerprint = fingerprintOf(d);
      const visit = decideVisitSettlement(model.visits.get(visitKey(d.hospitalId, d.visitId)), fingerprint);
      if (!visit.ok) return visit;
      if (visit.value.kind === 'duplicate') {
        const { personId, revision } = visit.value.active;
        return ok({ result: settlementResult(await this.writer.readSettlement(personId, revision), 'settled', true), created: false });
      }
      const policy = policyInForce(model, d);
      if (policy === null) return noPolicy(d);
      const settlementId = settlementIdFor(d.hospitalId, d.visitId, visit.value.attempt);
      // Fund room held by this settlement until its append is done (or re-decided after a conflict).
      let release = () => {};
      try {
        const { value } = await this.writer.decideForPerson<Result<SettleOutcome>>(d.personId, meta, (entry) => {
          release();
          const fundRoomFen = fundRoom(model, policy, d);
          const decided = decidePerson({ type: 'SettleDischarge', discharge: d, fingerprint, settlementId, policy, fundRoomFen }, entry.state, model.personContext);
          if (!decided.ok) return { error: decided };
          const [event] = decided.value;
          if (event?.type !== 'DischargeSettled') throw new Error('settling a discharge records exactly one DischargeSettled');
          release = reserve(model, policy, event.data, fundRoomFen);
          const result = settlementResult(fromSettledData(event.data, policy), 'settled', false);
          return { events: decided.value, eventIds: [settlementEventId(settlementId)], value: ok({ result, created: true }) };
        });
        return value;
      } finally {
        release();
      }
    });
  }
}

@CommandHandler(PreviewDischarge)
export class PreviewDischargeHandler implements ICommandHandler<PreviewDischarge> {
  constructor(private readonly writer: EventWriter) {}

  async execute({ discharge: d }: PreviewDischarge): Promise<Result<SettlementResult>> {
    const { model } = this.writer;
    const policy = policyInForce(model, d);
    if (policy === null) return noPolicy(d);
    // A preview records nothing; its id says which settlement of the visit it would become.
    const attempts = model.visits.get(visitKey(d.hospitalId, d.visitId))?.length ?? 0;
    const computed = settle(d, policy, settlementIdFor(d.hospitalId, d.visitId, attempts + 1), model.person(d.personId).state, undefined, fundRoom(model, policy, d));
    return computed.ok ? ok(settlementResult(computed.value, 'preview', false)) : computed;
  }
}

@CommandHandler(ReverseSettlement)
export class ReverseSettlementHandler implements ICommandHandler<ReverseSettlement> {
  constructor(private readonly writer: EventWriter) {}

  async execute({ hospitalId, visitId, reason, meta }: ReverseSettlement): Promise<Result<SettlementResult>> {
    const { model } = this.writer;
    return this.writer.locks.run(`visit:${visitKey(hospitalId, visitId)}`, async () => {
      const found = decideVisitReversal(model.visits.get(visitKey(hospitalId, visitId)), hospitalId, visitId);
      if (!found.ok) return found;
      const { personId, settlementId, revision } = found.value;
      const record = await this.writer.readSettlement(personId, revision);
      const { value } = await this.writer.decideForPerson<Result<SettlementResult>>(personId, meta, (entry) => {
        const decided = decidePerson({ type: 'ReverseSettlement', personId, settlementId, hospitalId, visitId, reason }, entry.state, model.personContext);
        if (!decided.ok) return { error: decided };
        return { events: decided.value, eventIds: [reversalEventId(settlementId)], value: ok(settlementResult(record, 'reversed', false)) };
      });
      return value;
    });
  }
}

/** Current state and history of one visit (GET /v1/settlements/{hospitalId}/{visitId}). */
export async function visitHistory(writer: EventWriter, hospitalId: string, visitId: string) {
  const attempts = writer.model.visits.get(visitKey(hospitalId, visitId));
  if (attempts === undefined || attempts.length === 0) return null;
  const history = await Promise.all(attempts.map(async (a) => {
    const settled = await writer.readEvent(personStream(a.personId), a.revision);
    const reversal = a.reversalRevision === null ? null : await writer.readEvent(personStream(a.personId), a.reversalRevision);
    // Listed only when the settlement has adjustments, so a view without any keeps its shape.
    const adjustments = writer.model.adjustments.summariesOf(a.settlementId);
    return {
      ...settlementResult(writer.model.settlementRecord(settled!.data as SettledData), a.status, false),
      settledAtMs: settled!.createdMs,
      reversal: reversal ? { reason: (reversal.data as { reason: string }).reason, reversedAtMs: reversal.createdMs } : null,
      ...(adjustments.length > 0 ? { adjustments } : {}),
    };
  }));
  return { current: history[history.length - 1]!, history };
}
