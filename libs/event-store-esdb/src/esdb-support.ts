// What the EventStoreDB adapter needs besides the client: options and their limits, input checks,
// the adapter's errors, and the bounded cache of event ids this process has seen. Nothing here imports
// @eventstore/db-client (only esdb-event-store.ts does).
import { EventIdConflictError, type EventData, type ExpectedRevision, type StreamRevision } from '#event-store';

export interface EsdbEventStoreOptions {
  /** Deadline of each call to the server — an append, a read page (default 10,000 ms). */
  deadlineMs?: number;
  /** gRPC keep-alive: ping after this much silence (default 10,000 ms, the client's recommended minimum). */
  keepAliveIntervalMs?: number;
  /** gRPC keep-alive: the connection is dead when a ping is not answered within this (default 10,000 ms). */
  keepAliveTimeoutMs?: number;
  /** Attempts of one append or read when the connection fails (retried appends are recognised by their ids; default 3). */
  maxCallAttempts?: number;
  /** Resubscriptions in a row without a delivered event before a subscription gives up (default 10). */
  maxResubscribeAttempts?: number;
  /** First wait before resubscribing; it doubles up to resubscribeMaxBackoffMs (default 100 ms). */
  resubscribeMinBackoffMs?: number;
  /** Longest wait between resubscriptions (default 5,000 ms). */
  resubscribeMaxBackoffMs?: number;
  /** Event ids (appended or read by this process) remembered to recognise retries and reuse elsewhere (default 100,000). */
  eventIdCacheSize?: number;
  /** With any / stream_exists, how many of the stream's last events are searched for a retried append (default 200). */
  retryScanWindow?: number;
  /** Most UTF-8 bytes of one event's data + metadata JSON (default 1 MiB, EventStoreDB's default max append size). */
  maxEventBytes?: number;
}

export type ResolvedOptions = Required<EsdbEventStoreOptions>;

export function resolveOptions(options: EsdbEventStoreOptions = {}): ResolvedOptions {
  const resolved: ResolvedOptions = {
    deadlineMs: checkLimit('deadlineMs', options.deadlineMs ?? 10_000, 1, 600_000),
    keepAliveIntervalMs: checkLimit('keepAliveIntervalMs', options.keepAliveIntervalMs ?? 10_000, 10_000, 600_000),
    keepAliveTimeoutMs: checkLimit('keepAliveTimeoutMs', options.keepAliveTimeoutMs ?? 10_000, 1_000, 600_000),
    maxCallAttempts: checkLimit('maxCallAttempts', options.maxCallAttempts ?? 3, 1, 10),
    maxResubscribeAttempts: checkLimit('maxResubscribeAttempts', options.maxResubscribeAttempts ?? 10, 1, 1_000),
    resubscribeMinBackoffMs: checkLimit('resubscribeMinBackoffMs', options.resubscribeMinBackoffMs ?? 100, 1, 60_000),
    resubscribeMaxBackoffMs: checkLimit('resubscribeMaxBackoffMs', options.resubscribeMaxBackoffMs ?? 5_000, 1, 600_000),
    eventIdCacheSize: checkLimit('eventIdCacheSize', options.eventIdCacheSize ?? 100_000, 1, 10_000_000),
    retryScanWindow: checkLimit('retryScanWindow', options.retryScanWindow ?? 200, 1, 10_000),
    maxEventBytes: checkLimit('maxEventBytes', options.maxEventBytes ?? 1024 * 1024, 1, 16 * 1024 * 1024),
  };
  if (resolved.resubscribeMaxBackoffMs < resolved.resubscribeMinBackoffMs)
    throw new RangeError('resubscribeMaxBackoffMs must be >= resubscribeMinBackoffMs');
  return resolved;
}

/** A call to EventStoreDB got no answer within its deadline. An append may or may not have been written: re-read, or retry with the same ids. */
export class EsdbDeadlineExceededError extends Error {
  readonly code = 'STORE_DEADLINE_EXCEEDED';
  constructor(
    readonly operation: string,
    readonly deadlineMs: number,
  ) {
    super(`EventStoreDB did not answer ${operation} within ${deadlineMs} ms`);
  }
}

