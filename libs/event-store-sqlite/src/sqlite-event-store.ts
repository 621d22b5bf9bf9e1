// Embedded adapter of the event-store port on SQLite (better-sqlite3; its connections, schema
// and reads are in sqlite-connections.ts). Appends are group-committed: the appends queued while one commit runs
// are written together in the next transaction, so many concurrent appends share one fsync
// (synchronous=FULL makes each COMMIT durable, and fsync is what bounds a durable log). The
// commits (and the WAL checkpoints they trigger) run on a writer thread (GroupCommitter,
// sqlite-writer.worker.ts) with its own connection, so this thread's event loop never waits for
// them; reads use a second connection here (WAL lets them run alongside the writer, and a read
// started after an append was acknowledged sees it).
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { PagedSubscriptions, checkTagRules, conditionsOf, readPages, type AppendCondition } from '#event-store';
import type {
  AppendOptions,
  AppendResult,
  EventData,
  EventStore,
  LogPosition,
  ReadAllOptions,
  ReadStreamOptions,
  RecordedEvent,
  SubscribeToAllOptions,
  Subscription,
  TagRule,
} from '#event-store';
import { checkConditions, checkLimit, checkMaxCount, checkNonNegative, prepareEvents, type PreparedAppend } from '#event-store';
import { StoreClosedError } from './errors.js';
import { GroupCommitter } from './group-committer.js';
import { SqliteLogReader } from './sqlite-connections.js';

export { StoreClosedError, StoreOverloadedError } from './errors.js';
export { SqliteLogReader } from './sqlite-connections.js';

const MAX_PAGE_SIZE = 10_000;
/** Conditions one append may carry (each one indexed lookup inside the write transaction). */
const MAX_CONDITIONS = 16;
const SUBSCRIPTION_PAGE_SIZE = 500;
/**
 * At most this many appends per group commit. Smaller than the load the store is built for: when
 * more appends wait than one batch takes, the writer commits one batch while this thread
 * completes the previous one and forms the next (double buffering). With 1,000 settlements in
 * flight, one batch of all 1,000 left this thread idle during every commit (16 % of its time);
 * batches of 500 gave 15–20 % more durable settlements/s (bench (b), paired runs).
 */
const DEFAULT_MAX_BATCH_APPENDS = 500;

export interface SqliteEventStoreOptions {
  /** Database file; its directory is created if needed. */
  path: string;
  /** Most append requests committed in one transaction (default 500). */
  maxBatchAppends?: number;
  /** Most append requests waiting for a transaction; beyond it appends fail fast (default 50,000). */
  maxPendingAppends?: number;
  /** Most UTF-8 bytes of one event's data + metadata JSON (default 1 MiB). */
  maxEventBytes?: number;
  /**
   * The tags to index events by (see TagRule). When they differ from the rules the file was
   * indexed with, the whole log is indexed again at open (once). Omitted: the file's own rules.
   */
  tagRules?: readonly TagRule[];
}

export interface SqliteEventStoreStats {
  /** Committed write transactions (one per group commit). */
  transactions: number;
  /** Append requests acknowledged (idempotent retries included). */
  committedAppends: number;
  /** Events written. */
  committedEvents: number;
  /** Append requests not yet acknowledged: queued, or in the commit under way. */
  pendingAppends: number;
  subscriptions: number;
}

export class SqliteEventStore implements EventStore {
  readonly maxAppendConditions = MAX_CONDITIONS;
  private readonly subscriptions: PagedSubscriptions;
  private closing: Promise<void> | undefined;

  private constructor(
    /** The main thread's reads; the writes go through the committer's thread. */
    private readonly reader: SqliteLogReader,
    private readonly committer: GroupCommitter,
    private readonly maxEventBytes: number,
    /** The rules the file is indexed with: every append is tagged by these. */
    readonly tagRules: readonly TagRule[],
  ) {
    // Woken by each commit of the writer thread (wakeSubscriptions); no polling needed.
    this.subscriptions = new PagedSubscriptions((after, limit) => this.reader.readAllNow(after, limit), {
      pageSize: SUBSCRIPTION_PAGE_SIZE,
      closedError: () => new StoreClosedError(),
    });
  }

