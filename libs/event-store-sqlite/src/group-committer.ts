// The main thread's half of the write path. Appends queue here; the writer thread (one
// worker_threads Worker owning the write connection) commits them in group commits, so the
// fsync of each COMMIT no longer blocks the event loop. At most ONE batch is in flight: the
// appends that arrive meanwhile form the next batch (batches grow with load), and the revision
// checks stay simple because the writer sees the batches strictly one after another.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  AppendConditionFailedError,
  EventIdConflictError,
  WrongExpectedRevisionError,
  type AppendCondition,
  type AppendResult,
  type ExpectedRevision,
  type TagRule,
  tagKey,
} from '#event-store';
import type { PreparedAppend } from '#event-store';
import { SqliteWriteError, StoreOverloadedError, StoreWriterFailedError } from './errors.js';
import type { ErrorInfo, FromWriter, ToWriter, WriteBatch, WriterWorkerData } from './writer-protocol.js';

/** Bounds one transaction (and the writer's lock hold) whatever maxBatchAppends says. */
const MAX_BATCH_EVENTS = 20_000;
/** Bounds the copy of one batch to the writer thread (maxEventBytes alone allows 20,000 MiB). */
const MAX_BATCH_BYTES = 64 * 1024 * 1024;
/** Loading the worker and migrating the schema (which may wait busy_timeout for another process). */
const WRITER_START_TIMEOUT_MS = 600_000; // indexing a long log by new tag rules runs at open
/** close() waits this long for the writer to close its connection, then terminates the thread. */
const WRITER_EXIT_TIMEOUT_MS = 10_000;

const NO_EVENTS: PreparedAppend['events'] = [];

interface QueuedAppend extends PreparedAppend {
  streamId: string;
  expected: ExpectedRevision;
  conditions: readonly AppendCondition[];
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
}

export interface GroupCommitterOptions {
  path: string;
  maxBatchAppends: number;
  maxPendingAppends: number;
  tagRules: TagRule[] | null;
}

export class GroupCommitter {
  transactions = 0;
  committedAppends = 0;
  committedEvents = 0;
  private readonly queue: QueuedAppend[] = [];
  private inFlight: QueuedAppend[] | undefined;
  private sendScheduled = false;
  /** Set once the writer is gone or unusable: every pending and later append is rejected with it. */
  private failure: Error | undefined;
  private stopping = false;
  private exited = false;
  private readonly idleWaiters: Array<() => void> = [];
  private readonly exitWaiters: Array<() => void> = [];
  private started: { resolve: () => void; reject: (error: unknown) => void } | undefined;

  private constructor(
    private readonly worker: Worker,
    private readonly options: GroupCommitterOptions,
    /** Called after each commit that wrote events (wakes the subscriptions). */
    private readonly onCommitted: () => void,
  ) {
    worker.on('message', (message: FromWriter) => this.onMessage(message));
    worker.on('messageerror', (error) => this.fail(new StoreWriterFailedError('a message could not be read', { cause: error })));
    worker.on('error', (error) => this.fail(new StoreWriterFailedError(error.message, { cause: error })));
    worker.on('exit', (code) => {
      this.exited = true;
      if (!this.stopping) this.fail(new StoreWriterFailedError(`the thread exited (code ${code})`));
      this.exitWaiters.splice(0).forEach((done) => done());
    });
  }

