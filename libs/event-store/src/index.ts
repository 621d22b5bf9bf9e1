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

export interface EventStore {
  /**
   * Appends events atomically to one stream. Rejects with WrongExpectedRevisionError when the
   * stream's revision is not what the caller expected. Appending again events whose ids are
   * already the stream's events at the expected place succeeds without writing (idempotent retry).
   */
  appendToStream(streamId: string, events: readonly EventData[], options: { expectedRevision: ExpectedRevision }): Promise<AppendResult>;
  /** Events of one stream in revision order; [] when the stream does not exist. */
  readStream(streamId: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  /** Events of every stream in global order. */
  readAll(options?: ReadAllOptions): Promise<RecordedEvent[]>;
  /** Catch-up then live: every event after fromPosition, in global order, each exactly once. */
  subscribeToAll(handler: (event: RecordedEvent) => void | Promise<void>, options?: SubscribeToAllOptions): Subscription;
  /** Position of the last committed event (0 when the log is empty). */
  headPosition(): Promise<LogPosition>;
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

/** An event id reused with a different place or content: a programming error, never retried. */
export class EventIdConflictError extends Error {
  readonly code = 'EVENT_ID_CONFLICT';
  constructor(readonly streamId: string, readonly eventId: string) {
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
