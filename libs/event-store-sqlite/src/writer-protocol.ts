// Messages between the main thread (GroupCommitter) and the writer thread (sqlite-writer.worker).
// Only plain strings and numbers cross: structured clone copies them cheaply, and error classes
// are rebuilt on the main thread so that `instanceof` works there.
import type { ExpectedRevision, StreamRevision, TagRule } from '#event-store';

/** workerData of the writer thread; the tag keeps the entry script from running anywhere else. */
/** tagRules: the rules to index the log by (re-indexed when they differ from the file's); null keeps the file's. */
export interface WriterWorkerData {
  medaidSqliteWriter: true;
  path: string;
  tagRules: TagRule[] | null;
}

/** One group commit, column-wise: per append request, then every event of every request in order. */
export interface WriteBatch {
  type: 'write';
  streamIds: string[];
  expected: ExpectedRevision[];
  eventCounts: number[];
  eventIds: string[];
  types: string[];
  data: string[];
  metadata: Array<string | null>;
  /** Per event: how many (tag, key) pairs it has; then the pairs of every event in order. */
  tagCounts: number[];
  tags: string[];
  /** Per append request: its conditions as [tag, key, afterPosition, tag, key, afterPosition, …], or null. */
  conditions: Array<Array<string | number> | null>;
}

/** Written after the writer's last batch: it closes its connection, then its thread ends. */
export interface CloseWriter {
  type: 'close';
}

export type ToWriter = WriteBatch | CloseWriter;

/** A request whose revision or id check failed: it wrote nothing, the rest of its batch commits. */
export type RejectedAppend =
  | { index: number; kind: 'revision'; actual: StreamRevision | 'no_stream' }
  | { index: number; kind: 'event_id'; eventId: string }
  /** `condition`: which of the request's conditions failed. */
  | { index: number; kind: 'condition'; condition: number };

export interface ErrorInfo {
  message: string;
  code: string | undefined;
}

export type FromWriter =
  | { type: 'ready' }
  | { type: 'open_failed'; error: ErrorInfo }
  /** COMMIT returned: results holds nextExpectedRevision, position for each request (unused for rejected ones). */
  | { type: 'committed'; results: number[]; rejected: RejectedAppend[]; written: number }
  /** An unexpected SQLite error or a failed COMMIT: the transaction was rolled back, nothing is acknowledged. */
  | { type: 'failed'; error: ErrorInfo };

export function errorInfo(error: unknown): ErrorInfo {
  const e = error as { message?: unknown; code?: unknown } | null | undefined;
  const message = typeof e?.message === 'string' ? e.message : String(error);
  return { message, code: typeof e?.code === 'string' ? e.code : undefined };
}
