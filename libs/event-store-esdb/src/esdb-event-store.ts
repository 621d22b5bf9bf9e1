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
// - tags: a stream per tag and key with markers, and fences for markers left behind (esdb-tags.ts).
// - system events ($-prefixed streams or types) and the adapter's own (markers, fences) are never returned.
import esdb from '@eventstore/db-client';
import type {
  AllStreamResolvedEvent,
  AppendExpectedRevision,
  EventData as EsdbEventData,
  JSONType,
  Position,
  ResolvedEvent,
  StreamingRead,
} from '@eventstore/db-client';
import {
  EventIdConflictError,
  WrongExpectedRevisionError,
  checkTagRules,
  conditionsOf,
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
import { EsdbSubscriptions, type ServerFeed } from './esdb-subscription.js';
import { EsdbTags, isAdapterEvent, type RawStreams } from './esdb-tags.js';
import {
  EsdbDeadlineExceededError,
  EsdbStoreClosedError,
  EsdbUnavailableError,
  EventIdCache,
  checkNonNegative,
  isSystemEvent,
  prepareEvents,
  at,
  resolveOptions,
  toPosition,
  toRevision,
  toSafe,
  translate,
  withDeadline,
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

export class EsdbEventStore implements EventStore {
  /** One tag condition per append: its marker is one append to one tag stream (esdb-tags.ts). */
  readonly maxAppendConditions = 1;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly known: EventIdCache;
  private readonly tags: EsdbTags;
  private readonly subscriptions: EsdbSubscriptions;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly client: Client,
    private readonly options: ResolvedOptions,
    tagRules: readonly TagRule[],
  ) {
    this.known = new EventIdCache(options.eventIdCacheSize);
    this.tags = new EsdbTags(tagRules, this.rawStreams());
    this.subscriptions = new EsdbSubscriptions(
      (from) => this.openFeed(from),
      options,
      (error) => translate('subscribeToAll', error, options.deadlineMs),
    );
  }

  /** Connects (e.g. `esdb://127.0.0.1:2113?tls=false`) and checks the server answers within the deadline. */
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
      // One tag stream's marker per append (esdb-tags.ts): two conditions would need two atomically.
      if (conditionsOf(options).length > 1) throw new RangeError('this store takes at most 1 condition(s) per append');
      if (prepared.some((e) => isAdapterEvent(streamId, e.type)))
        throw new TypeError(`stream ${streamId} or its event types are the adapter's own`);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.track(this.append(streamId, prepared, options));
  }

  async readByTag(tag: string, key: readonly string[], options: { maxCount?: number } = {}): Promise<RecordedEvent[]> {
    this.assertOpen();
    const maxCount = options.maxCount === undefined ? Infinity : checkNonNegative('maxCount', options.maxCount);
    return this.tags.read(tag, key, maxCount);
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
    return this.subscriptions.subscribe(handler, options, this.closing !== undefined);
  }

  /** Idempotent: stops the subscriptions, waits for the calls under way (each bounded by its deadline), disconnects. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([this.subscriptions.stopAll(), ...this.inFlight]);
      await this.client.dispose();
    })();
    return this.closing;
  }

  private async append(streamId: string, events: PreparedEvent[], options: AppendOptions): Promise<AppendResult> {
    const { expectedRevision: expected } = options;
    const [condition] = conditionsOf(options);
    if (expected === 'any' || expected === 'stream_exists') {
      const retried = await this.findRetry(streamId, events, expected);
      if (retried !== undefined) return this.readBack(streamId, events, retried);
    }
    // Exact (any is made exact from the stream's end); an id this process knows elsewhere would be written
    // again by EventStoreDB (no id index there), so it is refused before anything is written.
    const first = await this.tags.append(streamId, events, expected, condition, (firstRevision) =>
      this.known.checkPlace(streamId, events, firstRevision),
    );
    return this.readBack(streamId, events, first);
  }

  /** any / stream_exists: the revision of a retried append, found in the stream's last events (or the id cache). */
  private async findRetry(streamId: string, events: PreparedEvent[], expected: 'any' | 'stream_exists'): Promise<number | undefined> {
    const cached = this.known.get(events[0]!.id);
    this.known.checkPlace(streamId, events, cached?.streamId === streamId ? cached.revision : undefined);
    if (cached?.streamId === streamId) return cached.revision;
    const tail = await this.retrying(() => this.readTail(streamId));
    if (expected === 'stream_exists' && tail.length === 0) throw new WrongExpectedRevisionError(streamId, expected, 'no_stream');
    const retried = tail.find((e) => e.id === events[0]!.id);
    if (retried !== undefined) return retried.revision;
    const tailIds = new Set(tail.map((t) => t.id));
    const reused = events.find((e) => tailIds.has(e.id));
    if (reused !== undefined) throw new EventIdConflictError(streamId, reused.id);
    return undefined;
  }

  /** Raw reads and exact appends for the tags, the adapter's own events included; each call retried when the connection fails. */
  private rawStreams(): RawStreams {
    return {
      read: (streamId, fromRevision, maxCount) => this.retrying(() => this.readRange(streamId, fromRevision, maxCount, false)),
      write: (streamId, events, last) =>
        this.retrying(async () => {
          try {
            await this.write(streamId, events, last === 'any' ? 'any' : last < 0 ? NO_STREAM : BigInt(last));
            return true;
          } catch (error) {
            if (error instanceof WrongExpectedVersionError) return false;
            throw error;
          }
        }),
      lastRevision: async (streamId) => {
        const read = () => this.client.readStream(streamId, { direction: BACKWARDS, fromRevision: END, maxCount: 1 });
        const [last] = await this.retrying(() => this.collectStream('readStream', read));
        return last?.event === undefined ? -1 : toSafe(last.event.revision, 'revision');
      },
    };
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
    const result = await withDeadline(
      'appendToStream',
      this.options.deadlineMs,
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
    return { nextExpectedRevision: firstRevision + events.length - 1, position: stored[events.length - 1]!.position };
  }

  private async readTail(streamId: string): Promise<RecordedEvent[]> {
    const read = () =>
      this.client.readStream(streamId, { direction: BACKWARDS, fromRevision: END, maxCount: this.options.retryScanWindow });
    return (await this.collectStream('readStream', read)).map((r) => this.toRecorded(r, false)!);
  }

  /** Up to maxCount events from a revision; events never shown are skipped (and more read in their place) when skipHidden. */
  private async readRange(streamId: string, fromRevision: number, maxCount: number, skipHidden: boolean): Promise<RecordedEvent[]> {
    const out: RecordedEvent[] = [];
    for (let from = fromRevision; out.length < maxCount;) {
      const want = maxCount - out.length;
      const read = () => this.client.readStream(streamId, { direction: FORWARDS, fromRevision: BigInt(from), maxCount: want });
      const page = await this.collectStream('readStream', read);
      for (const r of page) {
        const event = this.toRecorded(r, skipHidden);
        if (event !== undefined) out.push(event);
      }
      if (page.length < want || !skipHidden) break;
      from = toSafe(page[page.length - 1]!.event!.revision, 'revision') + 1;
    }
    return out;
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
    return withDeadline(operation, this.options.deadlineMs, reading, () => {
      void stream.cancel().catch(() => undefined);
      stream.destroy();
    });
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

  /** One server subscription of $all after a position, as the port's events (system and adapter events as undefined). */
  private openFeed(from: LogPosition): ServerFeed {
    // The server filters out system event types; streams like $settings and the adapter's own are skipped here.
    const server = this.client.subscribeToAll({ fromPosition: from === 0 ? START : at(from), filter: excludeSystemEvents() });
    const toRecorded = (resolved: AllStreamResolvedEvent) => this.toRecorded(resolved);
    return {
      events: (async function* () {
        for await (const resolved of server as AsyncIterable<AllStreamResolvedEvent>) yield toRecorded(resolved);
      })(),
      stop: () => {
        void server.unsubscribe().catch(() => undefined);
        server.destroy(); // ends the iteration even while it waits for the next event
      },
    };
  }

  private toRecorded(resolved: ResolvedEvent | AllStreamResolvedEvent, skipHidden = true): RecordedEvent | undefined {
    const e = resolved.event;
    if (e === undefined || (skipHidden && (isSystemEvent(e.streamId, e.type) || isAdapterEvent(e.streamId, e.type)))) return undefined;
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
