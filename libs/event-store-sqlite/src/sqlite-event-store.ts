// Embedded adapter of the event-store port on SQLite (better-sqlite3). The only module that may
// import better-sqlite3. Appends are group-committed: every append queued during one event-loop
// turn is written in ONE transaction, so many concurrent appends share one fsync (synchronous=FULL
// makes each COMMIT durable, and fsync is what bounds the throughput of a durable log).
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  EventIdConflictError, WrongExpectedRevisionError,
  type AppendResult, type EventData, type EventStore, type ExpectedRevision, type LogPosition, type ReadAllOptions,
  type ReadStreamOptions, type RecordedEvent, type StreamRevision, type SubscribeToAllOptions, type Subscription,
} from '#event-store';

const SCHEMA_VERSION = 1;
const MAX_STREAM_ID_LENGTH = 1_000;
const MAX_EVENT_ID_LENGTH = 100;
const MAX_EVENT_TYPE_LENGTH = 500;
const MAX_EVENTS_PER_APPEND = 10_000;
/** Bounds one transaction (and the event-loop pause it causes) whatever maxBatchAppends says. */
const MAX_BATCH_EVENTS = 20_000;
const MAX_PAGE_SIZE = 10_000;
const SUBSCRIPTION_PAGE_SIZE = 500;
/** Another process holding the write lock makes us wait (synchronously) at most this long. */
const BUSY_TIMEOUT_MS = 5_000;
/** Bounds the WAL file left on disk after a checkpoint. */
const JOURNAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;
const PAGE_SIZE_BYTES = 16 * 1024;
const CACHE_SIZE_KIB = 64 * 1024;

export interface SqliteEventStoreOptions {
  /** Database file; its directory is created if needed. */
  path: string;
  /** Most append requests committed in one transaction (default 1000). */
  maxBatchAppends?: number;
  /** Most append requests waiting for a transaction; beyond it appends fail fast (default 50,000). */
  maxPendingAppends?: number;
  /** Most UTF-8 bytes of one event's data + metadata JSON (default 1 MiB). */
  maxEventBytes?: number;
}

export interface SqliteEventStoreStats {
  /** Committed write transactions (one per group commit). */
  transactions: number;
  /** Append requests acknowledged (idempotent retries included). */
  committedAppends: number;
  /** Events written. */
  committedEvents: number;
  pendingAppends: number;
  subscriptions: number;
}

/** Back-pressure: the append queue is full; the caller should retry later (HTTP 503). */
export class StoreOverloadedError extends Error {
  readonly code = 'STORE_OVERLOADED';
  constructor(readonly maxPendingAppends: number) {
    super(`event store overloaded: ${maxPendingAppends} appends already pending, retry later`);
  }
}

export class StoreClosedError extends Error {
  readonly code = 'STORE_CLOSED';
  constructor() { super('event store is closed'); }
}

interface EventRow {
  position: number; stream_id: string; revision: number; event_id: string;
  type: string; data: string; metadata: string | null; created_ms: number;
}
type IdRow = Pick<EventRow, 'stream_id' | 'revision' | 'position' | 'type'>;
interface PreparedEvent { id: string; type: string; dataJson: string; metadataJson: string | null }
interface AppendRequest {
  streamId: string; expected: ExpectedRevision; events: PreparedEvent[];
  resolve: (result: AppendResult) => void; reject: (error: unknown) => void;
}
interface LiveSubscription { checkpoint: LogPosition; stopped: boolean; wake: (() => void) | undefined; done: Promise<void> }

const COLUMNS = 'position, stream_id, revision, event_id, type, data, metadata, created_ms';

export class SqliteEventStore implements EventStore {
  private readonly queue: AppendRequest[] = [];
  private readonly subscriptions = new Set<LiveSubscription>();
  private flushTimer: NodeJS.Immediate | undefined;
  private closing: Promise<void> | undefined;
  private transactions = 0;
  private committedAppends = 0;
  private committedEvents = 0;
  private readonly stmt;

