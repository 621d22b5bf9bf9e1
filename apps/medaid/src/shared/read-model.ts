// The whole log folded in memory: the policy registry and fund accounts (by the service's own
// decision-state code), each visit's settlements and each person's state. `medaid audit verify` and `audit replay` fold the log with it, from
// the first event to the last; the service itself no longer does (decision-state.ts, lookups.ts).
import {
  ADJUSTMENT_STREAM_PREFIX,
  PERSON_STREAM_PREFIX,
  FundAccount,
  FundAllocatedData,
  PersonContext,
  PersonEvent,
  PolicyRegistry,
  SettledData,
  SettlementRecord,
  evolvePerson,
  fundKey,
  initialPersonState,
} from '#domain';
import { EventStore } from '#event-store';
import { AdjustmentIndex } from './adjustment-index.js';
import { DecisionState, PersonEntry, TakenFunds, takenBy } from './decision-state.js';
import type { VisitEntry } from './lookups.js';

export { fingerprintOf } from './lookups.js';

export const visitKey = (hospitalId: string, visitId: string) => `${hospitalId}/${visitId}`;

export class ReadModel {
  /**
   * Policies, fund accounts and allocations, folded by the very code the service decides with
   * (decision-state.ts): an audit compares the service's funds with these. Its person cache is
   * never read here; persons are kept whole below.
   */
  private readonly decisions = new DecisionState(1);
  readonly visits = new Map<string, VisitEntry[]>();
  readonly persons = new Map<string, PersonEntry>();
  /** Adjustments (maker–checker) by id and by settlement. */
  readonly adjustments = new AdjustmentIndex();
  /** What each active settlement took from which fund (with its applied adjustments): a reversal gives it back. */
  private readonly settlementFunds = new Map<string, TakenFunds>();

  get registry(): PolicyRegistry {
    return this.decisions.registry;
  }
  /** Fund accounts by fundKey(fund, region, year): allocations, money received, money paid. */
  get funds(): ReadonlyMap<string, FundAccount> {
    return this.decisions.funds;
  }
  /** Recorded allocations by allocationKey. */
  get allocations(): ReadonlyMap<string, FundAllocatedData> {
    return this.decisions.allocations;
  }
  /** Global position of the last event applied. */
  get position(): number {
    return this.decisions.position;
  }
  get eventCount(): number {
    return this.decisions.eventCount;
  }

  /** What the person decider needs to know beyond the person's stream: the published categories. */
  get personContext(): PersonContext {
    return this.decisions.personContext;
  }

  /** A recorded settlement in full, read with the policy version it names (always in the log before it). */
  settlementRecord(data: SettledData): SettlementRecord {
    return this.decisions.settlementRecord(data);
  }

  person(personId: string): PersonEntry {
    return this.persons.get(personId) ?? { state: initialPersonState(), revision: -1 };
  }

  /** Reads the whole log in pages and applies it; returns the number of events read. */
  async rebuild(store: EventStore, pageSize = 10_000): Promise<number> {
    let read = 0;
    for (;;) {
      const page = await store.readAll({ fromPosition: this.position, maxCount: pageSize });
      for (const e of page) this.apply(e.streamId, e.revision, e.position, e.type, e.data);
      read += page.length;
      if (page.length < pageSize) return read;
    }
  }

  apply(streamId: string, revision: number, position: number, type: string, data: unknown): void {
    const personEvent = streamId.startsWith(PERSON_STREAM_PREFIX) ? ({ type, data } as PersonEvent) : null;
    this.decisions.apply({ streamId, revision, position, type, data }, personEvent === null ? undefined : this.refundOf(personEvent));
    if (streamId.startsWith(ADJUSTMENT_STREAM_PREFIX)) {
      this.adjustments.applyOwn(revision, type, data);
      return;
    }
    if (personEvent === null) return;
    const personId = streamId.slice(PERSON_STREAM_PREFIX.length);
    const event = personEvent;
    const before = this.person(personId);
    this.persons.set(personId, { state: evolvePerson(before.state, event), revision });
    if (event.type === 'AdjustmentApplied') this.adjustments.applyApplied(revision, event.data);
    if (event.type === 'DischargeSettled') {
      const r = event.data;
      const key = visitKey(r.discharge.hospitalId, r.discharge.visitId);
      const attempt: VisitEntry = {
        settlementId: r.settlementId,
        personId,
        revision,
        fingerprint: r.fingerprint,
        status: 'settled',
        reversalRevision: null,
      };
      const attempts = this.visits.get(key);
      // Most visits are settled once: a one-slot array (push onto [] would reserve 17 slots, ~130 B per visit).
      if (attempts === undefined) this.visits.set(key, [attempt]);
      else attempts.push(attempt);
    } else if (event.type === 'SettlementReversed') {
      const attempt = this.visits
        .get(visitKey(event.data.hospitalId, event.data.visitId))
        ?.find((a) => a.settlementId === event.data.settlementId);
      if (attempt) {
        attempt.status = 'reversed';
        attempt.reversalRevision = revision;
      }
    }
  }

  /**
   * Keeps what a settlement and its adjustments take from funds, and hands it back for its
   * reversal (the refund the decision state applies; the service reads it from the visit instead).
   */
  private refundOf(event: PersonEvent): TakenFunds | undefined {
    switch (event.type) {
      case 'DischargeSettled': {
        const taken = takenBy(event.data.settlementId, [event], this.registry);
        if (taken.length > 0) this.settlementFunds.set(event.data.settlementId, taken);
        return undefined;
      }
      case 'AdjustmentApplied': {
        const a = event.data;
        const taken = this.settlementFunds.get(a.settlementId) ?? [];
        taken.push([fundKey(a.fund, a.region, a.year), a.deltaFen]); // a later reversal gives the adjustment back too
        this.settlementFunds.set(a.settlementId, taken);
        return undefined;
      }
      case 'SettlementReversed': {
        const taken = this.settlementFunds.get(event.data.settlementId) ?? [];
        this.settlementFunds.delete(event.data.settlementId);
        return taken;
      }
      default:
        return undefined;
    }
  }
}
