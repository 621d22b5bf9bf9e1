// The whole log folded in memory: the policy registry, each visit's settlements, each person's
// state and each fund account. `medaid audit verify` and `audit replay` fold the log with it, from
// the first event to the last; the service itself no longer does (decision-state.ts, lookups.ts).
import {
  ADJUSTMENT_STREAM_PREFIX,
  Fen,
  PERSON_STREAM_PREFIX,
  FundAccount,
  FundAllocatedData,
  PersonContext,
  PersonEvent,
  PersonState,
  PolicyPublishedEvent,
  PolicyRegistry,
  SettledData,
  SettlementRecord,
  allocationKey,
  applyAllocation,
  applyPolicyPublished,
  emptyFundAccount,
  evolvePerson,
  fromSettledData,
  fundKey,
  initialPersonState,
  initialPolicyRegistry,
  policyKey,
} from '#domain';
import { EventStore } from '#event-store';
import { AdjustmentIndex } from './adjustment-index.js';
import type { PersonEntry } from './decision-state.js';
import type { VisitEntry } from './lookups.js';

export { fingerprintOf } from './lookups.js';

export const visitKey = (hospitalId: string, visitId: string) => `${hospitalId}/${visitId}`;

export class ReadModel {
  readonly registry: PolicyRegistry = initialPolicyRegistry();
  readonly visits = new Map<string, VisitEntry[]>();
  readonly persons = new Map<string, PersonEntry>();
  /** Adjustments (maker–checker) by id and by settlement. */
  readonly adjustments = new AdjustmentIndex();
  /** Fund accounts by fundKey(fund, region, year): allocations, money received, money paid. */
  readonly funds = new Map<string, FundAccount>();
  /** Recorded allocations by allocationKey: the idempotency index of allocations. */
  readonly allocations = new Map<string, FundAllocatedData>();
  /**
   * What each active settlement took from which fund (with its applied adjustments), as a flat
   * list [key, fen, key, fen, …]: a reversal gives it back. One array per settlement, not one per fund.
   */
  private readonly settlementFunds = new Map<string, Array<string | Fen>>();
  /** The fund keys in use, each one string: a settlement's list points at it instead of building its own. */
  private readonly fundKeys = new Map<string, Map<string, Map<number, string>>>();
  /** Global position of the last event applied. */
  position = 0;
  eventCount = 0;

  /** What the person decider needs to know beyond the person's stream: the published categories. */
  readonly personContext: PersonContext = { isKnownCategory: (code) => this.registry.categoryCodes.has(code) };

  /** A recorded settlement in full, read with the policy version it names (always in the log before it). */
  settlementRecord(data: SettledData): SettlementRecord {
    const published = this.registry.byKey.get(policyKey(data.policy.policyId, data.policy.version));
    if (published === undefined)
      throw new Error(
        `settlement ${data.settlementId} names policy ${data.policy.policyId} v${data.policy.version}, which is not in the log`,
      );
    return fromSettledData(data, published.policy);
  }

  /**
   * The fund account, created on first use. The read model owns these objects and updates them in
   * place (a settlement touches several funds; no copy per layer); readers copy what they show.
   */
  private ownAccount(key: string, fund: string, region: string, year: number): FundAccount {
    let account = this.funds.get(key);
    if (account === undefined) {
      account = emptyFundAccount(fund, region, year);
      this.funds.set(key, account);
    }
    return account;
  }

  /** Money paid out of (or back into) funds by a person event. */
  private applyToFunds(event: PersonEvent): void {
    switch (event.type) {
      case 'DischargeSettled': {
        const s = event.data;
        const policy = this.registry.byKey.get(policyKey(s.policy.policyId, s.policy.version))?.policy;
        if (policy === undefined) return;
        let taken: Array<string | Fen> | undefined;
        for (let i = 0; i < s.layers.length; i++) {
          const fen = s.layers[i]![4];
          if (fen === 0) continue;
          const fund = policy.layers[i]!.fund;
          const key = this.fundKeyOf(fund, s.discharge.region, s.year);
          this.ownAccount(key, fund, s.discharge.region, s.year).paidFen += fen;
          if (taken === undefined)
            taken = [key, fen]; // a literal holds 2 slots; push onto [] would reserve 17
          else taken.push(key, fen);
        }
        if (taken !== undefined) this.settlementFunds.set(s.settlementId, taken);
        return;
      }
      case 'SettlementReversed': {
        const taken = this.settlementFunds.get(event.data.settlementId) ?? [];
        for (let i = 0; i < taken.length; i += 2) this.funds.get(taken[i] as string)!.paidFen -= taken[i + 1] as Fen;
        this.settlementFunds.delete(event.data.settlementId);
        return;
      }
      case 'AdjustmentApplied': {
        const a = event.data;
        const key = this.fundKeyOf(a.fund, a.region, a.year);
        this.ownAccount(key, a.fund, a.region, a.year).paidFen += a.deltaFen;
        const taken = this.settlementFunds.get(a.settlementId) ?? [];
        taken.push(key, a.deltaFen); // a later reversal gives the adjustment back too
        this.settlementFunds.set(a.settlementId, taken);
        return;
      }
      case 'EnrolmentSubsidyGranted': {
        // 资助参保: the aid fund pays the premium into the insurance fund.
        const s = event.data;
        const from = fundKey(s.fromFund, s.region, s.year);
        const to = fundKey(s.toFund, s.region, s.year);
        this.ownAccount(from, s.fromFund, s.region, s.year).paidFen += s.amountFen;
        this.ownAccount(to, s.toFund, s.region, s.year).receivedFen += s.amountFen;
        return;
      }
      default:
        return;
    }
  }

  /** fundKey(fund, region, year), one string per key however many settlements name it. */
  private fundKeyOf(fund: string, region: string, year: number): string {
    let byRegion = this.fundKeys.get(fund);
    if (byRegion === undefined) this.fundKeys.set(fund, (byRegion = new Map()));
    let byYear = byRegion.get(region);
    if (byYear === undefined) byRegion.set(region, (byYear = new Map()));
    let key = byYear.get(year);
    if (key === undefined) byYear.set(year, (key = fundKey(fund, region, year)));
    return key;
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
    this.position = Math.max(this.position, position);
    this.eventCount += 1;
    if (type === 'PolicyPublished') {
      applyPolicyPublished(this.registry, { type, data } as PolicyPublishedEvent);
      return;
    }
    if (type === 'FundAllocated') {
      const e = data as FundAllocatedData;
      const key = fundKey(e.fund, e.region, e.year);
      this.funds.set(key, applyAllocation(this.ownAccount(key, e.fund, e.region, e.year), e));
      this.allocations.set(allocationKey(e), e);
      return;
    }
    if (streamId.startsWith(ADJUSTMENT_STREAM_PREFIX)) {
      this.adjustments.applyOwn(revision, type, data);
      return;
    }
    if (!streamId.startsWith(PERSON_STREAM_PREFIX)) return;
    const personId = streamId.slice(PERSON_STREAM_PREFIX.length);
    const event = { type, data } as PersonEvent;
    const before = this.person(personId);
    this.persons.set(personId, { state: evolvePerson(before.state, event), revision });
    if (event.type === 'AdjustmentApplied') this.adjustments.applyApplied(revision, event.data);
    this.applyToFunds(event);
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
}
