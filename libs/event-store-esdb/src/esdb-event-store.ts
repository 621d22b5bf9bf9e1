// EventStoreDB adapter of the event-store port, over gRPC with @eventstore/db-client (the only module that
// may import it; its successor @kurrent/kurrentdb-client has the same model). The port was shaped after
// EventStoreDB, so most calls map one-to-one; the differences this module bridges:
// - positions: the port's position is the event's $all commit position (= its prepare position for every
//   event appended over gRPC), as a safe integer. EventStoreDB reads $all from a position inclusively, the
//   port exclusively. Stream reads carry $all positions since EventStoreDB 22.6 (older servers are refused).
// - idempotency: EventStoreDB recognises a retry by position only for an exact expected revision, compares
//   ids but not types, answers an idempotent append without its position, recognises retries with
//   any / stream_exists only through a bounded in-memory cache (empty after a restart), and lets an id be
//   written to several streams. So every successful append is read back (the events at the revisions it
//   reports must be ours, type included; the position comes from them), a rejected exact append is read at
//   the expected place (our first id there = a conflicting retry, not a stale revision), an any /
//   stream_exists append first searches the stream's last events for a retry, and the ids this process has
//   appended or read are remembered (bounded) to refuse one reused in another stream.
// - deadlines: reads and batch appends run without a gRPC deadline in the client, so each call here has its own.
// - system events ($-prefixed streams or types) are never returned.
import esdb from '@eventstore/db-client';
import type {
  AllStreamResolvedEvent,
  AllStreamSubscription,
  AppendExpectedRevision,
  EventData as EsdbEventData,
  JSONType,
  Position,
  ResolvedEvent,
  StreamingRead,
} from '@eventstore/db-client';
import {
  AppendConditionFailedError,
  EventIdConflictError,
  WrongExpectedRevisionError,
  checkTagRules,
  type AppendOptions,
  type AppendResult,
  type EventData,
  type EventStore,
  type ExpectedRevision,
  type LogPosition,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  type SubscribeToAllOptions,
  type Subscription,
  type TagRule,
} from '#event-store';
import { EsdbTagIndex } from './esdb-tag-index.js';
import {
  EsdbDeadlineExceededError,
  EsdbStoreClosedError,
  EsdbUnavailableError,
  EventIdCache,
  checkNonNegative,
  isSystemEvent,
  pause,
  prepareEvents,
  resolveOptions,
  translate,
  withDefaults,
  type EsdbEventStoreOptions,
  type PreparedEvent,
  type ResolvedOptions,
} from './esdb-support.js';

export { EsdbDeadlineExceededError, EsdbStoreClosedError, EsdbUnavailableError, type EsdbEventStoreOptions } from './esdb-support.js';

const {
  EventStoreDBClient,
  BACKWARDS,
  END,
  FORWARDS,
  NO_STREAM,
  START,
  StreamNotFoundError,
  WrongExpectedVersionError,
  excludeSystemEvents,
} = esdb;
type Client = InstanceType<typeof EventStoreDBClient>;

/** Events per $all read call: bounds each response while system events are skipped. */
const ALL_PAGE_SIZE = 500;
/** First wait before retrying a call whose connection failed; it grows 4× per attempt. */
const CALL_RETRY_BACKOFF_MS = 50;
/** What a server before 22.6 sends instead of the position of an event read from a stream. */
const NO_POSITION = 2n ** 64n - 1n;

interface LiveSubscription {
  checkpoint: LogPosition;
  stopped: boolean;
  stop: () => void;
  signal: Promise<void>;
  done: Promise<void>;
}

class HandlerFailure {
  constructor(readonly error: unknown) {}
}

export class EsdbEventStore implements EventStore {
  private readonly subscriptions = new Set<LiveSubscription>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly known: EventIdCache;
  private closing: Promise<void> | undefined;

  private readonly tags: EsdbTagIndex;

  private constructor(
    private readonly client: Client,
    private readonly options: ResolvedOptions,
    tagRules: readonly TagRule[],
  ) {
    this.known = new EventIdCache(options.eventIdCacheSize);
    this.tags = new EsdbTagIndex(tagRules);
  }