/** EventStoreDB could not be reached or failed the call; an append may or may not have been written. */
export class EsdbUnavailableError extends Error {
  readonly code = 'STORE_UNAVAILABLE';
  constructor(operation: string, options: { cause: unknown }) {
    super(`EventStoreDB failed ${operation}: ${options.cause instanceof Error ? options.cause.message : String(options.cause)}`, options);
  }
}

export class EsdbStoreClosedError extends Error {
  readonly code = 'STORE_CLOSED';
  constructor() {
    super('event store is closed');
  }
}

const MAX_STREAM_ID_LENGTH = 1_000;
const MAX_EVENT_TYPE_LENGTH = 500;
/** EventStoreDB's gRPC max append size is 1 MiB by default; this only bounds the request we build. */
const MAX_EVENTS_PER_APPEND = 10_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface PreparedEvent {
  id: string;
  type: string;
  data: unknown;
  metadataJson: string | undefined;
}

/** Checks one append request the way the SQLite adapter does, and serialises what the client would mangle. */
export function prepareEvents(streamId: string, events: readonly EventData[], expected: unknown, maxEventBytes: number): PreparedEvent[] {
  if (typeof streamId !== 'string' || streamId.length === 0 || streamId.length > MAX_STREAM_ID_LENGTH) {
    throw new TypeError(`streamId must be a string of 1..${MAX_STREAM_ID_LENGTH} characters`);
  }
  if (!isExpectedRevision(expected)) throw new TypeError(`invalid expectedRevision: ${String(expected)}`);
  if (!Array.isArray(events) || events.length === 0 || events.length > MAX_EVENTS_PER_APPEND) {
    throw new RangeError(`an append takes 1..${MAX_EVENTS_PER_APPEND} events`);
  }
  const ids = new Set<string>();
  return events.map((e: EventData): PreparedEvent => {
    // EventStoreDB keeps ids as GUIDs: a non-UUID id would be refused by the server anyway.
    if (typeof e.id !== 'string' || !UUID.test(e.id)) throw new TypeError('event id must be a UUID');
    const id = e.id.toLowerCase();
    if (ids.has(id)) throw new EventIdConflictError(streamId, e.id);
    ids.add(id);
    if (typeof e.type !== 'string' || e.type.length === 0 || e.type.length > MAX_EVENT_TYPE_LENGTH) {
      throw new TypeError(`event type must be a string of 1..${MAX_EVENT_TYPE_LENGTH} characters`);
    }
    const dataJson = JSON.stringify(e.data) ?? 'null';
    const metadataJson = e.metadata === undefined ? undefined : (JSON.stringify(e.metadata) ?? 'null');
    const bytes = Buffer.byteLength(dataJson) + (metadataJson === undefined ? 0 : Buffer.byteLength(metadataJson));
    if (bytes > maxEventBytes) throw new RangeError(`event ${e.id} is ${bytes} bytes, more than ${maxEventBytes}`);
    return { id, type: e.type, data: dataJson === 'null' ? null : e.data, metadataJson };
  });
}

function isExpectedRevision(expected: unknown): expected is ExpectedRevision {
  return (
    expected === 'no_stream' ||
    expected === 'any' ||
    expected === 'stream_exists' ||
    (Number.isSafeInteger(expected) && (expected as number) >= 0)
  );
}

