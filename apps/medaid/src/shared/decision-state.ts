// What the service decides with, and nothing that grows with the length of history:
// - the policy registry and the fund accounts (per fund, region and year) with their allocations:
//   a few thousand small objects at most, always in memory, exact — loaded at start-up from the
//   store's `policies` and `allocations` tags and the decision snapshot, then advanced by the
//   writer after each acknowledged append;
// - persons: a bounded cache (least recently used first out) of each person's state at its stream
//   revision; a miss reads the person's stream. The store's expected revision keeps it honest.
// Visits, adjustments and old settlements are read from the store when a command needs them
// (lookups.ts), never held. See the README ("What lives in memory, what on disk").
import {
  Fen,
  FundAccount,
  FundAllocatedData,
  PERSON_STREAM_PREFIX,
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
  personStream,
  policyKey,
} from '#domain';
import type { EventStore, RecordedEvent } from '#event-store';

export interface PersonEntry {
  state: PersonState;
  /** Revision of the person's stream; -1 when it has no events yet. */
  revision: number;
}

/** What a settlement took from which fund (key, fen), its applied adjustments included: a reversal gives it back. */
export type TakenFunds = Array<[key: string, fen: Fen]>;

/** An event as the state applies it. */
export type StateEvent = Pick<RecordedEvent, 'streamId' | 'revision' | 'position' | 'type' | 'data'>;

/** Default number of persons kept in the cache (MEDAID_PERSON_CACHE): ~2–5 KB each. */
export const DEFAULT_PERSON_CACHE = 20_000;

/** Persons' decision state by id, at most `capacity` of them; the least recently used go first. */
export class PersonCache {
  private readonly entries = new Map<string, PersonEntry>();
  hits = 0;
  misses = 0;

  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError('the person cache holds at least one person');
  }

  get size(): number {
    return this.entries.size;
  }

  get(personId: string): PersonEntry | undefined {
    const entry = this.entries.get(personId);
    if (entry !== undefined) {
      this.entries.delete(personId); // most recently used last
      this.entries.set(personId, entry);
    }
    return entry;
  }

  set(personId: string, entry: PersonEntry): void {
    this.entries.delete(personId);
    this.entries.set(personId, entry);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }

  /** An event of the person's stream: the cached state moves on if it was at the revision before; else it is dropped (read again when needed). */
  advance(personId: string, revision: number, event: PersonEvent): void {
    const entry = this.entries.get(personId);
    if (entry === undefined) return;
    if (entry.revision === revision - 1) ((entry.state = evolvePerson(entry.state, event)), (entry.revision = revision));
    else if (entry.revision < revision) this.entries.delete(personId);
  }

  forget(personId: string): void {
    this.entries.delete(personId);
  }
}

/** The person's state folded from their stream. */
export async function loadPerson(store: Pick<EventStore, 'readStream'>, personId: string): Promise<PersonEntry> {
  let entry: PersonEntry = { state: initialPersonState(), revision: -1 };
  for (const e of await store.readStream(personStream(personId))) {
    entry = { state: evolvePerson(entry.state, { type: e.type, data: e.data } as PersonEvent), revision: e.revision };
  }
  return entry;
}

/** What a settlement took from funds, from the events of its visit (its DischargeSettled and AdjustmentApplied). */
export function takenBy(
  settlementId: string,
  visitEvents: readonly Pick<RecordedEvent, 'type' | 'data'>[],
  registry: PolicyRegistry,
): TakenFunds {
  const taken: TakenFunds = [];
  for (const e of visitEvents) {
    if (e.type === 'DischargeSettled') {
      const s = e.data as SettledData;
      if (s.settlementId !== settlementId) continue;
      const policy = registry.byKey.get(policyKey(s.policy.policyId, s.policy.version))?.policy;
      if (policy === undefined) continue;
      s.layers.forEach((l, i) => {
        if (l[4] !== 0) taken.push([fundKey(policy.layers[i]!.fund, s.discharge.region, s.year), l[4]]);
      });
    } else if (e.type === 'AdjustmentApplied') {
      const a = e.data as { settlementId: string; fund: string; region: string; year: number; deltaFen: Fen };
      if (a.settlementId === settlementId) taken.push([fundKey(a.fund, a.region, a.year), a.deltaFen]);
    }
  }
  return taken;
}

export class DecisionState {
  readonly registry: PolicyRegistry = initialPolicyRegistry();
  /** Fund accounts by fundKey(fund, region, year): allocations, money received, money paid. */
  readonly funds = new Map<string, FundAccount>();
  /** Pays of settlements being recorded right now, by fund key: no two settlements use the same fund room. */
  readonly fundReserved = new Map<string, Fen>();
  /** Recorded allocations by allocationKey: the idempotency index of allocations (a few per fund and year). */
  readonly allocations = new Map<string, FundAllocatedData>();
  readonly persons: PersonCache;
  /** Global position of the last event applied; every event up to it is applied (appends are acknowledged in log order). */
  position = 0;
  /** The id of the event at `position` (the decision snapshot names it, to be recognised by its log). */
  positionEventId: string | null = null;
  eventCount = 0;

  /** What the person decider needs to know beyond the person's stream: the published categories. */
  readonly personContext: PersonContext = { isKnownCategory: (code) => this.registry.categoryCodes.has(code) };

  constructor(personCacheSize = DEFAULT_PERSON_CACHE) {
    this.persons = new PersonCache(personCacheSize);
  }