  /**
   * Connects (e.g. `esdb://127.0.0.1:2113?tls=false`) and checks the server answers within the
   * deadline. With tag rules, the whole $all is read once to index it (esdb-tag-index.ts).
   */
  static async connect(
    connectionString: string,
    options: EsdbEventStoreOptions & { tagRules?: readonly TagRule[] } = {},
  ): Promise<EsdbEventStore> {
    const resolved = resolveOptions(options);
    const url = withDefaults(connectionString, {
      keepAliveInterval: resolved.keepAliveIntervalMs,
      keepAliveTimeout: resolved.keepAliveTimeoutMs,
      defaultDeadline: resolved.deadlineMs,
    });
    const store = new EsdbEventStore(EventStoreDBClient.connectionString(url), resolved, checkTagRules(options.tagRules ?? []));
    try {
      await store.collect('connect', () => store.client.readAll({ direction: BACKWARDS, fromPosition: END, maxCount: 1 }));
      if (store.tags.rules.length > 0) {
        for (let after = 0; ;) {
          const page = await store.readAll({ fromPosition: after, maxCount: 10_000 });
          for (const e of page) store.tags.add(e);
          if (page.length < 10_000) break;
          after = page[page.length - 1]!.position;
        }
      }
      return store;
    } catch (error) {
      await store.client.dispose();
      throw error;
    }
  }

  appendToStream(streamId: string, events: readonly EventData[], options: AppendOptions): Promise<AppendResult> {
    if (this.closing !== undefined) return Promise.reject(new EsdbStoreClosedError());
    let prepared: PreparedEvent[];
    try {
      prepared = prepareEvents(streamId, events, options?.expectedRevision, this.options.maxEventBytes);
    } catch (error) {
      return Promise.reject(error);
    }
    const { condition } = options;
    return this.track(
      this.tags.serialised(condition, async () => {
        if (condition !== undefined && !this.tags.holds(condition) && !(await this.isRetry(streamId, prepared, options.expectedRevision))) {
          throw new AppendConditionFailedError(streamId, condition);
        }
        return this.retrying(() => this.append(streamId, prepared, options.expectedRevision)); // readBack indexes the events
      }),
    );
  }

  /** Whether the append's first event already sits where the append would put it (a retry, answered as the same append). */
  private async isRetry(streamId: string, events: PreparedEvent[], expected: ExpectedRevision): Promise<boolean> {
    if (typeof expected === 'number' || expected === 'no_stream') {
      const [atPlace] = await this.retrying(() => this.readRange(streamId, expected === 'no_stream' ? 0 : expected + 1, 1, false));
      return atPlace?.id === events[0]!.id;
    }
    return (await this.readTail(streamId)).some((e) => e.id === events[0]!.id);
  }

  async readByTag(tag: string, key: readonly string[], options: { maxCount?: number } = {}): Promise<RecordedEvent[]> {
    this.assertOpen();
    const refs = this.tags
      .refsOf(tag, key)
      .slice(0, options.maxCount === undefined ? undefined : checkNonNegative('maxCount', options.maxCount));
    const out: RecordedEvent[] = [];
    for (const r of refs) {
      const [e] = await this.retrying(() => this.readRange(r.streamId, r.revision, 1, true));
      if (e !== undefined) out.push(e);
    }
    return out;
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    this.assertOpen();
    const fromRevision = checkNonNegative('fromRevision', options.fromRevision ?? 0);
    const maxCount = options.maxCount === undefined ? Number.MAX_SAFE_INTEGER : checkNonNegative('maxCount', options.maxCount);
    if (maxCount === 0) return [];
    return this.retrying(() => this.readRange(streamId, fromRevision, maxCount, true));
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    this.assertOpen();
    const after = checkNonNegative('fromPosition', options.fromPosition ?? 0);
    const maxCount = options.maxCount === undefined ? Infinity : checkNonNegative('maxCount', options.maxCount);
    return this.retrying(() => this.readAllAfter(after, maxCount));
  }

  async headPosition(): Promise<LogPosition> {
    this.assertOpen();
    return this.retrying(() => this.readHead());
  }

  private async readAllAfter(after: LogPosition, maxCount: number): Promise<RecordedEvent[]> {
    const result: RecordedEvent[] = [];
    let from: Position | typeof START = after === 0 ? START : at(after);
    let last = after;
    while (result.length < maxCount) {
      const page = await this.collect('readAll', () =>
        this.client.readAll({ direction: FORWARDS, fromPosition: from, maxCount: ALL_PAGE_SIZE }),
      );
      for (const resolved of page) {
        const event = this.toRecorded(resolved);
        if (event === undefined || event.position <= last) continue; // EventStoreDB's start is inclusive
        last = event.position;
        if (result.push(event) === maxCount) break;
      }
      if (page.length < ALL_PAGE_SIZE) break;
      from = page[page.length - 1]!.event!.position; // inclusive: the event seen last is skipped above
    }
    return result;
  }