  static async open(options: SqliteEventStoreOptions): Promise<SqliteEventStore> {
    const maxBatchAppends = checkLimit('maxBatchAppends', options.maxBatchAppends ?? DEFAULT_MAX_BATCH_APPENDS, 100_000);
    const maxPendingAppends = checkLimit('maxPendingAppends', options.maxPendingAppends ?? 50_000, 10_000_000);
    const maxEventBytes = checkLimit('maxEventBytes', options.maxEventBytes ?? 1024 * 1024, 64 * 1024 * 1024);
    mkdirSync(dirname(options.path), { recursive: true });
    // The writer thread creates the file and the schema; the read connection opens after it.
    // `store` is set below, before any commit can call back (no append can exist before).
    let store: SqliteEventStore | undefined;
    const tagRules = options.tagRules === undefined ? null : [...checkTagRules(options.tagRules)];
    const committer = await GroupCommitter.start({ path: options.path, maxBatchAppends, maxPendingAppends, tagRules }, () =>
      store?.wakeSubscriptions(),
    );
    try {
      const reader = SqliteLogReader.open(options.path);
      store = new SqliteEventStore(reader, committer, maxEventBytes, reader.tagRules());
      return store;
    } catch (error) {
      await committer.close();
      throw error;
    }
  }

  appendToStream(streamId: string, events: readonly EventData[], options: AppendOptions): Promise<AppendResult> {
    if (this.closing !== undefined) return Promise.reject(new StoreClosedError());
    const refusal = this.committer.refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    let prepared: PreparedAppend;
    let conditions: readonly AppendCondition[];
    try {
      // Validated, serialised and tagged here, before queueing: bad input never reaches the writer thread.
      prepared = prepareEvents(streamId, events, options?.expectedRevision, this.maxEventBytes, this.tagRules);
      conditions = checkConditions(conditionsOf(options), MAX_CONDITIONS);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.committer.append(streamId, options.expectedRevision, prepared, conditions);
  }

  async readByTag(tag: string, key: readonly string[], options: { maxCount?: number } = {}): Promise<RecordedEvent[]> {
    return this.reader.readByTag(tag, key, options.maxCount);
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    return this.reader.readStream(streamId, options);
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    return this.reader.readAll(options);
  }

  /** Pages of the global log after fromPosition (exclusive) up to the head, memory bounded by pageSize. */
  readAllPages(fromPosition: LogPosition = 0, pageSize = 1_000): AsyncGenerator<RecordedEvent[], void, undefined> {
    const from = checkNonNegative('fromPosition', fromPosition);
    return readPages((after, limit) => this.reader.readAllNow(after, limit), from, checkLimit('pageSize', pageSize, MAX_PAGE_SIZE));
  }

  async headPosition(): Promise<LogPosition> {
    return this.reader.headPosition();
  }

  subscribeToAll(handler: (event: RecordedEvent) => void | Promise<void>, options: SubscribeToAllOptions = {}): Subscription {
    return this.subscriptions.subscribe(handler, options, this.closing !== undefined);
  }

  /** Idempotent. Pending appends are committed and acknowledged, not dropped. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  stats(): Readonly<SqliteEventStoreStats> {
    const { transactions, committedAppends, committedEvents, pending } = this.committer;
    return { transactions, committedAppends, committedEvents, pendingAppends: pending, subscriptions: this.subscriptions.size };
  }

  private async shutdown(): Promise<void> {
    // New appends are refused from now on (closing is set); those accepted are all committed.
    await this.committer.close();
    await this.subscriptions.close();
    this.reader.close();
  }

  private wakeSubscriptions(): void {
    this.subscriptions.wakeAll();
  }
}
