// The in-memory projections the service decides with: the policy registry, each visit's
// settlements (the idempotency index) and each person's state at its stream revision. They are
// derived from the event log only — rebuilt from $all at start-up and advanced by the writer
// after each acknowledged append — so a crash can never leave them out of step with the store.
import { createHash } from 'node:crypto';
import {
  Discharge, PersonContext, PersonEvent, PersonState, PolicyPublishedEvent, PolicyRegistry, SettledData, SettlementRecord, VisitAttempt,
  applyPolicyPublished, dischargeFingerprint, evolvePerson, fromSettledData, initialPersonState, initialPolicyRegistry, policyKey,
} from '#domain';
import { EventStore } from '#event-store';

export const personStream = (personId: string) => `person-${personId}`;
export const policyStream = (policyId: string) => `policy-${policyId}`;
export const visitKey = (hospitalId: string, visitId: string) => `${hospitalId}/${visitId}`;

export interface PersonEntry {
  state: PersonState;
  /** Revision of the person's stream; -1 when it has no events yet. */
  revision: number;
}

export interface VisitEntry extends VisitAttempt {
  /** Revision of the SettlementReversed event in the person's stream, once reversed. */
  reversalRevision: number | null;
}

/** SHA-256 of the canonical discharge: the index keeps 64 characters per visit, not the input. */
export function fingerprintOf(discharge: Discharge): string {
  return createHash('sha256').update(dischargeFingerprint(discharge)).digest('hex');
}

export class ReadModel {
  readonly registry: PolicyRegistry = initialPolicyRegistry();
  readonly visits = new Map<string, VisitEntry[]>();
  readonly persons = new Map<string, PersonEntry>();
  /** Global position of the last event applied. */
  position = 0;
  eventCount = 0;

  /** What the person decider needs to know beyond the person's stream: the published categories. */
  readonly personContext: PersonContext = { isKnownCategory: (code) => this.registry.categoryCodes.has(code) };

  /** A recorded settlement in full, read with the policy version it names (always in the log before it). */
  settlementRecord(data: SettledData): SettlementRecord {
    const published = this.registry.byKey.get(policyKey(data.policy.policyId, data.policy.version));
    if (published === undefined) throw new Error(`settlement ${data.settlementId} names policy ${data.policy.policyId} v${data.policy.version}, which is not in the log`);
    return fromSettledData(data, published.policy);
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

  /** Re-reads one person's stream (after another writer got there first). */
  async reloadPerson(store: EventStore, personId: string): Promise<void> {
    const events = await store.readStream(personStream(personId));
    let entry: PersonEntry = { state: initialPersonState(), revision: -1 };
    for (const e of events) entry = { state: evolvePerson(entry.state, { type: e.type, data: e.data } as PersonEvent), revision: e.revision };
    this.persons.set(personId, entry);
  }

  apply(streamId: string, revision: number, position: number, type: string, data: unknown): void {
    this.position = Math.max(this.position, position);
    this.eventCount += 1;
    if (type === 'PolicyPublished') {
      applyPolicyPublished(this.registry, { type, data } as PolicyPublishedEvent);
      return;
    }
    if (!streamId.startsWith('person-')) return;
    const personId = streamId.slice('person-'.length);
    const event = { type, data } as PersonEvent;
    const before = this.person(personId);
    this.persons.set(personId, { state: evolvePerson(before.state, event), revision });
    if (event.type === 'DischargeSettled') {
      const r = event.data;
      const key = visitKey(r.discharge.hospitalId, r.discharge.visitId);
      const attempts = this.visits.get(key) ?? [];
      attempts.push({ settlementId: r.settlementId, personId, revision, fingerprint: r.fingerprint, status: 'settled', reversalRevision: null });
      this.visits.set(key, attempts);
    } else if (event.type === 'SettlementReversed') {
      const attempt = this.visits.get(visitKey(event.data.hospitalId, event.data.visitId))?.find((a) => a.settlementId === event.data.settlementId);
      if (attempt) {
        attempt.status = 'reversed';
        attempt.reversalRevision = revision;
      }
    }
  }
}

/**
 * Runs async work one at a time per key, in arrival order: commands about one person are applied
 * in the order they are accepted (spec §7). Keys with nothing queued are forgotten.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(work, work);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}