  private async readHead(): Promise<LogPosition> {
    let from: Position | typeof END = END;
    for (;;) {
      // Backwards from a position is exclusive, so each page starts below the previous one.
      const page = await this.collect('headPosition', () =>
        this.client.readAll({ direction: BACKWARDS, fromPosition: from, maxCount: ALL_PAGE_SIZE }),
      );
      for (const resolved of page) {
        const event = this.toRecorded(resolved);
        if (event !== undefined) return event.position;
      }
      if (page.length < ALL_PAGE_SIZE) return 0;
      from = page[page.length - 1]!.event!.position;
    }
  }

  subscribeToAll(handler: (event: RecordedEvent) => void | Promise<void>, options: SubscribeToAllOptions = {}): Subscription {
    let stop!: () => void;
    const signal = new Promise<void>((resolve) => (stop = resolve));
    const sub: LiveSubscription = { checkpoint: options.fromPosition ?? 0, stopped: false, stop, signal, done: Promise.resolve() };
    const closed = this.closing !== undefined; // close() would never stop it: fail it instead
    if (!closed) this.subscriptions.add(sub);
    // Started on a microtask so the handler never runs before subscribeToAll has returned.
    sub.done = Promise.resolve().then(() => this.pump(sub, handler, options.onError, closed));
    return {
      unsubscribe: async () => {
        // Do not await this from inside the handler: it waits for that very handler call to end.
        halt(sub);
        await sub.done;
      },
    };
  }

  /** Idempotent: stops the subscriptions, waits for the calls under way (each bounded by its deadline), disconnects. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const subs = [...this.subscriptions];
      subs.forEach(halt);
      await Promise.allSettled([...subs.map((s) => s.done), ...this.inFlight]);
      await this.client.dispose();
    })();
    return this.closing;
  }

  private async append(streamId: string, events: PreparedEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    if (expected === 'any' || expected === 'stream_exists') return this.appendAnywhere(streamId, events, expected);
    const last = expected === 'no_stream' ? -1 : expected;
    // An id this process knows elsewhere would be written again by EventStoreDB (no id index there).
    this.known.checkPlace(streamId, events, last + 1);
    try {
      await this.write(streamId, events, last < 0 ? NO_STREAM : BigInt(last));
    } catch (error) {
      if (!(error instanceof WrongExpectedVersionError)) throw error;
      // Both "the stream moved on" and "a retry that only partly matches" come back as wrong expected version.
      const [atPlace] = await this.readRange(streamId, last + 1, 1, false);
      if (atPlace?.id === events[0]!.id) return this.readBack(streamId, events, last + 1);
      throw new WrongExpectedRevisionError(streamId, expected, toRevision(error.actualVersion));
    }
    return this.readBack(streamId, events, last + 1);
  }

  /** any / stream_exists: a retry is found in the stream's last events (or the id cache), else EventStoreDB appends. */
  private async appendAnywhere(streamId: string, events: PreparedEvent[], expected: 'any' | 'stream_exists'): Promise<AppendResult> {
    const cached = this.known.get(events[0]!.id);
    this.known.checkPlace(streamId, events, cached?.streamId === streamId ? cached.revision : undefined);
    if (cached?.streamId === streamId) return this.readBack(streamId, events, cached.revision);
    const tail = await this.readTail(streamId);
    if (expected === 'stream_exists' && tail.length === 0) throw new WrongExpectedRevisionError(streamId, expected, 'no_stream');
    const retried = tail.find((e) => e.id === events[0]!.id);
    if (retried !== undefined) return this.readBack(streamId, events, retried.revision);
    const tailIds = new Set(tail.map((t) => t.id));
    const reused = events.find((e) => tailIds.has(e.id));
    if (reused !== undefined) throw new EventIdConflictError(streamId, reused.id);
    let lastRevision: bigint;
    try {
      lastRevision = await this.write(streamId, events, expected);
    } catch (error) {
      if (!(error instanceof WrongExpectedVersionError)) throw error;
      if (error.actualVersion === 'no_stream') throw new WrongExpectedRevisionError(streamId, expected, 'no_stream');
      throw new EventIdConflictError(streamId, events[0]!.id); // the server's cache saw a retry that does not match
    }
    return this.readBack(streamId, events, Number(lastRevision) - events.length + 1);
  }