  /** A recorded settlement in full, read with the policy version it names (always in the log before it). */
  settlementRecord(data: SettledData): SettlementRecord {
    const published = this.registry.byKey.get(policyKey(data.policy.policyId, data.policy.version));
    if (published === undefined)
      throw new Error(
        `settlement ${data.settlementId} names policy ${data.policy.policyId} v${data.policy.version}, which is not in the log`,
      );
    return fromSettledData(data, published.policy);
  }

  /** The person's state: from the cache, or read from their stream. */
  async person(store: Pick<EventStore, 'readStream'>, personId: string): Promise<PersonEntry> {
    const cached = this.persons.get(personId);
    if (cached !== undefined) {
      this.persons.hits++;
      return cached;
    }
    this.persons.misses++;
    const entry = await loadPerson(store, personId);
    // Another command may have moved the person on while the stream was read: keep the newer.
    const now = this.persons.get(personId);
    if (now !== undefined && now.revision >= entry.revision) return now;
    this.persons.set(personId, entry);
    return entry;
  }

  /** Holds fund room for a settlement being recorded; returns the release. */
  reserveFunds(amounts: TakenFunds): () => void {
    for (const [key, fen] of amounts) this.fundReserved.set(key, (this.fundReserved.get(key) ?? 0) + fen);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const [key, fen] of amounts) {
        const left = (this.fundReserved.get(key) ?? 0) - fen;
        if (left === 0) this.fundReserved.delete(key);
        else this.fundReserved.set(key, left);
      }
    };
  }

  /** The fund accounts as a snapshot holds them. */
  fundAccounts(): FundAccount[] {
    return [...this.funds.values()];
  }

  /** Restores fund accounts and counters from a decision snapshot (before any event is applied). */
  restore(position: number, positionEventId: string | null, eventCount: number, accounts: readonly FundAccount[]): void {
    this.position = position;
    this.positionEventId = positionEventId;
    this.eventCount = eventCount;
    this.funds.clear();
    for (const a of accounts) this.funds.set(fundKey(a.fund, a.region, a.year), { ...a });
  }

  /** Learns a published policy (the registry is read whole at start: a few hundred versions). */
  learnPolicy(event: Pick<RecordedEvent, 'data'>): void {
    applyPolicyPublished(this.registry, { type: 'PolicyPublished', data: event.data } as PolicyPublishedEvent);
  }

  learnAllocation(data: FundAllocatedData): void {
    this.allocations.set(allocationKey(data), data);
  }

  /**
   * An event acknowledged by the store (or read after the snapshot at start-up), in log order.
   * A reversal needs what its settlement took (`taken`): the caller read it from the visit.
   */
  apply(e: StateEvent, taken?: TakenFunds, eventId: string | null = null): void {
    if (e.position > this.position) {
      this.position = e.position;
      this.positionEventId = eventId;
    }
    this.eventCount += 1;
    switch (e.type) {
      case 'PolicyPublished':
        return this.learnPolicy(e);
      case 'FundAllocated': {
        const a = e.data as FundAllocatedData;
        const key = fundKey(a.fund, a.region, a.year);
        this.funds.set(key, applyAllocation(this.ownAccount(key, a.fund, a.region, a.year), a));
        return this.learnAllocation(a);
      }
      default:
        break;
    }
    if (!e.streamId.startsWith(PERSON_STREAM_PREFIX)) return;
    const event = { type: e.type, data: e.data } as PersonEvent;
    this.persons.advance(e.streamId.slice(PERSON_STREAM_PREFIX.length), e.revision, event);
    this.applyToFunds(event, taken);
  }

  private ownAccount(key: string, fund: string, region: string, year: number): FundAccount {
    let account = this.funds.get(key);
    if (account === undefined) {
      account = emptyFundAccount(fund, region, year);
      this.funds.set(key, account);
    }
    return account;
  }

  /** Money paid out of (or back into) funds by a person event. */
  private applyToFunds(event: PersonEvent, taken: TakenFunds | undefined): void {
    switch (event.type) {
      case 'DischargeSettled': {
        const s = event.data;
        const policy = this.registry.byKey.get(policyKey(s.policy.policyId, s.policy.version))?.policy;
        if (policy === undefined) return;
        s.layers.forEach((l, i) => {
          if (l[4] === 0) return;
          const fund = policy.layers[i]!.fund;
          this.ownAccount(fundKey(fund, s.discharge.region, s.year), fund, s.discharge.region, s.year).paidFen += l[4];
        });
        return;
      }
      case 'SettlementReversed': {
        if (taken === undefined) throw new Error(`the reversal of ${event.data.settlementId} is applied without what the settlement took`);
        for (const [key, fen] of taken) this.funds.get(key)!.paidFen -= fen;
        return;
      }
      case 'AdjustmentApplied': {
        const a = event.data;
        this.ownAccount(fundKey(a.fund, a.region, a.year), a.fund, a.region, a.year).paidFen += a.deltaFen;
        return;
      }
      case 'EnrolmentSubsidyGranted': {
        // 资助参保: the aid fund pays the premium into the insurance fund.
        const s = event.data;
        this.ownAccount(fundKey(s.fromFund, s.region, s.year), s.fromFund, s.region, s.year).paidFen += s.amountFen;
        this.ownAccount(fundKey(s.toFund, s.region, s.year), s.toFund, s.region, s.year).receivedFen += s.amountFen;
        return;
      }
      default:
        return;
    }
  }
}