  /** Starts the writer thread; resolves once it has opened (and migrated) the database. */
  static async start(options: GroupCommitterOptions, onCommitted: () => void): Promise<GroupCommitter> {
    const workerData: WriterWorkerData = { medaidSqliteWriter: true, path: options.path, tagRules: options.tagRules };
    const committer = new GroupCommitter(new Worker(writerScript(), { workerData }), options, onCommitted);
    const timer = setTimeout(
      () => committer.fail(new StoreWriterFailedError(`not ready after ${WRITER_START_TIMEOUT_MS} ms`)),
      WRITER_START_TIMEOUT_MS,
    );
    try {
      await new Promise<void>((resolve, reject) => (committer.started = { resolve, reject }));
    } catch (error) {
      await committer.worker.terminate();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    committer.worker.unref(); // an idle store does not keep the process alive (nor did the synchronous one)
    return committer;
  }

  /** Appends waiting for a COMMIT: queued, or in the batch the writer is committing. */
  get pending(): number {
    return this.queue.length + (this.inFlight?.length ?? 0);
  }

  /** Why a new append would be refused now, checked before its events are validated. */
  refusal(): Error | undefined {
    if (this.failure !== undefined) return this.failure;
    if (this.pending >= this.options.maxPendingAppends) return new StoreOverloadedError(this.options.maxPendingAppends);
    return undefined;
  }

  /** Resolves once the COMMIT containing this append has returned (acknowledged ⇒ durable). */
  append(
    streamId: string,
    expected: ExpectedRevision,
    prepared: PreparedAppend,
    conditions: readonly AppendCondition[],
  ): Promise<AppendResult> {
    return new Promise<AppendResult>((resolve, reject) => {
      this.queue.push({ streamId, expected, conditions, events: prepared.events, bytes: prepared.bytes, resolve, reject });
      // While a batch is in flight, its completion sends the next one (with everything queued by
      // then). When the writer is idle, the batch leaves at the end of this task: the appends of this
      // same task join it, and those of later tasks form the next batch while this one commits.
      // (Waiting for setImmediate, as when the commit blocked this thread, only delays the commit:
      // 6-10 % fewer HTTP settlements/s in paired runs of test/bench (c).)
      if (this.inFlight === undefined && !this.sendScheduled) {
        this.sendScheduled = true;
        queueMicrotask(() => {
          this.sendScheduled = false;
          this.sendNext();
        });
      }
    });
  }

  /** Sends what is queued, waits for every batch to commit, then ends the writer thread. */
  async close(): Promise<void> {
    this.sendNext();
    while (this.pending > 0 && this.failure === undefined) await new Promise<void>((done) => this.idleWaiters.push(done));
    if (this.exited) return;
    this.stopping = true;
    this.worker.ref(); // the exit is awaited even when nothing else keeps the process alive
    const exited = new Promise<void>((done) => this.exitWaiters.push(done));
    this.post({ type: 'close' });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((done) => (timer = setTimeout(() => done(true), WRITER_EXIT_TIMEOUT_MS)));
    if (await Promise.race([exited.then(() => false), timedOut])) await this.worker.terminate();
    clearTimeout(timer);
  }

  private sendNext(): void {
    if (this.inFlight !== undefined || this.queue.length === 0 || this.failure !== undefined) return;
    let count = 0;
    let events = 0;
    let bytes = 0;
    while (count < this.queue.length && count < this.options.maxBatchAppends) {
      const next = this.queue[count]!;
      if (count > 0 && (events + next.events.length > MAX_BATCH_EVENTS || bytes + next.bytes > MAX_BATCH_BYTES)) break;
      events += next.events.length;
      bytes += next.bytes;
      count++;
    }
    const batch = this.queue.splice(0, count);
    this.inFlight = batch;
    this.worker.ref(); // a commit under way keeps the process alive until it is acknowledged
    this.post(encode(batch, events));
    // The writer has its copy now: let go of the JSON here, so that it dies young instead of
    // being copied by every scavenge while the commit runs (~1 KB per settlement).
    for (const request of batch) request.events = NO_EVENTS;
  }

  private onMessage(message: FromWriter): void {
    switch (message.type) {
      case 'ready':
        this.started?.resolve();
        this.started = undefined;
        return;
      case 'open_failed':
        return this.fail(rebuild(message.error));
      case 'committed':
      case 'failed':
        return this.onBatchDone(message);
    }
  }

  private onBatchDone(message: Extract<FromWriter, { type: 'committed' | 'failed' }>): void {
    const batch = this.inFlight;
    if (batch === undefined) return this.fail(new StoreWriterFailedError('it reported a batch that was not sent'));
    this.inFlight = undefined;
    // The next batch goes first, so the writer commits it while this thread settles this one.
    this.sendNext();
    if (this.inFlight === undefined) {
      if (!this.stopping) this.worker.unref();
      this.idleWaiters.splice(0).forEach((done) => done());
    }
    if (message.type === 'failed') {
      const error = rebuild(message.error);
      for (const request of batch) request.reject(error);
      return;
    }
    this.transactions++;
    const rejected = new Map(message.rejected.map((r) => [r.index, r]));
    batch.forEach((request, i) => {
      const r = rejected.get(i);
      if (r === undefined) {
        this.committedAppends++;
        request.resolve({ nextExpectedRevision: message.results[2 * i]!, position: message.results[2 * i + 1]! });
      } else if (r.kind === 'revision') {
        request.reject(new WrongExpectedRevisionError(request.streamId, request.expected, r.actual));
      } else if (r.kind === 'condition') {
        request.reject(new AppendConditionFailedError(request.streamId, request.conditions[r.condition]!));
      } else {
        request.reject(new EventIdConflictError(request.streamId, r.eventId));
      }
    });
    this.committedEvents += message.written;
    if (message.written > 0) this.onCommitted();
  }

  private post(message: ToWriter): void {
    try {
      this.worker.postMessage(message);
    } catch (error) {
      this.fail(new StoreWriterFailedError('a message could not be sent', { cause: error }));
    }
  }

  /** Rejects everything pending and every later append; never leaves a promise hanging. */
  private fail(error: Error): void {
    if (this.started !== undefined) {
      this.started.reject(error);
      this.started = undefined;
    }
    this.failure ??= error;
    const pending = [...(this.inFlight ?? []), ...this.queue.splice(0)];
    this.inFlight = undefined;
    for (const request of pending) request.reject(this.failure);
    this.idleWaiters.splice(0).forEach((done) => done());
    if (!this.exited) void this.worker.terminate(); // a writer that misbehaved must not write on
  }
}

function encode(batch: readonly QueuedAppend[], eventCount: number): WriteBatch {
  const message: WriteBatch = {
    type: 'write',
    streamIds: [],
    expected: [],
    eventCounts: [],
    eventIds: new Array<string>(eventCount),
    types: new Array<string>(eventCount),
    data: new Array<string>(eventCount),
    metadata: new Array<string | null>(eventCount),
    tagCounts: new Array<number>(eventCount),
    tags: [],
    conditions: [],
  };
  let e = 0;
  for (const request of batch) {
    message.streamIds.push(request.streamId);
    message.expected.push(request.expected);
    message.eventCounts.push(request.events.length);
    const cs = request.conditions;
    message.conditions.push(cs.length === 0 ? null : cs.flatMap((c) => [c.tag, tagKey(c.key), c.afterPosition]));
    for (const event of request.events) {
      message.tagCounts[e] = event.tags.length / 2;
      for (const t of event.tags) message.tags.push(t);
      message.eventIds[e] = event.id;
      message.types[e] = event.type;
      message.data[e] = event.dataJson;
      message.metadata[e] = event.metadataJson;
      e++;
    }
  }
  return message;
}

function rebuild(info: ErrorInfo): SqliteWriteError {
  return new SqliteWriteError(info.message, info.code);
}

/**
 * The compiled worker script beside this module. Under jest this module is the TypeScript source,
 * which a Worker cannot load: the compiled copy in dist/ is used instead (npm test builds first).
 */
function writerScript(): URL {
  const here = import.meta.url;
  const script = here.endsWith('.ts')
    ? new URL('../../../dist/libs/event-store-sqlite/src/sqlite-writer.worker.js', here)
    : new URL('./sqlite-writer.worker.js', here);
  if (!existsSync(fileURLToPath(script)))
    throw new Error(`event store writer script ${fileURLToPath(script)} is missing: build first (npm run build)`);
  return script;
}
