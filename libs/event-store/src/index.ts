// The event-store port. Shaped like EventStoreDB's model on purpose — streams with revisions,
// one global log ($all) with commit positions, optimistic concurrency by expected revision,
// idempotent appends by event id — so an EventStoreDB adapter can implement it one-to-one.
// No framework and no database client is imported here.
import { hash } from 'node:crypto';

/** Revision of a stream: 0 for its first event. */
export type StreamRevision = number;
/** Position in the global log ($all): strictly increasing in commit order, starts at 1. */
export type LogPosition = number;

/** What the writer believes about the stream. */
export type ExpectedRevision = StreamRevision | 'no_stream' | 'any' | 'stream_exists';

export interface EventData<D = unknown, M = unknown> {
  /** A UUID; deterministic ids make retried appends idempotent (see deterministicEventId). */
  id: string;
  type: string;
  data: D;
  metadata?: M;
}

export interface RecordedEvent<D = unknown, M = unknown> {
  streamId: string;
  revision: StreamRevision;
  position: LogPosition;
  id: string;
  type: string;
  data: D;
  metadata: M | null;
  /** Wall-clock time the store recorded the event (ms since epoch); never read by the domain. */
  createdMs: number;
}

export interface AppendResult {
  /** Revision of the last event now in the stream. */
  nextExpectedRevision: StreamRevision;
  /** Global position of the last event appended. */
  position: LogPosition;
}

export interface ReadStreamOptions {
  fromRevision?: StreamRevision;
  maxCount?: number;
}

export interface ReadAllOptions {
  /** Exclusive: events with position > fromPosition. Default 0 (from the start). */
  fromPosition?: LogPosition;
  maxCount?: number;
}

export interface Subscription {
  /** Stops delivery; resolves when no handler call is running any more. */
  unsubscribe(): Promise<void>;
}

export interface SubscribeToAllOptions {
  /** Exclusive start position (a checkpoint); default 0 = from the beginning. */
  fromPosition?: LogPosition;
  /** Called when the subscription fails; it is not resubscribed automatically. */
  onError?: (error: unknown) => void;
}

/**
 * A tag the store gives every event of one type, computed from its data: the values at `fields`
 * (JSON paths such as `$.discharge.hospitalId`; none for a tag all such events share) make its
 * key. Events are found by tag and key (readByTag) across streams, and an append can be made
 * conditional on no event with a tag and key having been recorded since a position — the
 * uniqueness that spans streams (one active settlement per visit) is then the store's to enforce,
 * in the transaction that records the events, not a process's memory's.
 */
export interface TagRule {
  tag: string;
  eventType: string;
  fields: readonly string[];
}

/** The append fails (AppendConditionFailedError) if an event tagged `tag` with `key` has a position > afterPosition. */
export interface AppendCondition {
  tag: string;
  key: readonly string[];
  afterPosition: LogPosition;
}

export interface AppendOptions {
  expectedRevision: ExpectedRevision;
  /**
   * One condition, or several that must all hold (each a tag and key with no event recorded after
   * its position). A store takes at most `maxAppendConditions` of them (1 when it does not say).
   */
  condition?: AppendCondition | readonly AppendCondition[];
}

/** The conditions of an append as a list (none, one or several). */
export const conditionsOf = (options: Pick<AppendOptions, 'condition'> | undefined): readonly AppendCondition[] =>
  options?.condition === undefined ? [] : Array.isArray(options.condition) ? options.condition : [options.condition as AppendCondition];

/** A tag's key as stored: the field values joined by U+001F (which no id may contain). */
export const tagKey = (values: readonly string[]): string => values.join('\u001f');

/** The value at a `$.a.b` path of an event's data, as the store's tag key part (string or integer), or undefined. */
export function tagField(data: unknown, path: string): string | undefined {
  let value: unknown = data;
  for (const part of path.slice(2).split('.')) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  return undefined;
}

/** The (tag, key) pairs the rules give an event. */
export function tagsOf(rules: readonly TagRule[], type: string, data: unknown): Array<[tag: string, key: string]> {
  const out: Array<[string, string]> = [];
  for (const rule of rules) {
    if (rule.eventType !== type) continue;
    const values: string[] = [];
    for (const field of rule.fields) {
      const v = tagField(data, field);
      if (v === undefined) break;
      values.push(v);
    }
    if (values.length === rule.fields.length) out.push([rule.tag, tagKey(values)]);
  }
  return out;
}

