// One group commit, run by the writer thread: BEGIN IMMEDIATE, each request's revision and id
// checks, INSERTs, COMMIT. Written against a narrow interface (built in sqlite-event-store.ts,
// the one module that may import better-sqlite3) so this logic carries no driver dependency.
import type { ExpectedRevision, StreamRevision } from '#event-store';
import type { FromWriter, RejectedAppend, WriteBatch } from './writer-protocol.js';

export interface IdRow {
  stream_id: string;
  revision: number;
  position: number;
  type: string;
}

export interface WriteConnection {
  /** BEGIN IMMEDIATE: takes the write lock now, so the reads below see the latest committed state. */
  begin(): void;
  commit(): void;
  rollbackIfOpen(): void;
  lastRevision(streamId: string): number | undefined;
  eventById(eventId: string): IdRow | undefined;
  /** Returns the new event's position (its rowid). */
  insert(
    streamId: string,
    revision: number,
    eventId: string,
    type: string,
    data: string,
    metadata: string | null,
    createdMs: number,
  ): number;
  /** Whether an event with the tag and key has a position > after. */
  taggedAfter(tag: string, key: string, after: number): boolean;
  insertTag(tag: string, key: string, position: number): void;
}

type Committed = Extract<FromWriter, { type: 'committed' }>;

/** Throws (after rolling back) when SQLite fails: then no request of the batch is acknowledged. */
export function writeBatch(conn: WriteConnection, batch: WriteBatch): Committed {
  const results: number[] = [];
  const rejected: RejectedAppend[] = [];
  let written = 0;
  conn.begin();
  try {
    const createdMs = Date.now();
    let offset = 0;
    const tagOffset = { at: 0 };
    for (let index = 0; index < batch.streamIds.length; index++) {
      const count = batch.eventCounts[index]!;
      const outcome = writeAppend(conn, batch, index, offset, count, createdMs, tagOffset);
      for (let i = 0; i < count; i++) tagOffset.at += 2 * batch.tagCounts[offset + i]!; // written or not, its tags are passed
      offset += count;
      if ('kind' in outcome) {
        rejected.push(outcome);
        results.push(-1, -1);
      } else {
        written += count; // as before the worker: an idempotent retry counts too
        results.push(outcome.nextExpectedRevision, outcome.position);
      }
    }
    conn.commit();
  } catch (error) {
    try {
      conn.rollbackIfOpen();
    } catch {
      // the original error is the one worth reporting
    }
    throw error;
  }
  return { type: 'committed', results, rejected, written };
}

type AppendOutcome = RejectedAppend | { nextExpectedRevision: number; position: number };

/** Checks and writes one request inside the open transaction; an expected failure writes nothing. */
function writeAppend(
  conn: WriteConnection,
  batch: WriteBatch,
  index: number,
  offset: number,
  count: number,
  createdMs: number,
  tagOffset: { at: number },
): AppendOutcome {
  const streamId = batch.streamIds[index]!;
  const expected = batch.expected[index]!;
  // Read with SQL inside the write transaction: correct even when another process appends too.
  const current = conn.lastRevision(streamId) ?? -1;
  const conditions = batch.conditions[index] ?? null;
  const first = conn.eventById(batch.eventIds[offset]!);
  if (first !== undefined) {
    const retried = retriedAppend(conn, batch, index, offset, count, first);
    // Not a retry, and what it was decided on has changed: that (not the id) is what the caller must hear.
    const failed = 'kind' in retried ? failedCondition(conn, conditions) : -1;
    if (failed >= 0) return { index, kind: 'condition', condition: failed };
    return retried;
  }
  if (!revisionMatches(expected, current)) return { index, kind: 'revision', actual: current < 0 ? 'no_stream' : current };
  // Probed before writing so that a conflict leaves no partial append (no savepoint needed).
  for (let i = 1; i < count; i++) {
    const eventId = batch.eventIds[offset + i]!;
    if (conn.eventById(eventId) !== undefined) return { index, kind: 'event_id', eventId };
  }
  // Inside the transaction, after the appends before it in this batch: what it forbids cannot slip in.
  const failed = failedCondition(conn, conditions);
  if (failed >= 0) return { index, kind: 'condition', condition: failed };
  let position = 0;
  let t = tagOffset.at;
  for (let i = 0; i < count; i++) {
    const e = offset + i;
    position = conn.insert(streamId, current + 1 + i, batch.eventIds[e]!, batch.types[e]!, batch.data[e]!, batch.metadata[e]!, createdMs);
    for (let end = t + 2 * batch.tagCounts[e]!; t < end; t += 2) conn.insertTag(batch.tags[t]!, batch.tags[t + 1]!, position);
  }
  return { nextExpectedRevision: current + count, position };
}

/** The first id is already stored: an idempotent retry if all ids sit at the expected place. */
function retriedAppend(
  conn: WriteConnection,
  batch: WriteBatch,
  index: number,
  offset: number,
  count: number,
  first: IdRow,
): AppendOutcome {
  const streamId = batch.streamIds[index]!;
  const expected = batch.expected[index]!;
  const start = typeof expected === 'number' ? expected + 1 : expected === 'no_stream' ? 0 : first.revision;
  let position = 0;
  for (let i = 0; i < count; i++) {
    const eventId = batch.eventIds[offset + i]!;
    const row = i === 0 ? first : conn.eventById(eventId);
    if (row === undefined || row.stream_id !== streamId || row.revision !== start + i || row.type !== batch.types[offset + i]) {
      return { index, kind: 'event_id', eventId };
    }
    position = row.position;
  }
  return { nextExpectedRevision: start + count - 1, position };
}

/** The index of the first condition that does not hold (an event with its tag and key after its position), or -1. */
function failedCondition(conn: WriteConnection, conditions: Array<string | number> | null): number {
  if (conditions === null) return -1;
  for (let i = 0; i < conditions.length; i += 3)
    if (conn.taggedAfter(conditions[i] as string, conditions[i + 1] as string, conditions[i + 2] as number)) return i / 3;
  return -1;
}

function revisionMatches(expected: ExpectedRevision, current: StreamRevision): boolean {
  if (expected === 'any') return true;
  if (expected === 'no_stream') return current < 0;
  if (expected === 'stream_exists') return current >= 0;
  return current === expected;
}
