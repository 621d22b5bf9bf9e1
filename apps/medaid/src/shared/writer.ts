// The one way events get into the store: append with an exact expected revision (and, where a
// rule spans streams, the store's append condition), then advance the decision state. Commands
// carry who asked (the actor) into every event's metadata, so an authenticated caller can be
// added at the edge later without touching a handler.
import { FUND_SCOPE_TAG, PersonEvent, SettledData, SettlementRecord, personStream } from '#domain';
import {
  AppendCondition,
  AppendConditionFailedError,
  AppendResult,
  EventStore,
  WrongExpectedRevisionError,
  deterministicEventId,
} from '#event-store';
import { metrics } from './metrics.js';
import { inSpan, streamKind, tracingOn } from './tracing.js';
import { retryableStoreCode } from './store-failures.js';
import { DecisionState, PersonEntry, TakenFunds } from './decision-state.js';
import { KeyedLock } from './keyed-lock.js';

export type ActorKind = 'anonymous' | 'hospital' | 'admin' | 'auditor' | 'system';
export interface Actor {
  kind: ActorKind;
  id: string;
}
export interface CommandMeta {
  actor: Actor;
  correlationId: string;
  /** The caller's idempotency key, scoped by transport and caller (shared/command-answers.ts); absent when none was sent. */
  idempotencyKey?: string;
  /**
   * `message` (a Kafka message's own coordinates, never reused): its answer is recorded only when
   * the command recorded no events — otherwise its events, which carry its correlation id, are the
   * record. Default `client` (a key the caller chose, which it might reuse): always recorded.
   */
  idempotencyScope?: 'client' | 'message';
}

export const SYSTEM_ACTOR: Actor = { kind: 'system', id: 'medaid' };

/** The region and year whose funds a payment may take from (see FUND_SCOPE_TAG). */
export interface FundScope {
  region: string;
  year: number;
}

/**
 * How often a command is re-decided when another writer appended to its stream first. Within one
 * process a person's commands take turns (the keyed lock), so conflicts come from other instances
 * sharing the store; each retry waits a random few milliseconds (more each time), so that the
 * instances stop meeting. Then the caller is told to retry (STORE_CONTENDED, 503): nothing was recorded.
 */
const MAX_DECIDE_ATTEMPTS = 8;

/** Other writers kept appending to the stream first: nothing was recorded; retry shortly. */
export class StoreContendedError extends Error {
  readonly code = 'STORE_CONTENDED';
  constructor(streamId: string, attempts: number) {
    super(`${attempts} attempts to append to ${streamId} met another writer's append first`);
  }
}

export class EventWriter {
  readonly locks = new KeyedLock();

  /**
   * `follows`: the store is shared with other instances, and the state is advanced by the runtime's
   * follower of the log (every instance's events, in log order), not here; an append then waits
   * until the follower has applied it, so this instance reads its own writes.
   */
  constructor(
    readonly store: EventStore,
    readonly state: DecisionState,
    private readonly follows?: (position: number) => Promise<void>,
  ) {}

  /**
   * Appends to a stream at the expected revision (-1 = the stream must not exist yet), on the
   * condition if one is given. A reversal passes what its settlement took from funds.
   */
  async append(
    streamId: string,
    expectedRevision: number | 'any',
    events: Array<{ id: string; type: string; data: unknown }>,
    meta: CommandMeta,
    options: { condition?: AppendCondition | readonly AppendCondition[]; taken?: TakenFunds } = {},
  ): Promise<number> {
    const started = performance.now();
    let result: AppendResult;
    try {
      const append = () =>
        this.store.appendToStream(
          streamId,
          events.map((e) => ({ ...e, metadata: meta })),
          { expectedRevision: expectedRevision === -1 ? 'no_stream' : expectedRevision, condition: options.condition },
        );
      // (the span's attributes only when traces are exported: this is the hot path of every command)
      result = tracingOn
        ? await inSpan('medaid.store.append', { 'medaid.stream.kind': streamKind(streamId), 'medaid.events': events.length }, append)
        : await append();
    } catch (error) {
      if (error instanceof WrongExpectedRevisionError) metrics.conflict('revision');
      else if (error instanceof AppendConditionFailedError) metrics.conflict('condition');
      else {
        const code = retryableStoreCode(error);
        if (code !== undefined) metrics.storeRefused(code);
      }
      throw error;
    }
    metrics.append((performance.now() - started) / 1000);
    if (this.follows !== undefined) {
      await this.follows(result.position);
      return result.nextExpectedRevision - events.length + 1;
    }
    // Synchronously after the acknowledgement: acknowledgements come in log order, so the state
    // holds every event up to its position (what the decision snapshot relies on).
    const firstRevision = result.nextExpectedRevision - events.length + 1;
    const firstPosition = result.position - events.length + 1;
    events.forEach((e, i) =>
      this.state.apply(
        { streamId, revision: firstRevision + i, position: Math.max(firstPosition + i, 1), type: e.type, data: e.data },
        options.taken,
        i === events.length - 1 ? e.id : null,
      ),
    );
    return firstRevision;
  }