  /** One append call; resolves with the stream's last revision as the server reports it. */
  private async write(streamId: string, events: PreparedEvent[], expectedRevision: AppendExpectedRevision): Promise<bigint> {
    const data = events.map((e): EsdbEventData => ({
      id: e.id,
      type: e.type,
      contentType: 'application/json',
      data: e.data as JSONType,
      // Bytes, not an object: the client drops falsy metadata and would stringify again.
      metadata: e.metadataJson === undefined ? undefined : new Uint8Array(Buffer.from(e.metadataJson, 'utf8')),
    }));
    const result = await this.withDeadline(
      'appendToStream',
      this.client.appendToStream(streamId, data, { expectedRevision, deadline: this.options.deadlineMs }),
    );
    return result.nextExpectedRevision;
  }

  /** The events at firstRevision.. must be the request's (ids and types): then it is their result, whoever wrote them. */
  private async readBack(streamId: string, events: PreparedEvent[], firstRevision: number): Promise<AppendResult> {
    const stored = await this.readRange(streamId, firstRevision, events.length, false);
    events.forEach((e, i) => {
      if (stored[i]?.id !== e.id || stored[i]!.type !== e.type) throw new EventIdConflictError(streamId, e.id);
    });
    // The events as stored, with their positions: what the tag index keeps (a retry adds nothing twice).
    if (this.tags.rules.length > 0) for (const e of stored) this.tags.add(e);
    return { nextExpectedRevision: firstRevision + events.length - 1, position: stored[events.length - 1]!.position };
  }

  private async readTail(streamId: string): Promise<RecordedEvent[]> {
    const read = () =>
      this.client.readStream(streamId, { direction: BACKWARDS, fromRevision: END, maxCount: this.options.retryScanWindow });
    return (await this.collectStream('readStream', read)).map((r) => this.toRecorded(r, false)!);
  }

  private async readRange(streamId: string, fromRevision: number, maxCount: number, skipSystem: boolean): Promise<RecordedEvent[]> {
    const read = () => this.client.readStream(streamId, { direction: FORWARDS, fromRevision: BigInt(fromRevision), maxCount });
    return (await this.collectStream('readStream', read)).flatMap((r) => this.toRecorded(r, skipSystem) ?? []);
  }

  private async collectStream(operation: string, read: () => StreamingRead<ResolvedEvent>): Promise<ResolvedEvent[]> {
    try {
      return await this.collect(operation, read);
    } catch (error) {
      if (error instanceof StreamNotFoundError) return [];
      throw error;
    }
  }

  /** Reads a whole (bounded) response, cancelled at the deadline: the client gives reads no gRPC deadline. */
  private collect<E>(operation: string, read: () => StreamingRead<E>): Promise<E[]> {
    const stream = read();
    const reading = (async () => {
      const events: E[] = [];
      for await (const event of stream) events.push(event as E);
      return events;
    })();
    return this.withDeadline(operation, reading, () => {
      void stream.cancel().catch(() => undefined);
      stream.destroy();
    });
  }

