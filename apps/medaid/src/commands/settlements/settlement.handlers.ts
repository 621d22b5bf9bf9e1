// Settle (同步结算), preview (预结算) and reverse (结算撤销) a discharge. The order of checks is the
// contract's (spec §8): malformed input was rejected at the edge; then the visit's idempotency
// (duplicate / VISIT_CONFLICT), the policy in force, and the person's own checks in the domain.
import { Command, CommandHandler, ICommandHandler } from '@nestjs/cqrs';
import {
  Discharge,
  Fen,
  Policy,
  Result,
  SettledData,
  SettlementResult,
  decidePerson,
  fromSettledData,
  fundKey,
  fundRoomFor,
  yearOf,
  decideVisitReversal,
  decideVisitSettlement,
  fail,
  ok,
  selectPolicy,
  settle,
  settlementIdFor,
  settlementResult,
} from '#domain';
import { AppendConditionFailedError } from '#event-store';
import { answerOnce } from '../../shared/command-answers.js';
import { DecisionState, takenBy } from '../../shared/decision-state.js';
import { VisitView, fingerprintOf, readVisit, settledEvent, visitCondition } from '../../shared/lookups.js';
import { CommandMeta, EventWriter, eventIdsOf, reversalEventId, settlementEventId } from '../../shared/writer.js';
import { metrics } from '../../shared/metrics.js';
import { inSpan } from '../../shared/tracing.js';

/**
 * How often a visit command is decided: a settlement's first attempt assumes a new visit, and the
 * visit is read and the command decided again when the store finds an event of the visit after
 * what the decision saw (at most twice more, when another process keeps recording that visit).
 */
const MAX_VISIT_ATTEMPTS = 3;

/** A visit with no event: what a settlement's first attempt assumes (the store checks it). */
const NO_VISIT_EVENTS: VisitView = { attempts: [], events: [], position: 0 };

/** Runs a visit command; when the store refuses its append because the visit moved meanwhile, reads the visit again and decides again. */
async function onVisit<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (e) {
      if (!(e instanceof AppendConditionFailedError) || attempt >= MAX_VISIT_ATTEMPTS) throw e;
    }
  }
}

const visitLock = (hospitalId: string, visitId: string) => `visit:${hospitalId}/${visitId}`;

export interface SettleOutcome {
  result: SettlementResult;
  created: boolean;
}

export class SettleDischarge extends Command<Result<SettleOutcome>> {
  constructor(
    readonly discharge: Discharge,
    readonly meta: CommandMeta,
  ) {
    super();
  }
}
export class PreviewDischarge extends Command<Result<SettlementResult>> {
  constructor(readonly discharge: Discharge) {
    super();
  }
}
export class ReverseSettlement extends Command<Result<SettlementResult>> {
  constructor(
    readonly hospitalId: string,
    readonly visitId: string,
    readonly reason: string,
    readonly meta: CommandMeta,
  ) {
    super();
  }
}

function policyInForce(model: DecisionState, d: Discharge) {
  const selected = selectPolicy(model.registry.byKey.values(), d.region, d.dischargeDate);
  return selected?.policy ?? null;
}

/** What the funds that may not be overdrawn still have for the discharge's region and year. */
function fundRoom(model: DecisionState, policy: Policy, d: Discharge): Record<string, Fen> | undefined {
  if (policy.funds === undefined) return undefined;
  return fundRoomFor(
    policy,
    d.region,
    yearOf(d.dischargeDate),
    (key) => model.funds.get(key),
    (key) => model.fundReserved.get(key) ?? 0,
  );
}

/** Holds what the settlement takes from limited funds until it is recorded, so no other settlement can use it. */
function reserve(
  model: DecisionState,
  policy: Policy,
  s: SettledData,
  room: Record<string, Fen> | undefined,
): { release: () => void; takes: boolean } {
  if (room === undefined) return { release: () => {}, takes: false };
  const taken: Array<[string, Fen]> = [];
  s.layers.forEach((l, i) => {
    const fund = policy.layers[i]!.fund;
    if (l[4] > 0 && Object.hasOwn(room, fund)) taken.push([fundKey(fund, s.discharge.region, s.year), l[4]]);
  });
  return taken.length === 0 ? { release: () => {}, takes: false } : { release: model.reserveFunds(taken), takes: true };
}
const noPolicy = (d: Discharge) =>
  fail('NO_POLICY_IN_FORCE', `no published policy of region ${d.region} is in force on ${d.dischargeDate}`, [
    { field: 'dischargeDate', problem: `no policy of region ${d.region} in force on this date` },
  ]);

@CommandHandler(SettleDischarge)
export class SettleDischargeHandler implements ICommandHandler<SettleDischarge> {
  constructor(private readonly writer: EventWriter) {}

  async execute({ discharge: d, meta }: SettleDischarge): Promise<Result<SettleOutcome>> {
    return inSpan('medaid.SettleDischarge', { 'medaid.command': 'SettleDischarge' }, async (span) => {
      const answer = await answerOnce(this.writer, meta, 'SettleDischarge', d, () => this.settle(d, meta));
      const outcome = outcomeLabel(answer, answer.ok && !answer.value.created ? 'duplicate' : 'settled');
      metrics.command('SettleDischarge', outcome);
      span.setAttribute('medaid.outcome', outcome);
      return answer;
    });
  }