export function checkNonNegative(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer`);
  return value;
}

function checkLimit(name: string, value: number, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new RangeError(`${name} must be an integer in ${min}..${max}`);
  return value;
}

/** EventStoreDB's own records: $-prefixed streams ($settings, $users, $ce-…) or event types ($metadata, $>…). */
export function isSystemEvent(streamId: string, type: string): boolean {
  return streamId.startsWith('$') || type.startsWith('$');
}

export interface KnownEvent {
  streamId: string;
  revision: StreamRevision;
  type: string;
}

/**
 * The event ids this process has appended or read, oldest forgotten first. EventStoreDB keeps no index
 * by event id, so this (like the server's own committed-events cache) is what recognises an id reused in
 * another stream; bounded, so it only knows the recent past of this process.
 */
export class EventIdCache {
  private readonly entries = new Map<string, KnownEvent>();

  constructor(private readonly capacity: number) {}

  get(id: string): KnownEvent | undefined {
    return this.entries.get(id.toLowerCase());
  }

  remember(id: string, known: KnownEvent): void {
    const key = id.toLowerCase();
    this.entries.delete(key); // re-inserted last: the most recently seen ids are kept longest
    if (this.entries.size >= this.capacity) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, known);
  }

  /**
   * Throws EventIdConflictError when an id of the request is known elsewhere than where the request puts it:
   * in another stream, or (when the place is known) at another revision of this stream.
   */
  checkPlace(streamId: string, events: readonly PreparedEvent[], firstRevision: number | undefined): void {
    events.forEach((e, i) => {
      const known = this.get(e.id);
      if (known === undefined) return;
      if (known.streamId !== streamId || (firstRevision !== undefined && known.revision !== firstRevision + i)) {
        throw new EventIdConflictError(streamId, e.id);
      }
    });
  }
}

/** Waits, or less when stopped; never keeps the process alive. */
export function pause(ms: number, stopped: { signal: Promise<void> }): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    void stopped.signal.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** The client's transport errors become the adapter's own; the server's answers pass through. */
export function translate(operation: string, error: unknown, deadlineMs: number): unknown {
  const type = (error as { type?: unknown } | null)?.type;
  if (type === 'deadline-exceeded' || type === 'timeout') return new EsdbDeadlineExceededError(operation, deadlineMs);
  if (type === 'unavailable' || type === 'cancelled') return new EsdbUnavailableError(operation, { cause: error });
  if (type === 'maximum-append-size-exceeded') {
    // Nothing was written; the same append will never fit: a caller's error, like an event too big here.
    const max = (error as { maxAppendSize?: number }).maxAppendSize;
    return new RangeError(
      `the append is bigger than EventStoreDB's maximum append size (${max ?? 'MaxAppendSize'} bytes); nothing was written`,
      {
        cause: error,
      },
    );
  }
  return error;
}

/** Adds keep-alive and deadline settings to the connection string unless it sets them itself. */
export function withDefaults(connectionString: string, settings: Record<string, number>): string {
  let url = connectionString;
  for (const [key, value] of Object.entries(settings)) {
    if (new RegExp(`[?&]${key}=`, 'i').test(url)) continue;
    url += `${url.includes('?') ? '&' : '?'}${key}=${value}`;
  }
  return url;
}

/** What a server before 22.6 sends instead of the position of an event read from a stream. */
const NO_POSITION = 2n ** 64n - 1n;

/** The $all position of an event appended over gRPC: commit = prepare. */
export function at(position: number): { commit: bigint; prepare: bigint } {
  return { commit: BigInt(position), prepare: BigInt(position) };
}

export function toPosition(position: { commit: bigint } | undefined, commitPosition: bigint | undefined): number {
  const commit = position?.commit ?? commitPosition;
  if (commit === undefined || commit === NO_POSITION) {
    throw new Error('EventStoreDB sent an event without its $all position: stream reads carry it from EventStoreDB 22.6 on');
  }
  return toSafe(commit, 'commit position');
}

export function toSafe(value: bigint, what: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`EventStoreDB ${what} ${value} is not a safe integer`);
  return n;
}

export function toRevision(actual: bigint | string): number | 'no_stream' {
  return typeof actual === 'bigint' ? toSafe(actual, 'revision') : 'no_stream';
}

/** Races a call against its deadline (the client gives reads and batch appends none); client errors become the adapter's. */
export async function withDeadline<T>(operation: string, deadlineMs: number, work: Promise<T>, onTimeout?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(new EsdbDeadlineExceededError(operation, deadlineMs));
    }, deadlineMs);
  });
  work.catch(() => undefined); // its late failure after the deadline is expected, not unhandled
  try {
    return await Promise.race([work, deadline]);
  } catch (error) {
    throw translate(operation, error, deadlineMs);
  } finally {
    clearTimeout(timer);
  }
}