  private async withDeadline<T>(operation: string, work: Promise<T>, onTimeout?: () => void): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        onTimeout?.();
        reject(new EsdbDeadlineExceededError(operation, this.options.deadlineMs));
      }, this.options.deadlineMs);
    });
    work.catch(() => undefined); // its late failure after the deadline is expected, not unhandled
    try {
      return await Promise.race([work, deadline]);
    } catch (error) {
      throw translate(operation, error, this.options.deadlineMs);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Appends already accepted finish during close(); new calls are refused. */
  private assertOpen(): void {
    if (this.closing !== undefined) throw new EsdbStoreClosedError();
  }

  /** Retries a whole operation when the connection failed (the client reconnects on the next call), a bounded number of times. */
  private async retrying<T>(operation: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await operation();
      } catch (error) {
        if (!(error instanceof EsdbUnavailableError) || attempt >= this.options.maxCallAttempts || this.closing !== undefined) throw error;
        await new Promise((resolve) => setTimeout(resolve, CALL_RETRY_BACKOFF_MS * 4 ** (attempt - 1)));
      }
    }
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work)).catch(() => undefined);
    return work;
  }

  /** Catch-up and live through one EventStoreDB subscription at a time; resubscribes from the last delivered position when it drops. */
  private async pump(
    sub: LiveSubscription,
    handler: (event: RecordedEvent) => void | Promise<void>,
    onError: ((error: unknown) => void) | undefined,
    closed: boolean,
  ): Promise<void> {
    try {
      if (closed) throw new EsdbStoreClosedError();
      checkNonNegative('fromPosition', sub.checkpoint);
      let failures = 0;
      while (!sub.stopped) {
        const { delivered, error } = await this.follow(sub, handler);
        if (sub.stopped) return;
        failures = delivered ? 1 : failures + 1;
        if (failures > this.options.maxResubscribeAttempts) throw error;
        const backoffMs = Math.min(this.options.resubscribeMaxBackoffMs, this.options.resubscribeMinBackoffMs * 2 ** (failures - 1));
        await pause(backoffMs, sub);
      }
    } catch (error) {
      halt(sub);
      try {
        onError?.(error instanceof HandlerFailure ? error.error : error);
      } catch {
        // a throwing onError must not become an unhandled rejection
      }
    } finally {
      this.subscriptions.delete(sub);
    }
  }

  /** Runs one server subscription until it drops (resolves) or the handler throws (rejects with HandlerFailure). */
  private async follow(
    sub: LiveSubscription,
    handler: (event: RecordedEvent) => void | Promise<void>,
  ): Promise<{ delivered: boolean; error: unknown }> {
    const fromPosition = sub.checkpoint === 0 ? START : at(sub.checkpoint);
    // The server filters out system event types; streams like $settings are skipped here too.
    const server: AllStreamSubscription = this.client.subscribeToAll({ fromPosition, filter: excludeSystemEvents() });
    const stopServer = () => {
      void server.unsubscribe().catch(() => undefined);
      server.destroy(); // ends the iteration below even while it waits for the next event
    };
    void sub.signal.then(stopServer);
    let delivered = false;
    try {
      for await (const resolved of server as AsyncIterable<AllStreamResolvedEvent>) {
        if (sub.stopped) break;
        const event = this.toRecorded(resolved);
        if (event === undefined || event.position <= sub.checkpoint) continue; // exactly once across resubscriptions
        try {
          await handler(event);
        } catch (error) {
          throw new HandlerFailure(error);
        }
        sub.checkpoint = event.position;
        delivered = true;
      }
      return { delivered, error: new EsdbUnavailableError('subscribeToAll', { cause: 'the server ended the subscription' }) };
    } catch (error) {
      if (error instanceof HandlerFailure) throw error;
      return { delivered, error: translate('subscribeToAll', error, this.options.deadlineMs) };
    } finally {
      stopServer();
    }
  }

  private toRecorded(resolved: ResolvedEvent | AllStreamResolvedEvent, skipSystem = true): RecordedEvent | undefined {
    const e = resolved.event;
    if (e === undefined || (skipSystem && isSystemEvent(e.streamId, e.type))) return undefined;
    const metadata = e.metadata instanceof Uint8Array ? Buffer.from(e.metadata).toString('utf8') : e.metadata;
    const event: RecordedEvent = {
      streamId: e.streamId,
      revision: toSafe(e.revision, 'revision'),
      position: toPosition(e.position, resolved.commitPosition),
      id: e.id,
      type: e.type,
      data: e.data,
      metadata: metadata ?? null,
      createdMs: e.created.getTime(),
    };
    this.known.remember(event.id, { streamId: event.streamId, revision: event.revision, type: event.type });
    return event;
  }
}

function halt(sub: LiveSubscription): void {
  sub.stopped = true;
  sub.stop();
}

/** The $all position of an event appended over gRPC: commit = prepare. */
function at(position: LogPosition): Position {
  return { commit: BigInt(position), prepare: BigInt(position) };
}

function toPosition(position: Position | undefined, commitPosition: bigint | undefined): LogPosition {
  const commit = position?.commit ?? commitPosition;
  if (commit === undefined || commit === NO_POSITION) {
    throw new Error('EventStoreDB sent an event without its $all position: stream reads carry it from EventStoreDB 22.6 on');
  }
  return toSafe(commit, 'commit position');
}

function toSafe(value: bigint, what: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`EventStoreDB ${what} ${value} is not a safe integer`);
  return n;
}

function toRevision(actual: bigint | string): number | 'no_stream' {
  return typeof actual === 'bigint' ? toSafe(actual, 'revision') : 'no_stream';
}
