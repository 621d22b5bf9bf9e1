// Validation and serialisation of append requests, done on the main thread before a request is
// queued: bad input is rejected at once, and the writer thread receives only plain strings.
import { EventIdConflictError, tagsOf, type AppendCondition, type EventData, type TagRule } from './index.js';

const MAX_STREAM_ID_LENGTH = 1_000;
const MAX_EVENT_ID_LENGTH = 100;
const MAX_EVENT_TYPE_LENGTH = 500;
const MAX_EVENTS_PER_APPEND = 10_000;

/** tags: [tag, key, tag, key, …] the store's rules give the event (computed here, where the data is an object). */
export interface PreparedEvent {
  id: string;
  type: string;
  dataJson: string;
  metadataJson: string | null;
  tags: string[];
}

/** The events of one append, checked and serialised; bytes = UTF-8 size of all their JSON. */
export interface PreparedAppend {
  events: PreparedEvent[];
  bytes: number;
}

export function prepareEvents(
  streamId: string,
  events: readonly EventData[],
  expected: unknown,
  maxEventBytes: number,
  tagRules: readonly TagRule[] = [],
): PreparedAppend {
  if (typeof streamId !== 'string' || streamId.length === 0 || streamId.length > MAX_STREAM_ID_LENGTH) {
    throw new TypeError(`streamId must be a string of 1..${MAX_STREAM_ID_LENGTH} characters`);
  }
  if (!(
    expected === 'no_stream' ||
    expected === 'any' ||
    expected === 'stream_exists' ||
    (Number.isSafeInteger(expected) && (expected as number) >= 0)
  )) {
    throw new TypeError(`invalid expectedRevision: ${String(expected)}`);
  }
  if (!Array.isArray(events) || events.length === 0 || events.length > MAX_EVENTS_PER_APPEND) {
    throw new RangeError(`an append takes 1..${MAX_EVENTS_PER_APPEND} events`);
  }
  const ids = new Set<string>();
  let total = 0;
  const prepared = events.map((e: EventData): PreparedEvent => {
    if (typeof e.id !== 'string' || e.id.length === 0 || e.id.length > MAX_EVENT_ID_LENGTH) {
      throw new TypeError(`event id must be a string of 1..${MAX_EVENT_ID_LENGTH} characters`);
    }
    if (events.length > 1) {
      if (ids.has(e.id)) throw new EventIdConflictError(streamId, e.id);
      ids.add(e.id);
    }
    if (typeof e.type !== 'string' || e.type.length === 0 || e.type.length > MAX_EVENT_TYPE_LENGTH) {
      throw new TypeError(`event type must be a string of 1..${MAX_EVENT_TYPE_LENGTH} characters`);
    }
    const dataJson = JSON.stringify(e.data) ?? 'null';
    const metadataJson = e.metadata === undefined ? null : (JSON.stringify(e.metadata) ?? 'null');
    const bytes = Buffer.byteLength(dataJson) + (metadataJson === null ? 0 : Buffer.byteLength(metadataJson));
    if (bytes > maxEventBytes) throw new RangeError(`event ${e.id} is ${bytes} bytes, more than ${maxEventBytes}`);
    total += bytes;
    const tags: string[] = [];
    for (const [tag, key] of tagsOf(tagRules, e.type, e.data)) tags.push(tag, key);
    return { id: e.id, type: e.type, dataJson, metadataJson, tags };
  });
  return { events: prepared, bytes: total };
}

export function checkNonNegative(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer`);
  return value;
}

/** SQLite reads LIMIT -1 as "no limit". */
export function checkMaxCount(maxCount: number | undefined): number {
  return maxCount === undefined ? -1 : checkNonNegative('maxCount', maxCount);
}

export function checkLimit(name: string, value: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) throw new RangeError(`${name} must be an integer in 1..${max}`);
  return value;
}

/** The conditions as given, checked: at most `max`, each a tag, string key parts, a position. */
export function checkConditions(conditions: readonly AppendCondition[], max: number): readonly AppendCondition[] {
  if (conditions.length > max) throw new RangeError(`this store takes at most ${max} condition(s) per append, not ${conditions.length}`);
  for (const c of conditions) checkCondition(c);
  return conditions;
}

/** A condition as given, checked: a tag, string key parts, a position. */
export function checkCondition(condition: AppendCondition | undefined): AppendCondition | undefined {
  if (condition === undefined) return undefined;
  const { tag, key, afterPosition } = condition;
  if (typeof tag !== 'string' || tag.length === 0 || !Array.isArray(key) || key.some((k) => typeof k !== 'string')) {
    throw new TypeError('an append condition names a tag and a key of strings');
  }
  checkNonNegative('condition.afterPosition', afterPosition);
  return condition;
}