/** Checks a rule set: tags and paths the stores accept (plain `$.name.name` paths). */
export function checkTagRules(rules: readonly TagRule[]): readonly TagRule[] {
  const seen = new Set<string>();
  for (const r of rules) {
    if (!/^[a-z][a-z0-9-]{0,39}$/.test(r.tag)) throw new TypeError(`tag ${JSON.stringify(r.tag)} must be 1..40 of a-z, 0-9, -`);
    if (typeof r.eventType !== 'string' || r.eventType.length === 0) throw new TypeError('a tag rule names an event type');
    for (const f of r.fields)
      if (!/^\$(\.[A-Za-z_][A-Za-z0-9_]*)+$/.test(f)) throw new TypeError(`tag field ${JSON.stringify(f)} must be a $.name.name path`);
    const id = `${r.tag}\u0000${r.eventType}`;
    if (seen.has(id)) throw new TypeError(`tag ${r.tag} has two rules for ${r.eventType}`);
    seen.add(id);
  }
  return rules;
}

export interface EventStore {
  /**
   * Appends events atomically to one stream. Rejects with WrongExpectedRevisionError when the
   * stream's revision is not what the caller expected, and with AppendConditionFailedError when
   * the condition does not hold (checked in the same transaction as the write). Appending again
   * events whose ids are already the stream's events at the expected place succeeds without
   * writing (idempotent retry; the condition is not checked again then).
   */
  appendToStream(streamId: string, events: readonly EventData[], options: AppendOptions): Promise<AppendResult>;
  /** Events of one stream in revision order; [] when the stream does not exist. */
  readStream(streamId: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  /** Events carrying a tag with a key (see TagRule), in log order. */
  readByTag(tag: string, key: readonly string[], options?: { maxCount?: number }): Promise<RecordedEvent[]>;
  /** Events of every stream in global order. */
  readAll(options?: ReadAllOptions): Promise<RecordedEvent[]>;
  /** Catch-up then live: every event after fromPosition, in global order, each exactly once. */
  subscribeToAll(handler: (event: RecordedEvent) => void | Promise<void>, options?: SubscribeToAllOptions): Subscription;
  /** Position of the last committed event (0 when the log is empty). */
  headPosition(): Promise<LogPosition>;
  /** How many conditions one append may carry (absent: 1). */
  readonly maxAppendConditions?: number;
  /** Flushes pending appends, then releases resources. */
  close(): Promise<void>;
}

export class WrongExpectedRevisionError extends Error {
  readonly code = 'WRONG_EXPECTED_REVISION';
  constructor(
    readonly streamId: string,
    readonly expected: ExpectedRevision,
    readonly actual: StreamRevision | 'no_stream',
  ) {
    super(`stream ${streamId}: expected revision ${String(expected)}, actual ${String(actual)}`);
  }
}

/** An append's condition did not hold: an event with the tag and key was recorded after the position given. */
export class AppendConditionFailedError extends Error {
  readonly code = 'APPEND_CONDITION_FAILED';
  constructor(
    readonly streamId: string,
    readonly condition: AppendCondition,
  ) {
    super(
      `append to ${streamId}: an event tagged ${condition.tag} ${condition.key.join('/')} was recorded after position ${condition.afterPosition}`,
    );
  }
}

/** An event id reused with a different place or content: a programming error, never retried. */
export class EventIdConflictError extends Error {
  readonly code = 'EVENT_ID_CONFLICT';
  constructor(
    readonly streamId: string,
    readonly eventId: string,
  ) {
    super(`event id ${eventId} already recorded elsewhere than ${streamId}'s expected place`);
  }
}

/**
 * A UUID (version 5 layout, SHA-256 based) derived from the given parts, so that a retried
 * command produces the very same event ids and the store can recognise the retry.
 */
export function deterministicEventId(...parts: string[]): string {
  const h = hash('sha256', parts.join('\u0000'), 'buffer'); // one-shot: half the cost of createHash for short input
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

export {
  CheckpointedFollower,
  doublingDelayMs,
  type FollowerOptions,
  type FollowerSink,
  type FollowerState,
  type FollowerStatus,
  type LogPages,
} from './follower.js';

export {
  checkCondition,
  checkConditions,
  checkLimit,
  checkMaxCount,
  checkNonNegative,
  prepareEvents,
  type PreparedAppend,
  type PreparedEvent,
} from './append-input.js';

export { PagedSubscriptions, readPages, type PageReader, type PagedSubscriptionsOptions } from './paged-subscriptions.js';