  private constructor(
    private readonly db: Database.Database,
    private readonly maxBatchAppends: number,
    private readonly maxPendingAppends: number,
    private readonly maxEventBytes: number,
  ) {
    this.stmt = {
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      // ORDER BY … LIMIT 1 walks the (stream_id, revision) index backwards: one probe.
      lastRevision: db.prepare<[string], number>('SELECT revision FROM events WHERE stream_id = ? ORDER BY revision DESC LIMIT 1').pluck(),
      byEventId: db.prepare<[string], IdRow>('SELECT stream_id, revision, position, type FROM events WHERE event_id = ?'),
      insert: db.prepare<[string, number, string, string, string, string | null, number]>(
        'INSERT INTO events (stream_id, revision, event_id, type, data, metadata, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      readStream: db.prepare<[string, number, number], EventRow>(`SELECT ${COLUMNS} FROM events WHERE stream_id = ? AND revision >= ? ORDER BY revision LIMIT ?`),
      readAll: db.prepare<[number, number], EventRow>(`SELECT ${COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?`),
      head: db.prepare<[], number | null>('SELECT MAX(position) FROM events').pluck(),
    };
  }

  static async open(options: SqliteEventStoreOptions): Promise<SqliteEventStore> {
    const maxBatchAppends = checkLimit('maxBatchAppends', options.maxBatchAppends ?? 1_000, 100_000);
    const maxPendingAppends = checkLimit('maxPendingAppends', options.maxPendingAppends ?? 50_000, 10_000_000);
    const maxEventBytes = checkLimit('maxEventBytes', options.maxEventBytes ?? 1024 * 1024, 64 * 1024 * 1024);
    mkdirSync(dirname(options.path), { recursive: true });
    const db = new Database(options.path);
    try {
      migrate(db);
      return new SqliteEventStore(db, maxBatchAppends, maxPendingAppends, maxEventBytes);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  appendToStream(streamId: string, events: readonly EventData[], options: { expectedRevision: ExpectedRevision }): Promise<AppendResult> {
    if (this.closing !== undefined) return Promise.reject(new StoreClosedError());
    if (this.queue.length >= this.maxPendingAppends) return Promise.reject(new StoreOverloadedError(this.maxPendingAppends));
    let prepared: PreparedEvent[];
    try {
      // Validated and serialised here, outside the write transaction, to keep the lock short.
      prepared = this.prepareEvents(streamId, events, options?.expectedRevision);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<AppendResult>((resolve, reject) => {
      this.queue.push({ streamId, expected: options.expectedRevision, events: prepared, resolve, reject });
      this.scheduleFlush();
    });
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const fromRevision = checkNonNegative('fromRevision', options.fromRevision ?? 0);
    return this.statements().readStream.all(streamId, fromRevision, checkMaxCount(options.maxCount)).map(toRecorded);
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    return this.readAllNow(checkNonNegative('fromPosition', options.fromPosition ?? 0), checkMaxCount(options.maxCount));
  }

  /** Pages of the global log after fromPosition (exclusive) up to the head, memory bounded by pageSize. */
  async *readAllPages(fromPosition: LogPosition = 0, pageSize = 1_000): AsyncGenerator<RecordedEvent[], void, undefined> {
    let position = checkNonNegative('fromPosition', fromPosition);
    const limit = checkLimit('pageSize', pageSize, MAX_PAGE_SIZE);
    for (;;) {
      const page = this.readAllNow(position, limit);
      if (page.length === 0) return;
      yield page;
      position = page[page.length - 1]!.position;
      if (page.length < limit) return;
    }
  }

  async headPosition(): Promise<LogPosition> {
    return this.statements().head.get() ?? 0;
  }

  subscribeToAll(handler: (event: RecordedEvent) => void | Promise<void>, options: SubscribeToAllOptions = {}): Subscription {
    const sub: LiveSubscription = { checkpoint: options.fromPosition ?? 0, stopped: false, wake: undefined, done: Promise.resolve() };
    const closed = this.closing !== undefined; // close() would never stop it: fail it instead
    if (!closed) this.subscriptions.add(sub);
    // Started on a microtask so the handler never runs before subscribeToAll has returned.
    sub.done = Promise.resolve().then(() => this.pump(sub, handler, options.onError, closed));
    return {
      unsubscribe: async () => {
        // Do not await this from inside the handler: it waits for that very handler call to end.
        sub.stopped = true;
        wake(sub);
        await sub.done;
      },
    };
  }

  /** Idempotent. Pending appends are committed and acknowledged, not dropped. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  stats(): Readonly<SqliteEventStoreStats> {
    const { transactions, committedAppends, committedEvents } = this;
    return { transactions, committedAppends, committedEvents, pendingAppends: this.queue.length, subscriptions: this.subscriptions.size };
  }

  private async shutdown(): Promise<void> {
    if (this.flushTimer !== undefined) clearImmediate(this.flushTimer);
    this.flushTimer = undefined;
    while (this.queue.length > 0) this.flush(); // each flush takes at least one request
    const subs = [...this.subscriptions];
    for (const sub of subs) {
      sub.stopped = true;
      wake(sub);
    }
    await Promise.all(subs.map((sub) => sub.done));
    this.db.close();
  }

  /** One group commit: a transaction over the head of the queue, then the promises are settled. */
  private flush(): void {
    let count = 0;
    let eventCount = 0;
    while (count < this.queue.length && count < this.maxBatchAppends) {
      const size = this.queue[count]!.events.length;
      if (count > 0 && eventCount + size > MAX_BATCH_EVENTS) break;
      eventCount += size;
      count++;
    }
    const batch = this.queue.splice(0, count);
    const outcomes: Array<AppendResult | Error> = [];
    let failure: unknown;
    let written = 0;
    try {
      this.stmt.begin.run();
      try {
        const createdMs = Date.now();
        for (const request of batch) {
          const outcome = this.applyAppend(request, createdMs);
          outcomes.push(outcome);
          if (!(outcome instanceof Error)) written += request.events.length;
        }
        this.stmt.commit.run();
      } catch (error) {
        // An unexpected SQLite error or a failed COMMIT: nothing of this batch is acknowledged.
        try {
          if (this.db.inTransaction) this.stmt.rollback.run();
        } catch {
          // the original error is the one worth reporting
        }
        throw error;
      }
    } catch (error) {
      failure = error ?? new Error('group commit failed');
    }
    if (failure === undefined) {
      this.transactions++;
      batch.forEach((request, i) => {
        const outcome = outcomes[i]!;
        if (outcome instanceof Error) return request.reject(outcome);
        this.committedAppends++;
        request.resolve(outcome);
      });
      this.committedEvents += written;
      if (written > 0) this.subscriptions.forEach(wake);
    } else {
      for (const request of batch) request.reject(failure);
    }
    if (this.queue.length > 0 && this.closing === undefined) this.scheduleFlush();
  }

  /** setImmediate (not a microtask) lets every append issued in this event-loop turn join the batch. */
  private scheduleFlush(): void {
    this.flushTimer ??= setImmediate(() => {
      this.flushTimer = undefined;
      this.flush();
    });
  }

  /** Checks and writes one request inside the open transaction; an expected failure writes nothing. */
  private applyAppend(request: AppendRequest, createdMs: number): AppendResult | Error {
    const { streamId, expected, events } = request;
    // Read with SQL inside the write transaction: correct even when another process appends too.
    const current = this.stmt.lastRevision.get(streamId) ?? -1;
    const first = this.stmt.byEventId.get(events[0]!.id);
    if (first !== undefined) return this.retriedAppend(request, first);
    if (!revisionMatches(expected, current)) {
      return new WrongExpectedRevisionError(streamId, expected, current < 0 ? 'no_stream' : current);
    }
    // Probed before writing so that a conflict leaves no partial append (no savepoint needed).
    for (let i = 1; i < events.length; i++) {
      if (this.stmt.byEventId.get(events[i]!.id) !== undefined) return new EventIdConflictError(streamId, events[i]!.id);
    }
    let position = 0;
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      position = Number(this.stmt.insert.run(streamId, current + 1 + i, e.id, e.type, e.dataJson, e.metadataJson, createdMs).lastInsertRowid);
    }
    return { nextExpectedRevision: current + events.length, position };
  }

  /** The first id is already stored: an idempotent retry if all ids sit at the expected place. */
  private retriedAppend({ streamId, expected, events }: AppendRequest, first: IdRow): AppendResult | Error {
    const start = typeof expected === 'number' ? expected + 1 : expected === 'no_stream' ? 0 : first.revision;
    let position = 0;
    for (let i = 0; i < events.length; i++) {
      const row = i === 0 ? first : this.stmt.byEventId.get(events[i]!.id);
      if (row === undefined || row.stream_id !== streamId || row.revision !== start + i || row.type !== events[i]!.type) {
        return new EventIdConflictError(streamId, events[i]!.id);
      }
      position = row.position;
    }
    return { nextExpectedRevision: start + events.length - 1, position };
  }

  private prepareEvents(streamId: string, events: readonly EventData[], expected: unknown): PreparedEvent[] {
    if (typeof streamId !== 'string' || streamId.length === 0 || streamId.length > MAX_STREAM_ID_LENGTH) {
      throw new TypeError(`streamId must be a string of 1..${MAX_STREAM_ID_LENGTH} characters`);
    }
    if (!(expected === 'no_stream' || expected === 'any' || expected === 'stream_exists' || (Number.isSafeInteger(expected) && (expected as number) >= 0))) {
      throw new TypeError(`invalid expectedRevision: ${String(expected)}`);
    }
    if (!Array.isArray(events) || events.length === 0 || events.length > MAX_EVENTS_PER_APPEND) {
      throw new RangeError(`an append takes 1..${MAX_EVENTS_PER_APPEND} events`);
    }
    const ids = new Set<string>();
    return events.map((e: EventData): PreparedEvent => {
      if (typeof e.id !== 'string' || e.id.length === 0 || e.id.length > MAX_EVENT_ID_LENGTH) {
        throw new TypeError(`event id must be a string of 1..${MAX_EVENT_ID_LENGTH} characters`);
      }
      if (ids.has(e.id)) throw new EventIdConflictError(streamId, e.id);
      ids.add(e.id);
      if (typeof e.type !== 'string' || e.type.length === 0 || e.type.length > MAX_EVENT_TYPE_LENGTH) {
        throw new TypeError(`event type must be a string of 1..${MAX_EVENT_TYPE_LENGTH} characters`);
      }
      const dataJson = JSON.stringify(e.data) ?? 'null';
      const metadataJson = e.metadata === undefined ? null : (JSON.stringify(e.metadata) ?? 'null');
      const bytes = Buffer.byteLength(dataJson) + (metadataJson === null ? 0 : Buffer.byteLength(metadataJson));
      if (bytes > this.maxEventBytes) throw new RangeError(`event ${e.id} is ${bytes} bytes, more than ${this.maxEventBytes}`);
      return { id: e.id, type: e.type, dataJson, metadataJson };
    });
  }

  /** Catch-up and live are one loop: read a page after the checkpoint, or wait for the next commit. */
  private async pump(sub: LiveSubscription, handler: (event: RecordedEvent) => void | Promise<void>, onError: ((error: unknown) => void) | undefined, closed: boolean): Promise<void> {
    try {
      if (closed) throw new StoreClosedError();
      checkNonNegative('fromPosition', sub.checkpoint);
      while (!sub.stopped) {
        // Reading the database (not buffering pushed events) keeps memory bounded for slow handlers.
        const page = this.readAllNow(sub.checkpoint, SUBSCRIPTION_PAGE_SIZE);
        if (page.length === 0) {
          await new Promise<void>((resolve) => (sub.wake = resolve));
          continue;
        }
        for (const event of page) {
          if (sub.stopped) return;
          await handler(event);
          sub.checkpoint = event.position;
        }
        // A synchronous handler never leaves the microtask queue: yield so a long catch-up cannot starve I/O.
        await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (error) {
      sub.stopped = true;
      try {
        onError?.(error);
      } catch {
        // a throwing onError must not become an unhandled rejection
      }
    } finally {
      this.subscriptions.delete(sub);
    }
  }

  private readAllNow(fromPosition: LogPosition, limit: number): RecordedEvent[] {
    return this.statements().readAll.all(fromPosition, limit).map(toRecorded);
  }

  private statements(): SqliteEventStore['stmt'] {
    if (!this.db.open) throw new StoreClosedError();
    return this.stmt;
  }
}

function migrate(db: Database.Database): void {
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`); // first, so that the steps below wait for other processes
  // Takes effect only on a new file. 16 KiB pages hold ~10 events of 1.5 KB: fewer WAL frames per
  // commit; measured here, the COMMIT of a 1000-event batch took about half the time of 4 KiB pages.
  db.pragma(`page_size = ${PAGE_SIZE_BYTES}`);
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (mode !== 'wal') throw new Error(`SQLite refused WAL mode (got ${String(mode)}); use a file on a local disk`);
  db.pragma('synchronous = FULL'); // WAL + NORMAL may lose the last commits on power loss; FULL does not
  db.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT_BYTES}`);
  db.pragma(`cache_size = -${CACHE_SIZE_KIB}`); // keeps the two random-key indexes' hot pages in memory
  // Checkpoint at the size the WAL is truncated back to: a hot index page modified by many commits is
  // copied into the database once per checkpoint, so rarer checkpoints copy less (measured ~10% more appends/s).
  db.pragma(`wal_autocheckpoint = ${JOURNAL_SIZE_LIMIT_BYTES / PAGE_SIZE_BYTES}`);
  db.transaction(() => {
    // position is the rowid: max + 1 on insert, so strictly increasing in commit order as rows are
    // never deleted. The two UNIQUE indexes serve the revision probe and the event-id probe.
    db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
      CREATE TABLE IF NOT EXISTS events (
        position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL, revision INTEGER NOT NULL, event_id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL, data TEXT NOT NULL, metadata TEXT, created_ms INTEGER NOT NULL, UNIQUE (stream_id, revision)
      ) STRICT;`);
    const version = db.prepare<[], string>("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get();
    if (version === undefined) db.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', ?)").run(String(SCHEMA_VERSION));
    else if (Number(version) !== SCHEMA_VERSION) throw new Error(`unsupported event store schema version ${version}, expected ${SCHEMA_VERSION}`);
  }).immediate();
}

function revisionMatches(expected: ExpectedRevision, current: StreamRevision): boolean {
  if (expected === 'any') return true;
  if (expected === 'no_stream') return current < 0;
  if (expected === 'stream_exists') return current >= 0;
  return current === expected;
}

function toRecorded(row: EventRow): RecordedEvent {
  const metadata: unknown = row.metadata === null ? null : JSON.parse(row.metadata);
  const { stream_id: streamId, revision, position, event_id: id, type, created_ms: createdMs } = row;
  return { streamId, revision, position, id, type, data: JSON.parse(row.data) as unknown, metadata, createdMs };
}

function wake(sub: LiveSubscription): void {
  const resolve = sub.wake;
  sub.wake = undefined;
  resolve?.();
}

function checkNonNegative(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer`);
  return value;
}

/** SQLite reads LIMIT -1 as "no limit". */
function checkMaxCount(maxCount: number | undefined): number {
  return maxCount === undefined ? -1 : checkNonNegative('maxCount', maxCount);
}

function checkLimit(name: string, value: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) throw new RangeError(`${name} must be an integer in 1..${max}`);
  return value;
}