  private async settle(d: Discharge, meta: CommandMeta): Promise<Result<SettleOutcome>> {
    const { state: model, store } = this.writer;
    // The visit lock makes "same discharge posted concurrently" settle once in this process: the
    // second post waits, then finds the first one's settlement and returns it as a duplicate. The
    // store's append condition makes it so across processes too (another writer of the same store).
    // Most discharges are a visit's first: the first attempt assumes the visit has no event at all
    // and says so in its condition, which the store checks in the append's transaction; only when
    // the store refuses it (a re-post, a visit settled before) are the visit's events read.
    let firstAttempt = true;
    return this.writer.locks.run(visitLock(d.hospitalId, d.visitId), () =>
      onVisit(async () => {
        const fingerprint = fingerprintOf(d);
        const view = firstAttempt ? NO_VISIT_EVENTS : await readVisit(store, d.hospitalId, d.visitId);
        firstAttempt = false;
        const visit = decideVisitSettlement(view.attempts, fingerprint);
        if (!visit.ok) return visit;
        if (visit.value.kind === 'duplicate') {
          const settled = settledEvent(view, visit.value.active.settlementId)!;
          return ok({ result: settlementResult(model.settlementRecord(settled.data as SettledData), 'settled', true), created: false });
        }
        const policy = policyInForce(model, d);
        if (policy === null) return noPolicy(d);
        const settlementId = settlementIdFor(d.hospitalId, d.visitId, visit.value.attempt);
        // Fund room held by this settlement until its append is done (or re-decided after a conflict).
        let release = () => {};
        try {
          const { value } = await this.writer.decideForPerson<Result<SettleOutcome>>(
            d.personId,
            meta,
            (entry) => {
              release();
              const fundRoomFen = fundRoom(model, policy, d);
              const decided = decidePerson(
                { type: 'SettleDischarge', discharge: d, fingerprint, settlementId, policy, fundRoomFen },
                entry.state,
                model.personContext,
              );
              if (!decided.ok) return { error: decided };
              const [event] = decided.value;
              if (event?.type !== 'DischargeSettled') throw new Error('settling a discharge records exactly one DischargeSettled');
              const held = reserve(model, policy, event.data, fundRoomFen);
              release = held.release;
              const result = settlementResult(fromSettledData(event.data, policy), 'settled', false);
              return {
                events: decided.value,
                eventIds: eventIdsOf(settlementEventId(settlementId), decided.value),
                value: ok({ result, created: true }),
                // what it takes from a fund that may not be overdrawn: decided on the funds as of now (writer.ts)
                ...(held.takes ? { fundScope: { region: d.region, year: event.data.year } } : {}),
              };
            },
            { condition: visitCondition(d.hospitalId, d.visitId, view) },
          );
          return value;
        } finally {
          release();
        }
      }),
    );
  }
}

@CommandHandler(PreviewDischarge)
export class PreviewDischargeHandler implements ICommandHandler<PreviewDischarge> {
  constructor(private readonly writer: EventWriter) {}

  async execute({ discharge: d }: PreviewDischarge): Promise<Result<SettlementResult>> {
    const { state: model, store } = this.writer;
    const policy = policyInForce(model, d);
    if (policy === null) return noPolicy(d);
    // A preview records nothing; its id says which settlement of the visit it would become.
    const attempts = (await readVisit(store, d.hospitalId, d.visitId)).attempts.length;
    const person = await model.person(store, d.personId);
    const computed = settle(
      d,
      policy,
      settlementIdFor(d.hospitalId, d.visitId, attempts + 1),
      person.state,
      undefined,
      fundRoom(model, policy, d),
    );
    return computed.ok ? ok(settlementResult(computed.value, 'preview', false)) : computed;
  }
}

@CommandHandler(ReverseSettlement)
export class ReverseSettlementHandler implements ICommandHandler<ReverseSettlement> {
  constructor(private readonly writer: EventWriter) {}

  async execute({ hospitalId, visitId, reason, meta }: ReverseSettlement): Promise<Result<SettlementResult>> {
    const answer = await answerOnce(this.writer, meta, 'ReverseSettlement', { hospitalId, visitId, reason }, async () => {
      const r = await this.reverse(hospitalId, visitId, reason, meta);
      return r.ok ? ok({ result: r.value, created: false }) : r;
    });
    metrics.command('ReverseSettlement', outcomeLabel(answer, 'reversed'));
    if (!answer.ok) return answer;
    const reversed: Result<SettlementResult> & { replayed?: boolean } = { ok: true, value: answer.value.result, replayed: answer.replayed };
    return reversed;
  }

  private async reverse(hospitalId: string, visitId: string, reason: string, meta: CommandMeta): Promise<Result<SettlementResult>> {
    const { state: model, store } = this.writer;
    return this.writer.locks.run(visitLock(hospitalId, visitId), () =>
      onVisit(async () => {
        const view = await readVisit(store, hospitalId, visitId);
        const found = decideVisitReversal(view.attempts, hospitalId, visitId);
        if (!found.ok) return found;
        const { personId, settlementId } = found.value;
        const record = model.settlementRecord(settledEvent(view, settlementId)!.data as SettledData);
        // What the settlement and its adjustments took from funds goes back to them.
        const taken = takenBy(settlementId, view.events, model.registry);
        const { value } = await this.writer.decideForPerson<Result<SettlementResult>>(
          personId,
          meta,
          (entry) => {
            const decided = decidePerson(
              { type: 'ReverseSettlement', personId, settlementId, hospitalId, visitId, reason },
              entry.state,
              model.personContext,
            );
            if (!decided.ok) return { error: decided };
            return {
              events: decided.value,
              eventIds: eventIdsOf(reversalEventId(settlementId), decided.value),
              value: ok(settlementResult(record, 'reversed', false)),
            };
          },
          { condition: visitCondition(hospitalId, visitId, view), taken },
        );
        return value;
      }),
    );
  }
}

/** A command's outcome as a metric label: replayed (answered from its record), the error code, or what it did. */
function outcomeLabel(answer: Result<unknown> & { replayed?: boolean }, done: string): string {
  if (answer.replayed === true) return 'replayed';
  return answer.ok ? done : answer.error.code;
}