  /**
   * Decides a person command against the person's current state and appends the outcome, one
   * command per person at a time. If another process appended first, the person is re-read and
   * the command decided again, so two settlements never share the same cap room.
   */
  async decideForPerson<T>(
    personId: string,
    meta: CommandMeta,
    decide: (entry: PersonEntry) => { events: PersonEvent[]; eventIds: string[]; value: T; fundScope?: FundScope } | { error: T },
    options: { condition?: AppendCondition; taken?: TakenFunds } = {},
  ): Promise<{ value: T; firstRevision: number | null }> {
    return this.locks.run(`person:${personId}`, async () => {
      for (let attempt = 1; ; attempt++) {
        const entry = await this.state.person(this.store, personId);
        // Fund room is decided on the state at this position (decide is synchronous): with other
        // instances, the append holds only if no payment of the scope was recorded after it.
        const decidedAt = this.state.position;
        const decision = decide(entry);
        if ('error' in decision) return { value: decision.error, firstRevision: null };
        if (decision.events.length === 0) return { value: decision.value, firstRevision: null };
        try {
          const events = decision.events.map((e, i) => ({ id: decision.eventIds[i]!, type: e.type, data: e.data }));
          // The decision paid from a fund that may not be overdrawn (it says which scope).
          const scoped = decision.fundScope !== undefined && this.shared;
          const condition = !scoped
            ? options.condition
            : [
                ...(options.condition === undefined ? [] : [options.condition]),
                { tag: FUND_SCOPE_TAG, key: [decision.fundScope!.region, String(decision.fundScope!.year)], afterPosition: decidedAt },
              ];
          const firstRevision = await this.append(personStream(personId), entry.revision, events, meta, {
            taken: options.taken,
            condition,
          });
          return { value: decision.value, firstRevision };
        } catch (e) {
          const fundsMoved = e instanceof AppendConditionFailedError && e.condition.tag === FUND_SCOPE_TAG;
          if (!(e instanceof WrongExpectedRevisionError) && !fundsMoved) throw e;
          if (attempt >= MAX_DECIDE_ATTEMPTS) throw new StoreContendedError(personStream(personId), attempt);
          metrics.decideRetry();
          if (fundsMoved)
            await this.catchUp(); // another instance paid from the scope: learn it, then decide again
          else this.state.persons.forget(personId); // read again from the stream
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 2 ** attempt));
        }
      }
    });
  }

  /** Whether other instances write to the store too (the state follows the log). */
  get shared(): boolean {
    return this.follows !== undefined;
  }

  /** Shared: waits until the state holds every event the store holds now (after losing a race to another instance). */
  async catchUp(): Promise<void> {
    if (this.follows !== undefined) await this.follows(await this.store.headPosition());
  }

  async readEvent(streamId: string, revision: number) {
    const [event] = await this.store.readStream(streamId, { fromRevision: revision, maxCount: 1 });
    return event;
  }
}

/** Event ids derived from what the event records, so that a retry can never record it twice. */
export const settlementEventId = (settlementId: string) => deterministicEventId('DischargeSettled', settlementId);
export const reversalEventId = (settlementId: string) => deterministicEventId('SettlementReversed', settlementId);
/**
 * The ids of a settlement's or reversal's events: the first its own, each monitoring flag after it
 * (README, "Monitoring thresholds") one derived from it and the event's kind and threshold, so a
 * retried command appends none of them twice.
 */
export const eventIdsOf = (firstId: string, events: ReadonlyArray<{ type: string; data: unknown }>): string[] =>
  events.map((e, i) =>
    i === 0 ? firstId : deterministicEventId(firstId, e.type, String((e.data as { thresholdId?: unknown }).thresholdId ?? i)),
  );
export const personEventId = (personId: string, revision: number, type: string) => deterministicEventId(personId, String(revision), type);
/** By content too: two different documents of one version (two instances at once) must not pass for a retry of each other. */
export const policyEventId = (policyId: string, version: number, document: unknown) =>
  deterministicEventId('PolicyPublished', policyId, String(version), JSON.stringify(document));
